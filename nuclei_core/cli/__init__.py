"""Command line: ``nuclei`` (or ``python -m nuclei_core``) and its commands.

Each command is one module that builds its parser and runs it: :mod:`.train`
(``train``, ``finetune``), :mod:`.predict`, :mod:`.evaluate` (``evaluate``,
``calibrate``), :mod:`.share` (``export-model``, ``import-model``), :mod:`.access`
(``hash-password``); :mod:`.common` holds what they share (the model and segmentation
options, the progress printer). The work itself is the engine's: these modules read
arguments, call it and print.
"""

from __future__ import annotations

import argparse
import sys

from nuclei_core import __version__
from nuclei_core.cli import access, evaluate, predict, share, train
from nuclei_core.errors import NucleiError

COMMANDS = (train, predict, evaluate, share, access)
"""The modules whose ``add_commands(subparsers)`` register the commands, in help order."""


def build_parser(prog: str = "nuclei") -> argparse.ArgumentParser:
    """The parser of every command; ``prog`` is how the help names the program."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Find, count and measure cell nuclei; train and check the model."
    )
    parser.add_argument("--version", action="version", version=f"nuclei {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_commands(commands)
    return parser


def main(argv=None, prog: str = "nuclei") -> int:
    """Run the command of ``argv`` (default: the process's arguments); its exit status."""
    args = build_parser(prog).parse_args(argv)
    try:
        return args.handler(args)
    except NucleiError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
