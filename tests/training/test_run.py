"""Tests of nuclei_core.training.run: overfitting, files and card, listener, stop and resume,
config refusals, warning filters and the mirrored strategy on two logical CPUs."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from nuclei_core.errors import ConfigError, DatasetError
from nuclei_core.segmentation.preprocess import to_model_input
from nuclei_core.training import TrainConfig, train
from nuclei_core.training import run as run_module

REPO = Path(__file__).resolve().parents[2]
TINY = {"depth": 2, "base_filters": 4, "crop": 32, "batch_size": 4, "strategy": "none"}
METRICS = ("loss", "accuracy", "iou", "dice")


# ============================================================================== the session run


def test_tiny_unet_overfits_to_foreground_iou_above_0_9(trained_run, trained_model):
    from nuclei_core.network.predict import predict_many

    images = [to_model_input(image) for image, _ in trained_run.samples]
    probabilities = predict_many(trained_model, images)
    ious = []
    for (_, labels), output in zip(trained_run.samples, probabilities, strict=True):
        guess, truth = output[..., 0] > 0.5, labels > 0
        ious.append((guess & truth).sum() / (guess | truth).sum())
    print(f"trained in {trained_run.seconds:.0f} s; foreground IoU {np.round(ious, 3)}")
    assert min(ious) > 0.9
    assert trained_run.result.history[-1]["iou"] > 0.9


def test_run_writes_its_files(trained_run):
    out, result, epochs = trained_run.out, trained_run.result, trained_run.config.epochs
    assert result.model_path == out / "model.keras"
    assert result.card_path == out / "model.json"
    for name in ("checkpoint_best.keras", "checkpoint_last.keras", "state.json", "history.csv"):
        assert (out / name).is_file(), name
    assert any((out / "logs").rglob("*tfevents*"))  # TensorBoard
    with open(out / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == list(range(1, epochs + 1))
    assert {*METRICS, *(f"val_{key}" for key in METRICS), "lr", "seconds"} <= set(rows[0])
    state = json.loads((out / "state.json").read_text())
    assert state["epoch"] == epochs and state["best_epoch"] == result.best_epoch
    assert not list(out.glob(".*.keras"))  # no temporary files left behind


def test_run_card_has_the_required_fields(trained_run):
    card = json.loads(trained_run.result.card_path.read_text())
    config, result = trained_run.config, trained_run.result
    assert card["architecture"] == "unet"
    assert card["model"] == {
        "architecture": "unet",
        "depth": 2,
        "base_filters": 8,
        "batch_norm": True,
        "dropout": 0.0,
        "distance": False,
    }
    assert card["params"]["epochs"] == config.epochs and card["params"]["seed"] == 0
    assert card["params"]["learning_rate"] == config.learning_rate
    assert card["n_parameters"] > 1000
    assert card["dataset"] == str(trained_run.data)
    split = card["split"]
    assert split["n_train"] + split["n_val"] + split["n_test"] == 24
    assert split["n_val"] >= 1 and split["val_fraction"] == config.val_fraction
    assert card["epochs_run"] == config.epochs == len(card["history"])
    assert card["status"] == result.status == "finished"
    assert 1 <= card["best_epoch"] == result.best_epoch <= config.epochs
    assert card["strategy"] == {"name": "none", "replicas": 1}
    assert card["precision"] == "float32" == config.precision
    assert card["encoder_weights"] is None  # a U-Net has no pretrained encoder
    assert {"cpu_cores", "tensorflow"} <= set(card["machine"])
    assert card["created_at"].endswith("+00:00")
    best = card["history"][card["best_epoch"] - 1]
    for key in (*METRICS, *(f"val_{key}" for key in METRICS)):
        assert card["final_metrics"][key] == best[key], key
    assert best["val_loss"] == min(row["val_loss"] for row in card["history"])


def test_listener_hears_every_batch_and_epoch(trained_run):
    listener, history = trained_run.listener, trained_run.result.history
    assert [epoch for epoch, _ in listener.epochs] == list(range(len(history)))
    assert [logs for _, logs in listener.epochs] == history
    steps = listener.batches[0][2]
    assert steps >= 10
    for epoch in range(len(history)):
        seen = [(step, total) for e, step, total, _ in listener.batches if e == epoch]
        assert seen == [(step, steps) for step in range(1, steps + 1)]
    assert all("loss" in logs for *_, logs in listener.batches)
    assert any(message.startswith("reading") for message in listener.status)
    assert any(message.startswith("training:") for message in listener.status)


# ============================================================================== stop and resume


def test_stop_keeps_a_loadable_best_model_and_resume_continues(
    tmp_path, flat_dataset_factory, recording_listener
):
    from nuclei_core.network.model import load_model

    # Six 32 x 32 images: five train, one crop each, two steps of two per epoch.
    data = flat_dataset_factory(tmp_path / "data", size=(32, 32), n_nuclei=2, radius=(4, 6))
    small = {**TINY, "batch_size": 2, "val_fraction": 0.1}
    out = tmp_path / "run"
    first = recording_listener

    def stop_in_second_epoch():
        return bool(first.batches) and first.batches[-1][0] == 1

    config = TrainConfig(data=str(data), out=str(out), epochs=6, **small)
    stopped = train(config, listener=first, should_stop=stop_in_second_epoch)
    assert stopped.status == "stopped"
    assert [e for e, *_ in first.batches].count(1) == 1  # stopped right after that batch
    # Epoch 2 ran one batch of two: it is not an epoch, so nothing of it is recorded.
    assert [row["epoch"] for row in stopped.history] == [1]
    assert [epoch for epoch, _ in first.epochs] == [0]
    assert "stopped during epoch 2; it is not recorded" in first.status
    assert stopped.best_epoch == 1
    with open(out / "history.csv", newline="") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == [1]
    assert load_model(stopped.model_path).output_shape == (None, None, None, 2)
    card = json.loads(stopped.card_path.read_text())
    assert card["status"] == "stopped" and card["epochs_run"] == 1 and card["best_epoch"] == 1
    assert json.loads((out / "state.json").read_text())["epoch"] == 1
    steps = first.batches[0][2]
    assert steps == 2
    last = load_model(out / "checkpoint_last.keras", compile=True)
    assert int(last.optimizer.iterations) == steps  # the checkpoint of epoch 1, not later

    second = type(first)()
    config = TrainConfig(data=str(data), out=str(out), epochs=4, resume=True, **small)
    resumed = train(config, listener=second)
    assert "resuming after epoch 1" in second.status
    assert [epoch for epoch, _ in second.epochs] == [1, 2, 3]  # numbering continues
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[:1] == stopped.history
    assert resumed.status == "finished"
    assert json.loads((out / "state.json").read_text())["epoch"] == 4
    last = load_model(out / "checkpoint_last.keras", compile=True)
    assert int(last.optimizer.iterations) == 4 * steps  # optimizer state carried on
    assert json.loads(resumed.card_path.read_text())["epochs_run"] == 4


def test_a_run_in_two_segments_ends_where_a_single_run_ends(
    tmp_path, flat_dataset_factory, recording_listener
):
    """Weights, optimizer state, epoch, learning rate, crops and their augmentation carry
    over a resume: three epochs as 1 + 2 end where three in one go end. A single run
    repeats bit for bit; the resumed one was measured 1.4e-4 (relative) off in the loss
    and 0.007 in the largest weight after three epochs of this tiny network, where another
    seed is 0.06 off in the loss and 1.7 in the weights. The bounds: 1e-3 and 0.02."""
    from nuclei_core.network.model import load_model

    data = flat_dataset_factory(tmp_path / "data", size=(48, 48), n_nuclei=3, radius=(4, 7))
    small = {**TINY, "batch_size": 2, "val_fraction": 0.1, "precision": "float32", "seed": 3}
    single = train(TrainConfig(data=str(data), out=str(tmp_path / "one"), epochs=3, **small))

    listener = recording_listener

    def stop_at_end_of_first_epoch():
        return bool(listener.batches) and listener.batches[-1][:2] == (0, listener.batches[-1][2])

    segments = TrainConfig(data=str(data), out=str(tmp_path / "two"), epochs=3, **small)
    first = train(segments, listener=listener, should_stop=stop_at_end_of_first_epoch)
    assert [row["epoch"] for row in first.history] == [1]
    second = train(dataclasses.replace(segments, resume=True))
    assert [row["epoch"] for row in second.history] == [1, 2, 3]
    for one, two in zip(single.history, second.history, strict=True):
        assert two["lr"] == pytest.approx(one["lr"], rel=1e-6)
        for key in ("loss", "val_loss"):
            assert two[key] == pytest.approx(one[key], rel=1e-3), (key, one["epoch"])
    ends = [
        load_model(folder / "checkpoint_last.keras")
        for folder in (tmp_path / "one", tmp_path / "two")
    ]
    for mine, theirs in zip(*(model.get_weights() for model in ends), strict=True):
        np.testing.assert_allclose(mine, theirs, atol=0.02)
    card = json.loads(second.card_path.read_text())
    command, resumed = segments.command_line(), dataclasses.replace(segments, resume=True)
    assert card["commands"] == [command, resumed.command_line()]
    assert card["command"] == resumed.command_line() and "--resume" in card["command"]
    assert [segment["epochs"] for segment in card["segments"]] == [[1, 1], [2, 3]]
    assert [segment["command"] for segment in card["segments"]] == card["commands"]
    for segment in card["segments"]:
        assert segment["minutes"] > 0 and segment["machine"]["cpu_cores"] == os.cpu_count()
        assert (
            segment["mean_load_1min"] >= 0
            and segment["load_samples"] == segment["epochs"][1] - segment["epochs"][0] + 1
        )


def test_stop_after_the_last_batch_of_an_epoch_keeps_that_epoch(
    tmp_path, flat_dataset_factory, recording_listener
):
    data = flat_dataset_factory(tmp_path / "data", size=(32, 32), n_nuclei=2, radius=(4, 6))
    listener = recording_listener

    def stop_at_end_of_second_epoch():
        return bool(listener.batches) and listener.batches[-1][:2] == (1, listener.batches[-1][2])

    config = TrainConfig(
        data=str(data), out=str(tmp_path / "run"), epochs=5,
        **{**TINY, "batch_size": 2, "val_fraction": 0.1},
    )  # fmt: skip
    result = train(config, listener=listener, should_stop=stop_at_end_of_second_epoch)
    assert result.status == "stopped"
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert [epoch for epoch, _ in listener.epochs] == [0, 1]
    assert all("val_loss" in row for row in result.history)  # a whole epoch is validated
    assert not any("not recorded" in message for message in listener.status)


# ============================================================================== refusals


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"batch_size": 50}, "batch size 50 is larger than the"),
        ({"crop": 96}, "crop 96 is larger than every training image"),
        ({"crop": 30}, "crop must be a positive multiple of 4"),
        ({"learning_rate": 0.0}, "learning rate"),
        ({"val_fraction": 0.0}, "validation fraction"),
        ({"patience": 0}, "patience"),
        ({"strategy": "cluster"}, "strategy must be one of"),
        ({"strategy": "multiworker"}, "TF_CONFIG"),
        ({"precision": "float8"}, "precision must be one of"),
        ({"time_budget_minutes": 0}, "time budget"),
        ({"architecture": "mobilenetv2", "crop": 48}, "multiple of 32"),
    ],
)
def test_config_refusals_come_before_any_work(tmp_path, flat_dataset, monkeypatch, change, message):
    monkeypatch.delenv("TF_CONFIG", raising=False)

    def no_work(*args, **kwargs):
        raise AssertionError("images were read before the config was checked")

    monkeypatch.setattr(run_module, "load_training_data", no_work)
    out = tmp_path / "run"
    config = TrainConfig(data=str(flat_dataset), out=str(out), **{**TINY, "epochs": 2, **change})
    with pytest.raises(ConfigError, match=message) as error:
        train(config)
    assert "\n" not in str(error.value)
    assert not out.exists()


def test_missing_dataset_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        train(TrainConfig(data=str(tmp_path / "nowhere"), out=str(tmp_path / "run"), **TINY))
    assert not (tmp_path / "run").exists()


def test_a_run_leaves_the_warning_filters_as_it_found_them(tmp_path, flat_dataset_factory):
    # train() quiets two Keras warnings during the fit only, not for the whole process.
    data = flat_dataset_factory(tmp_path / "data", size=(32, 32), n_nuclei=2, radius=(4, 6))
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), epochs=1, **TINY)
    before = list(warnings.filters)
    train(config)
    assert warnings.filters == before


# ============================================================================== distribution

MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )
    assert len(tf.config.list_logical_devices("CPU")) == 2

    from nuclei_core.training import TrainConfig, TrainingListener, train

    class Listener(TrainingListener):
        def on_status(self, message):
            print("status:", message, flush=True)

    data, out = sys.argv[1], sys.argv[2]
    config = TrainConfig(
        data=data, out=out, epochs=1, batch_size=2, crop=32, depth=2, base_filters=4,
        val_fraction=0.1, strategy="mirrored",
    )
    result = train(config, listener=Listener())
    card = json.loads(result.card_path.read_text())
    assert card["strategy"]["replicas"] == 2, card["strategy"]
    print("RESULT", json.dumps({"strategy": card["strategy"], "history": result.history}))
    """
)


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, flat_dataset_factory):
    # Six 32 x 32 images: five train (two steps of two), one validation image, which two
    # replicas must share (an odd count used to crash the evaluation step).
    data = flat_dataset_factory(
        tmp_path / "data", n_images=6, size=(32, 32), n_nuclei=2, radius=(4, 6)
    )
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.run(
        [sys.executable, str(script), str(data), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert "status: strategy: MirroredStrategy with 2 replica(s)" in process.stdout
    result = json.loads(process.stdout.split("RESULT", 1)[1])
    assert result["strategy"] == {"name": "mirrored", "replicas": 2}
    assert len(result["history"]) == 1
    assert np.isfinite([result["history"][0][key] for key in ("loss", "val_loss")]).all()
