"""Tests of nuclei_core.registry.history: per-epoch tables of training runs."""

from __future__ import annotations

import math

import pytest

from nuclei_core.registry import Registry, history


@pytest.fixture
def registry(tmp_path):
    return Registry(tmp_path / "registry.sqlite3")


def add_run(registry, name, epochs, **fields):
    run = registry.create_run(name, "unet", {}, "data", status="finished")
    for epoch, metrics in enumerate(epochs, start=1):
        registry.add_epoch(run.id, epoch, metrics)
    if fields:
        registry.update_run(run.id, **fields)
    return registry.get_run(run.id)


def test_history_frame_is_long_and_leaves_out_missing_values(registry):
    run = add_run(
        registry, "u", [{"loss": 0.5, "val_loss": 0.6, "dice": math.nan}, {"loss": 0.4, "lr": 1}]
    )
    frame = history.history_frame(registry, [run])
    assert list(frame.columns) == list(history.HISTORY_COLUMNS)
    rows = frame[["epoch", "metric", "split", "value"]].values.tolist()
    assert rows == [
        [1, "loss", "training", 0.5],
        [1, "loss", "validation", 0.6],
        [2, "loss", "training", 0.4],
    ]
    assert history.history_frame(registry, []).empty


def test_best_epoch_stored_else_lowest_validation_else_training_loss(registry):
    stored = add_run(registry, "stored", [{"val_loss": 0.1}, {"val_loss": 0.5}], best_epoch=2)
    validation = add_run(registry, "val", [{"val_loss": 0.4, "loss": 0.1}, {"val_loss": 0.2}])
    training = add_run(registry, "train", [{"loss": 0.3}, {"loss": 0.2}, {"loss": 0.25}])
    empty = add_run(registry, "empty", [])
    found = [history.best_epoch(registry, run) for run in (stored, validation, training, empty)]
    assert found == [2, 2, 2, None]
    frame = history.best_epochs_frame(registry, [stored, empty])
    assert frame.to_dict("records") == [{"run": "stored", "epoch": 2, "marker": "best epoch"}]


def test_final_metrics_prefer_the_recorded_ones_over_the_best_epoch(registry):
    recorded = add_run(
        registry, "recorded", [{"loss": 0.9}], final_metrics={"val_dice": 0.812345, "loss": 0.5}
    )
    from_epoch = add_run(registry, "from epoch", [{"loss": 0.9, "seconds": 3}, {"loss": 0.4}])
    rows = history.final_metrics_frame(registry, [recorded, from_epoch]).to_dict("records")
    assert rows[0]["val_dice"] == 0.8123 and rows[0]["loss"] == 0.5
    assert rows[1]["loss"] == 0.4 and rows[1]["best epoch"] == 2 and rows[1]["epochs"] == 2
    assert rows[1]["architecture"] == "unet" and "seconds" not in rows[1]


def test_history_csv_has_one_row_per_run_and_epoch(registry):
    first = add_run(registry, "first", [{"loss": 0.5}, {"loss": 0.4}])
    second = add_run(registry, "second", [{"loss": 0.3, "val_loss": 0.35}])
    lines = history.history_csv(registry, [first, second]).decode().splitlines()
    assert lines[0] == "run,run_id,epoch,loss,val_loss"
    assert lines[1:] == [
        f"first,{first.id},1,0.5,",
        f"first,{first.id},2,0.4,",
        f"second,{second.id},1,0.3,0.35",
    ]
