"""Tests of nuclei_core.training.state: state.json keeps the format a resume reads."""

from __future__ import annotations

import json
import math

import pytest

from nuclei_core.storage import atomic_write_json
from nuclei_core.training import TrainConfig
from nuclei_core.training.state import RunState

HISTORY = [
    {"epoch": 1, "loss": 0.61, "val_loss": 0.52, "val_iou": 0.4, "lr": 0.0006, "seconds": 3.1},
    {"epoch": 2, "loss": 0.45, "val_loss": 0.55, "val_iou": 0.5, "lr": 0.002, "seconds": 3.0},
]
# state.json as train() wrote it before the state had a class (a run started from the CLI).
EARLIER_STATE = {
    "epoch": 2,
    "best": 0.52,
    "best_epoch": 1,
    "wait": 1,
    "history": HISTORY,
    "seconds": 6.4,
    "encoder_weights": None,
    "stopped_early": False,
    "commands": ["python -m nuclei_core train --data data --out run"],
}


@pytest.mark.parametrize("from_cli", [True, False])
def test_an_earlier_state_json_is_read_and_written_back_unchanged(tmp_path, from_cli):
    written = dict(EARLIER_STATE)
    if not from_cli:
        del written["commands"]  # only runs started from the CLI recorded a command
    path = tmp_path / "state.json"
    atomic_write_json(path, written)
    before = path.read_text()
    state = RunState.read(path)
    assert (state.epoch, state.best, state.best_epoch, state.wait) == (2, 0.52, 1, 1)
    assert state.history == HISTORY and state.seconds == 6.4
    assert state.commands == written.get("commands", [])
    state.save(path)
    assert path.read_text() == before
    assert list(json.loads(before)) == list(written)


def test_a_new_state_counts_epochs_without_improvement():
    state = RunState(encoder_weights="imagenet")
    assert state.best == math.inf and state.to_json()["encoder_weights"] == "imagenet"
    assert state.add_epoch(dict(HISTORY[0]), seconds=3.1)
    assert not state.add_epoch(dict(HISTORY[1]), seconds=6.1)
    assert (state.epoch, state.best_epoch, state.wait, state.seconds) == (2, 1, 1, 6.1)
    assert state.best_metrics() == {"loss": 0.61, "val_loss": 0.52, "val_iou": 0.4}


def test_the_monitored_loss_is_the_training_loss_without_validation():
    state = RunState()
    assert state.add_epoch({"epoch": 1, "loss": 0.5}, seconds=1.0)
    assert not state.add_epoch({"epoch": 2, "loss": 0.6}, seconds=2.0)
    assert state.best == 0.5


@pytest.mark.parametrize(
    ("state", "changes", "left"),
    [
        (RunState(), {}, True),
        (RunState(epoch=3), {}, False),  # every epoch done
        (RunState(epoch=2, wait=2), {"patience": 2}, False),  # stopped early
        (RunState(epoch=2, seconds=60.0), {"time_budget_minutes": 1}, False),  # budget spent
        (RunState(epoch=2, seconds=59.0), {"time_budget_minutes": 1}, True),
    ],
)
def test_a_resumed_run_knows_whether_work_is_left(state, changes, left):
    config = TrainConfig(data="data", out="run", epochs=3, **changes)
    assert state.has_work_left(config) is left


def test_a_session_records_its_command_line():
    state = RunState(stopped_early=True, commands=["python -m nuclei_core train"])
    state.start_session("python -m nuclei_core train --resume")
    assert not state.stopped_early
    assert state.commands == ["python -m nuclei_core train", "python -m nuclei_core train --resume"]
    state.start_session(None)
    assert len(state.commands) == 2
