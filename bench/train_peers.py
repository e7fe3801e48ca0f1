"""Retrain every learned peer of the default model on its data with its time budget, in turn.

    pip install -r bench/requirements-peers.txt
    python -m bench.train_peers            # prints the commands, then runs them
    python -m bench.train_peers --dry-run  # prints them only

The original project's recipe (MobileNetV2 U-Net) is trained into ``runs/mobilenetv2``
and its model and card copied to ``models/peers/mobilenetv2``; StarDist 2D is trained
into ``runs/stardist`` and its model (weights, configuration, thresholds, card) copied
to ``models/peers/stardist``: where ``python -m bench.run`` looks for them. Each takes the
default model's training time, run by run (its card's ``train_minutes_by_run``: today's
default trained 120 minutes from random weights, then 58 minutes on from those weights),
so each peer's first run starts from random weights and its later runs go on from the run
before; all of them take about six hours on one machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys

from bench.sections.peers import (
    retrain_commands,
    run_folder,
    stardist_commands,
    training_minutes,
)
from bench.tools.paths import MOBILENETV2_MODEL, STARDIST_MODEL
from nuclei_core.locations import PROJECT_ROOT

DEFAULT_CARD = PROJECT_ROOT / "models" / "default.json"
STARDIST_FILES = ("weights_best.h5", "config.json", "thresholds.json", "card.json")
"""What of a StarDist run is kept: the best weights, their configuration, thresholds, card."""


def peer_commands(default_card: dict) -> list[str]:
    """The training commands of every learned peer, for the default model's data and runs.

    Examples
    --------
    >>> card = {"params": {"data": ["a"], "time_budget_minutes": 90.0}}
    >>> [command.split(" --")[0] for command in peer_commands(card)]
    ['python -m nuclei_core train', 'python -m bench.stardist_peer train']
    >>> peer_commands(card)[1]
    'python -m bench.stardist_peer train --minutes 90 --out runs/stardist'
    >>> len(peer_commands({"train_minutes_by_run": [120.0, 58.0]}))
    4
    """
    return retrain_commands(default_card) + stardist_commands(default_card)


def keep_mobilenetv2(folder=PROJECT_ROOT / "runs" / "mobilenetv2") -> None:
    """Copy the recipe's model and card to :data:`bench.tools.paths.MOBILENETV2_MODEL`'s folder."""
    MOBILENETV2_MODEL.parent.mkdir(parents=True, exist_ok=True)
    for name in ("model.keras", "model.json"):
        shutil.copy2(folder / name, MOBILENETV2_MODEL.parent / name)


def keep_stardist(folder=PROJECT_ROOT / "runs" / "stardist" / "stardist") -> None:
    """Copy a StarDist run's model files to :data:`bench.tools.paths.STARDIST_MODEL`."""
    STARDIST_MODEL.mkdir(parents=True, exist_ok=True)
    for name in STARDIST_FILES:
        shutil.copy2(folder / name, STARDIST_MODEL / name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train_peers", description=__doc__)
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    default_card = json.loads(DEFAULT_CARD.read_text())
    commands = peer_commands(default_card)
    print("\n".join(commands), flush=True)
    if args.dry_run:
        return 0
    for command in commands:
        subprocess.run(shlex.split(command), cwd=PROJECT_ROOT, check=True)
    last_run = len(training_minutes(default_card)) - 1
    keep_mobilenetv2(PROJECT_ROOT / run_folder("mobilenetv2", last_run))
    keep_stardist(PROJECT_ROOT / run_folder("stardist", last_run) / "stardist")
    return 0


if __name__ == "__main__":
    sys.exit(main())
