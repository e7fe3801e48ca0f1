"""Tests of nuclei_core.train: overfitting, files and card, listener, stop and resume,
config refusals, the tf.data pipeline and the mirrored strategy on two logical CPUs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from skimage.segmentation import find_boundaries

from nuclei_core import io
from nuclei_core import train as train_module
from nuclei_core.errors import ConfigError, DatasetError
from nuclei_core.train import TrainConfig, load_training_data, make_targets, train

REPO = Path(__file__).resolve().parent.parent
TINY = {"depth": 2, "base_filters": 4, "crop": 32, "batch_size": 4, "strategy": "none"}
METRICS = ("loss", "accuracy", "iou", "dice")


# ============================================================================== the session run


def test_tiny_unet_overfits_to_foreground_iou_above_0_9(trained_run, trained_model):
    from nuclei_core.predict import predict_many

    images = [io.to_model_input(image) for image, _ in trained_run.samples]
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
    from nuclei_core.model import load_model

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
    assert [row["epoch"] for row in stopped.history] == [1, 2]
    assert load_model(stopped.model_path).output_shape == (None, None, None, 2)
    assert json.loads(stopped.card_path.read_text())["status"] == "stopped"
    assert json.loads((out / "state.json").read_text())["epoch"] == 2
    steps = first.batches[0][2]
    assert steps == 2
    last = load_model(out / "checkpoint_last.keras", compile=True)
    assert int(last.optimizer.iterations) == steps + 1

    second = type(first)()
    config = TrainConfig(data=str(data), out=str(out), epochs=4, resume=True, **small)
    resumed = train(config, listener=second)
    assert "resuming after epoch 2" in second.status
    assert [epoch for epoch, _ in second.epochs] == [2, 3]  # numbering continues
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[:2] == stopped.history
    assert resumed.status == "finished"
    assert json.loads((out / "state.json").read_text())["epoch"] == 4
    last = load_model(out / "checkpoint_last.keras", compile=True)
    assert int(last.optimizer.iterations) == 3 * steps + 1  # optimizer state carried on
    assert json.loads(resumed.card_path.read_text())["epochs_run"] == 4


# ============================================================================== precision


def _layer_policies(model) -> set[str]:
    return {layer.dtype_policy.name for layer in model.layers if layer.weights}


@pytest.mark.skipif(
    not train_module.BFLOAT16_CPU_FLAGS <= train_module.cpu_flags(),
    reason="bfloat16 training needs a CPU with AVX-512 (or a GPU)",
)
def test_bfloat16_run_saves_a_float32_model_with_the_same_predictions(
    tmp_path, flat_dataset_factory
):
    from nuclei_core.model import load_model

    data = flat_dataset_factory(tmp_path / "data", size=(32, 32), n_nuclei=2, radius=(4, 6))
    config = TrainConfig(
        data=str(data), out=str(tmp_path / "run"), epochs=1, precision="bfloat16", **TINY
    )
    result = train(config)
    card = json.loads(result.card_path.read_text())
    assert card["precision"] == "mixed_bfloat16"
    checkpoint = load_model(tmp_path / "run" / "checkpoint_best.keras")
    saved = load_model(result.model_path)
    assert _layer_policies(checkpoint) == {"mixed_bfloat16", "float32"}  # float32 output layer
    assert _layer_policies(saved) == {"float32"}
    batch = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    difference = saved.predict(batch, verbose=0) - checkpoint.predict(batch, verbose=0)
    assert np.abs(difference).max() < 0.02  # bfloat16 rounding only
    assert keras_global_policy() == "float32"  # the process-wide policy is left alone


def keras_global_policy() -> str:
    import keras

    return keras.config.dtype_policy().name


AVX2 = frozenset({"fpu", "sse4_2", "avx2"})
AVX512 = AVX2 | train_module.BFLOAT16_CPU_FLAGS
AMX = AVX512 | {"amx_bf16", "amx_tile"}


@pytest.mark.parametrize(
    ("precision", "has_gpu", "flags", "architecture", "expected"),
    [
        ("auto", False, AMX, "unet", "mixed_bfloat16"),
        ("auto", False, AVX512, "unet", "float32"),
        ("auto", False, AVX512 | {"avx512_bf16"}, "unet", "mixed_bfloat16"),
        ("auto", False, AVX512 | {"avx512_bf16"}, "mobilenetv2", "float32"),
        ("auto", False, AVX2, "unet", "float32"),
        ("auto", True, AMX, "unet", "float32"),
        ("auto", False, AMX, "mobilenetv2", "float32"),
        ("float32", False, AMX, "unet", "float32"),
        ("bfloat16", False, AVX512, "unet", "mixed_bfloat16"),
        ("bfloat16", False, AMX, "mobilenetv2", "mixed_bfloat16"),
        ("bfloat16", True, AVX2, "unet", "mixed_bfloat16"),
    ],
)
def test_precision_choice(precision, has_gpu, flags, architecture, expected):
    choice = train_module.resolve_precision(precision, has_gpu, flags, architecture)
    assert choice == expected


def test_bfloat16_is_refused_on_a_cpu_without_avx512(tmp_path, flat_dataset_factory, monkeypatch):
    # oneDNN would fail inside the first step with "could not create a primitive descriptor".
    monkeypatch.setattr(train_module, "cpu_flags", lambda: AVX2)
    data = flat_dataset_factory(tmp_path / "data", size=(32, 32))
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), precision="bfloat16", **TINY)
    with pytest.raises(ConfigError, match="bfloat16.*avx512bw, avx512dq, avx512f, avx512vl"):
        train(config)
    assert not (tmp_path / "run").exists()


def test_cpu_flags_are_read_from_the_flags_line_only():
    assert train_module.cpu_flags("model name : amx_bf16 lookalike\nflags : fpu avx2") == {
        "fpu",
        "avx2",
    }
    assert "amx_bf16" in train_module.cpu_flags("processor : 0\nflags\t: fpu amx_bf16 amx_tile")
    assert train_module.cpu_flags("processor : 0") == frozenset()


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

    monkeypatch.setattr(train_module, "load_training_data", no_work)
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


# ============================================================================== data pipeline


def test_targets_mark_the_rim_between_touching_nuclei(synthetic_sample):
    _, labels = synthetic_sample
    targets = make_targets(labels)
    assert targets.shape == (64, 64, 2) and targets.dtype == np.float32
    np.testing.assert_array_equal(targets[..., 0], labels > 0)
    np.testing.assert_array_equal(targets[..., 1], find_boundaries(labels, mode="inner"))
    touching = (labels == 1) & find_boundaries(labels == 2, mode="outer")
    assert touching.any() and (targets[..., 1][touching] == 1).all()


def test_training_pipeline_gives_augmented_crops(flat_dataset):
    samples = io.discover_dataset(flat_dataset).samples
    arrays, problems = load_training_data(samples, crop=32)
    assert problems == [] and len(arrays) == 6
    assert all(array.count == 4 for array in arrays)  # 64 x 64 images give 4 crops of 32
    assert not any(array.colour for array in arrays)  # greyscale: no stain jitter
    dataset, crops = train_module.training_dataset(arrays, crop=32, batch_size=3, seed=1)
    assert crops == 24
    batches = list(dataset.take(3).as_numpy_iterator())
    for images, targets in batches:
        assert images.shape == (3, 32, 32, 3) and targets.shape == (3, 32, 32, 2)
        assert images.min() >= 0 and images.max() <= 1
        assert set(np.unique(targets)) <= {0.0, 1.0}
        assert (targets[..., 1] <= targets[..., 0]).all()  # boundary lies on foreground
    assert not np.array_equal(batches[0][0], batches[1][0])


def test_several_datasets_are_split_each_on_its_own(tmp_path, flat_dataset_factory):
    big = flat_dataset_factory(tmp_path / "big", n_images=40, prefix="big")
    small = flat_dataset_factory(tmp_path / "small", n_images=13, prefix="small", seed=50)
    config = TrainConfig(data=[str(big), str(small)], out=str(tmp_path / "run"), **TINY)
    split = train_module.check_dataset(config)
    for folder in (big, small):
        dataset = io.discover_dataset(folder)
        pairs = zip(split.train, split.train_groups, strict=True)
        group = [sample for sample, name in pairs if name == str(folder)]
        assert group == io.select_split(dataset, "train")
        assert {s.id for s in group}.isdisjoint(s.id for s in io.select_split(dataset, "test"))
    tests = [len(io.select_split(io.discover_dataset(f), "test")) for f in (big, small)]
    assert split.n_test == sum(tests)
    assert len(split.val) == len(split.val_groups) and set(split.val_groups) == {
        str(big),
        str(small),
    }


def test_a_small_dataset_is_sampled_up_to_its_cap(tmp_path, flat_dataset_factory):
    big = io.discover_dataset(flat_dataset_factory(tmp_path / "big", n_images=30)).samples
    small = io.discover_dataset(flat_dataset_factory(tmp_path / "small", n_images=2)).samples
    groups = ["big"] * len(big) + ["small"] * len(small)
    arrays, _ = load_training_data([*big, *small], crop=32, groups=groups)
    counts = [array.count for array in arrays]
    assert counts[: len(big)] == [4] * len(big)  # 64 x 64 images: 4 crops of 32, weight 1
    assert counts[len(big) :] == [round(4 * np.sqrt(30 / 2))] * 2  # sqrt(15) = 3.9, under the cap 8
    alone, _ = load_training_data(small, crop=32)
    assert [array.count for array in alone] == [4, 4]


def test_stain_jitter_changes_colour_and_keeps_the_range():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    image = tf.constant(rng.uniform(0.0, 0.9, (32, 32, 3)).astype(np.float32))
    tf.random.set_seed(0)
    outputs = [train_module._stain_jitter(image).numpy() for _ in range(4)]
    for output in outputs:
        assert output.shape == (32, 32, 3) and output.min() >= 0 and output.max() <= 1
        assert np.abs(output - image.numpy()).mean() < 0.2  # a jitter, not a new picture
    assert not np.allclose(outputs[0], outputs[1])
    white = train_module._stain_jitter(tf.zeros((8, 8, 3))).numpy()
    assert white.max() < 0.15  # the bright (inverted: dark) background stays background


def test_small_images_are_padded_for_cropping(tmp_path, flat_dataset_factory):
    root = flat_dataset_factory(
        tmp_path / "small", n_images=2, size=(28, 40), n_nuclei=2, radius=(4, 6)
    )
    arrays, _ = load_training_data(io.discover_dataset(root).samples, crop=32)
    for model_input, targets, count, _ in arrays:
        assert model_input.shape[:2] == targets.shape[:2]
        assert min(model_input.shape[:2]) >= 32
        assert count == 1


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

    from nuclei_core.train import TrainConfig, TrainingListener, train

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
