"""Retrain every learned peer of the default model on its data with its time budget, in turn.

    pip install -r bench/requirements-peers.txt
    python -m bench.train_peers            # prints the commands, then runs them
    python -m bench.train_peers --dry-run  # prints them only

The original project's recipe (MobileNetV2 U-Net) is trained into ``runs/mobilenetv2``
and its model and card copied to ``models/peers/mobilenetv2``; StarDist 2D is trained
into ``runs/stardist`` and its model (weights, configuration, thresholds, card) copied
to ``models/peers/stardist``: where ``bench/run.py`` looks for them. Each takes the
default model's time budget (its card's ``time_budget_minutes``, 120 minutes for today's
default), so both take about four hours on one machine; give each a machine of its own to
compare them fairly.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys

from bench.paths import MOBILENETV2_MODEL
from bench.peers import STARDIST_MODEL, retrain_command
from nuclei_core.locations import PROJECT_ROOT

DEFAULT_CARD = PROJECT_ROOT / "models" / "default.json"
STARDIST_FILES = ("weights_best.h5", "config.json", "thresholds.json", "card.json")
"""What of a StarDist run is kept: the best weights, their configuration, thresholds, card."""


def peer_commands(default_card: dict) -> list[str]:
    """The training command of every learned peer, for the default model's data and budget.

    Examples
    --------
    >>> card = {"params": {"data": ["a"], "time_budget_minutes": 90.0}}
    >>> [command.split(" --")[0] for command in peer_commands(card)]
    ['python -m nuclei_core train', 'python -m bench.stardist_peer train']
    >>> peer_commands(card)[1]
    'python -m bench.stardist_peer train --minutes 90 --out runs/stardist'
    """
    minutes = default_card.get("params", {}).get("time_budget_minutes", 120.0)
    stardist = f"python -m bench.stardist_peer train --minutes {minutes:g} --out runs/stardist"
    return [retrain_command(default_card), stardist]


def keep_mobilenetv2(run_folder=PROJECT_ROOT / "runs" / "mobilenetv2") -> None:
    """Copy the recipe's model and card to :data:`bench.paths.MOBILENETV2_MODEL`'s folder."""
    MOBILENETV2_MODEL.parent.mkdir(parents=True, exist_ok=True)
    for name in ("model.keras", "model.json"):
        shutil.copy2(run_folder / name, MOBILENETV2_MODEL.parent / name)


def keep_stardist(run_folder=PROJECT_ROOT / "runs" / "stardist" / "stardist") -> None:
    """Copy a StarDist run's model files to :data:`bench.peers.STARDIST_MODEL`."""
    STARDIST_MODEL.mkdir(parents=True, exist_ok=True)
    for name in STARDIST_FILES:
        shutil.copy2(run_folder / name, STARDIST_MODEL / name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train_peers", description=__doc__)
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    commands = peer_commands(json.loads(DEFAULT_CARD.read_text()))
    print("\n".join(commands), flush=True)
    if args.dry_run:
        return 0
    for command in commands:
        subprocess.run(shlex.split(command), cwd=PROJECT_ROOT, check=True)
    keep_mobilenetv2()
    keep_stardist()
    return 0


if __name__ == "__main__":
    sys.exit(main())
