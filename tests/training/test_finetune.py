"""Tests of nuclei_core.training.finetune: the config, the start from a base model's weights,
frozen batch norm, the card, the CLI, and a tiny fine-tune that improves its own images."""

from __future__ import annotations

import dataclasses
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from skimage.segmentation import find_boundaries
from synthetic import TRAINED_CONFIG, make_flat_dataset, make_nuclei, save_png

from nuclei_core.errors import ConfigError, DatasetError, ModelLoadError
from nuclei_core.training import TrainConfig, finetune_config, train
from nuclei_core.training.finetune import (
    LEARNING_RATE,
    STEPS_PER_EPOCH,
    base_model_summary,
    start_from,
)

REPO = Path(__file__).resolve().parents[2]


def make_ring_dataset(root: Path, n_images: int = 3, seed: int = 600) -> Path:
    """A kind the session's tiny model never saw: nuclei with a bright rim and a dark inside.

    The tiny model, trained on filled bright discs, finds the rims only (foreground
    IoU about 0.25); the labels are the whole discs.
    """
    for index in range(n_images):
        image, labels = make_nuclei((64, 64), n_nuclei=6, seed=seed + index)
        rings = np.where(labels > 0, 30, image).astype(np.uint8)
        rings[find_boundaries(labels, mode="inner")] = 200
        save_png(root / "inputs" / f"ring{index:02d}.png", rings)
        save_png(root / "masks" / f"ring{index:02d}.png", labels.astype(np.uint16))
    return root


def _foreground_iou(model, folder: Path) -> float:
    """Pooled foreground IoU of ``model`` on the images of a flat dataset."""
    from nuclei_core.datasets.folders import discover_dataset, load_sample
    from nuclei_core.network.predict import predict_many
    from nuclei_core.segmentation.preprocess import to_model_input

    samples = [load_sample(sample) for sample in discover_dataset(folder).samples]
    outputs = predict_many(model, [to_model_input(image) for image, _ in samples])
    overlap = union = 0
    for (_, labels), output in zip(samples, outputs, strict=True):
        guess, truth = output[..., 0] > 0.5, labels > 0
        overlap += int((guess & truth).sum())
        union += int((guess | truth).sum())
    return overlap / union


@pytest.fixture(scope="module")
def new_kind(tmp_path_factory) -> Path:
    return make_ring_dataset(tmp_path_factory.mktemp("new_kind"))


@pytest.fixture(scope="module")
def finetuned(trained_run, new_kind, tmp_path_factory):
    """The session's tiny model fine-tuned on three images of the new kind (6 epochs)."""
    out = tmp_path_factory.mktemp("finetuned")
    config = finetune_config(trained_run.result.model_path, new_kind, out, minutes=5)
    # Epochs instead of minutes, so that the run does the same work on every machine.
    config = dataclasses.replace(config, epochs=6, time_budget_minutes=None, precision="float32")
    return config, train(config)


def test_config_takes_the_base_models_architecture(trained_run, new_kind):
    config = finetune_config(trained_run.result.model_path, new_kind, "run", minutes=3, name="mine")
    assert (config.depth, config.base_filters) == (2, TRAINED_CONFIG["base_filters"])
    assert config.base_model == str(trained_run.result.model_path)
    assert config.split == "holdout" and config.steps_per_epoch == STEPS_PER_EPOCH
    assert config.learning_rate == LEARNING_RATE and config.time_budget_minutes == 3
    assert config.crop == 64 and config.name == "mine"  # the largest crop the images hold
    config.check()


def test_config_refuses_what_cannot_be_fine_tuned(trained_run, new_kind, tmp_path):
    with pytest.raises(ModelLoadError, match="no such model file"):
        finetune_config(tmp_path / "missing.keras", new_kind, "run")
    cardless = tmp_path / "cardless.keras"
    cardless.write_bytes(trained_run.result.model_path.read_bytes())
    with pytest.raises(ModelLoadError, match="does not say the network's architecture"):
        finetune_config(cardless, new_kind, "run")
    with pytest.raises(DatasetError):
        finetune_config(trained_run.result.model_path, tmp_path / "nothing", "run")
    with pytest.raises(ConfigError, match="minutes must be positive"):
        finetune_config(trained_run.result.model_path, new_kind, "run", minutes=0)
    small = make_flat_dataset(tmp_path / "small", 2, (3, 3), n_nuclei=0)
    with pytest.raises(ConfigError, match="every image is smaller than 4 pixels a side"):
        finetune_config(trained_run.result.model_path, small, "run")


def test_start_from_copies_the_weights_and_freezes_batch_norm(trained_model, trained_run):
    import keras

    from nuclei_core.network.model import ModelConfig, build_unet

    model = build_unet(ModelConfig(depth=2, base_filters=TRAINED_CONFIG["base_filters"]))
    start_from(model, trained_run.result.model_path)
    for mine, theirs in zip(model.get_weights(), trained_model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and not any(layer.trainable for layer in norms)
    assert any(layer.trainable for layer in model.layers if layer.weights)


def test_start_from_gives_a_distance_network_the_base_models_two_channels(
    trained_model, trained_run, tmp_path
):
    from nuclei_core.network.model import ModelConfig, build_unet, save_model

    config = ModelConfig(depth=2, base_filters=TRAINED_CONFIG["base_filters"], distance=True)
    model = build_unet(config)
    start_from(model, trained_run.result.model_path)
    batch = np.random.default_rng(0).random((1, 32, 32, 3)).astype(np.float32)
    grown = np.asarray(model(batch))
    assert grown.shape[-1] == 3
    np.testing.assert_allclose(grown[..., :2], trained_model(batch), atol=1e-5)
    # The other way round (dropping a channel) is another network.
    path = save_model(model, tmp_path / "distance.keras")
    with pytest.raises(ConfigError, match="another network than this run's"):
        start_from(build_unet(ModelConfig(depth=2, base_filters=config.base_filters)), path)


def test_start_from_refuses_another_network(trained_run):
    from nuclei_core.network.model import ModelConfig, build_unet

    with pytest.raises(ConfigError, match="another network than this run's"):
        start_from(build_unet(ModelConfig(depth=3, base_filters=4)), trained_run.result.model_path)


def test_finetuning_improves_its_own_images_and_keeps_batch_norm(
    trained_run, trained_model, new_kind, finetuned
):
    from nuclei_core.network.model import load_model

    _, result = finetuned
    model = load_model(result.model_path)
    before, after = _foreground_iou(trained_model, new_kind), _foreground_iou(model, new_kind)
    print(f"foreground IoU on the new kind: {before:.3f} -> {after:.3f}")
    assert before < 0.5 and after > before + 0.15
    # Frozen batch norm: the moving statistics are the base model's, unchanged.
    for layer, base_layer in zip(model.layers, trained_model.layers, strict=True):
        if "batch_normalization" in type(layer).__name__.lower():
            np.testing.assert_array_equal(layer.moving_mean, base_layer.moving_mean)


def test_finetuned_card_names_its_base_data_images_and_minutes(trained_run, new_kind, finetuned):
    config, result = finetuned
    card = json.loads(result.card_path.read_text())
    assert card["base_model"]["path"] == str(trained_run.result.model_path)
    assert card["base_model"]["name"] == "run"
    assert len(card["base_model"]["sha256"]) == 64
    replayed = card["finetune"].pop("n_replayed")
    assert card["finetune"] == {
        "dataset": str(new_kind),
        "n_images": 3,
        "minutes": None,
        "rehearsal": [str(trained_run.data)],  # the base model's training folder, found here
    }
    assert 0 < replayed <= 64 and card["split"]["n_train"] == 3 + replayed
    # three images are too few to hold one out: none validates, and the card says so
    assert card["split"]["n_val"] == 0 and card["split"]["n_test"] == 0
    assert not any(key.startswith("val_") for key in card["final_metrics"])
    assert card["postprocess"]["chosen_by"].startswith("no validation images")
    assert (
        card["params"]["split"] == "holdout" and card["params"]["base_model"] == config.base_model
    )
    assert len(card["history"]) == 6
    assert card["command"] == config.command_line()
    assert card["command"].startswith(f"python -m nuclei_core finetune --model {config.base_model}")


def test_a_model_trained_on_from_another_keeps_its_minimum_confidence(tmp_path):
    base = tmp_path / "base.keras"
    base.write_bytes(b"weights")
    config = TrainConfig(data="mine", out=str(tmp_path / "run"), base_model=str(base))
    assert "postprocess" not in base_model_summary(config, 3)  # no card: nothing to keep
    (tmp_path / "base.json").write_text(json.dumps({"postprocess": {"min_confidence": 0.9}}))
    kept = base_model_summary(config, 3)["postprocess"]
    assert kept == {"min_confidence": 0.9, "chosen_by": f"inherited from the base model {base}"}


def test_a_fresh_run_has_no_base_model_in_its_card(trained_run):
    card = json.loads(trained_run.result.card_path.read_text())
    assert "base_model" not in card and "finetune" not in card


def test_rehearsal_replays_the_base_models_training_split_only(trained_run, new_kind):
    from nuclei_core.datasets.folders import discover_dataset, select_split
    from nuclei_core.training import check_dataset

    config = finetune_config(trained_run.result.model_path, new_kind, "run")
    assert config.rehearsal == [str(trained_run.data)]
    split = check_dataset(config)
    replayed = [
        sample.id
        for sample, group in zip(split.train, split.train_groups, strict=True)
        if group.startswith("rehearsal")
    ]
    train_ids = {sample.id for sample in select_split(discover_dataset(trained_run.data), "train")}
    assert replayed and set(replayed) <= train_ids
    assert split.val == []  # three images: all train, none validates
    fewer = dataclasses.replace(config, rehearsal_images=2)
    assert len(check_dataset(fewer).train) == 3 + 2
    without = finetune_config(trained_run.result.model_path, new_kind, "run", rehearsal=[])
    assert without.rehearsal is None


def test_holdout_split_never_validates_on_a_training_image(new_kind, tmp_path):
    from nuclei_core.training import check_dataset

    split = check_dataset(
        TrainConfig(data=str(new_kind), out="run", split="holdout", batch_size=8, crop=32)
    )
    assert len(split.train) == 3 and split.val == [] and split.n_test == 0
    with pytest.raises(ConfigError, match="batch size 8 is larger"):
        check_dataset(TrainConfig(data=str(new_kind), out="run", batch_size=8, crop=32))
    eleven = make_ring_dataset(tmp_path / "eleven", n_images=11)
    split = check_dataset(TrainConfig(data=str(eleven), out="run", split="holdout", crop=32))
    held = {sample.id for sample in split.val}
    assert len(held) == 2 and not held & {sample.id for sample in split.train}
    assert len(split.train) == 9


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("split", "random", "split must be one of"),
        ("steps_per_epoch", 0, "steps per epoch"),
        ("rehearsal_images", 0, "rehearsal images"),
    ],
)
def test_config_checks_the_new_fields(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(data="a", out="run", **{field: value}).check()


def test_cli_finetune_writes_the_model_and_prints_the_time(trained_run, new_kind, tmp_path):
    out = tmp_path / "cli_run"
    command = [
        sys.executable,
        "-m",
        "nuclei_core",
        "finetune",
        "--model",
        str(trained_run.result.model_path),
        "--data",
        str(new_kind),
        "--minutes",
        "0.05",
        "--out",
        str(out),
        "--precision",
        "float32",
        "--rehearsal",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "time budget of 0.05 min reached" in done.stderr
    assert f"model: {out / 'model.keras'}" in done.stdout and " min" in done.stdout
    card = json.loads((out / "model.json").read_text())
    assert card["finetune"]["minutes"] == 0.05 and card["finetune"]["n_images"] == 3
    assert card["finetune"]["rehearsal"] == [] and card["finetune"]["n_replayed"] == 0


def test_a_finetuning_job_runs_in_the_background_and_registers_its_model(
    trained_run, new_kind, tmp_path, monkeypatch
):
    from support import wait_for

    from nuclei_core import jobs
    from nuclei_core.registry import Registry

    monkeypatch.setenv("NUCLEI_DATA_DIR", str(tmp_path / "data"))
    config = finetune_config(trained_run.result.model_path, new_kind, "", minutes=0.1)
    registry = Registry(tmp_path / "data" / "registry.sqlite3")
    run = jobs.start_training(dataclasses.replace(config, precision="float32"), registry)
    log = jobs.run_dir(run.id) / jobs.LOG_FILE_NAME

    def ended():
        found = registry.get_run(run.id)
        return None if found.is_active else found

    finished = wait_for(ended, f"fine-tuning run {run.id} to end", log)
    assert finished.status == "finished", log.read_text(errors="replace")[-2000:]
    card = json.loads(Path(finished.card_path).read_text())
    assert card["base_model"]["path"] == str(trained_run.result.model_path)
    assert card["finetune"]["n_images"] == 3 and card["finetune"]["minutes"] == 0.1
    # a job started from the app records the command that reproduces it, not the worker's
    assert card["command"].startswith(
        f"python -m nuclei_core finetune --model {trained_run.result.model_path} "
    )
    assert Path(finished.model_path).is_file()


def test_a_model_fine_tuned_from_the_cli_carries_its_calibration_and_segmenting_uses_it(
    trained_run, tmp_path
):
    """Six images: one is held out, the result is calibrated on it, and the card's level
    is what ``evaluate`` (the CLI's segmentation path) then segments with."""
    from nuclei_core.cli import build_parser
    from nuclei_core.evaluation.calibrate import LEVELS, level_key

    data = make_ring_dataset(tmp_path / "six", n_images=6, seed=700)
    out = tmp_path / "tuned"
    command = [sys.executable, "-m", "nuclei_core", "finetune"]
    command += ["--model", str(trained_run.result.model_path), "--data", str(data)]
    command += ["--minutes", "0.05", "--out", str(out), "--precision", "float32", "--rehearsal"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads((out / "model.json").read_text())
    assert card["split"]["n_train"] == 5 and card["split"]["n_val"] == 1
    calibration = card["postprocess"]
    assert calibration["chosen_by"] == "validation images of this run"
    assert sum(calibration["n_images"].values()) == 1 and calibration["min_confidence"] in LEVELS
    assert set(calibration["levels"]) == {level_key(level) for level in LEVELS}
    best = max(scores["six"] for scores in calibration["levels"].values())
    assert calibration["validation_dsb_score"]["six"] == best
    assert (
        calibration["validation_dsb_score"]["six"] >= calibration["uncalibrated_dsb_score"]["six"]
    )
    # the card's command reproduces the run: it parses to the same options
    parser = build_parser()
    recorded = vars(parser.parse_args(shlex.split(card["command"])[3:]))
    assert recorded == vars(parser.parse_args(command[3:]))
    report = tmp_path / "report.json"
    evaluated = subprocess.run(
        [
            sys.executable,
            "-m",
            "nuclei_core",
            "evaluate",
            "--model",
            str(out / "model.keras"),
            "--data",
            str(data),
            "--split",
            "all",
            "--json",
            str(report),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    used = json.loads(report.read_text())["options"]["min_confidence"]
    assert used == calibration["min_confidence"]
