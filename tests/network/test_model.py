"""Tests of nuclei_core.network.model and nuclei_core.network.losses: builders, safe saving and
loading, loss."""

from __future__ import annotations

import dataclasses
import shutil
import zipfile

import keras
import numpy as np
import pytest

from nuclei_core.errors import ConfigError, EncoderWeightsError, ModelLoadError
from nuclei_core.network import model as model_module
from nuclei_core.network.losses import (
    ForegroundDice,
    ForegroundIoU,
    NucleiLoss,
    PixelAccuracy,
    training_metrics,
)
from nuclei_core.network.model import (
    ModelConfig,
    build_model,
    build_unet,
    check_model_shape,
    load_model,
    save_model,
)
from nuclei_core.network.precision import build_for_training

TINY = ModelConfig(depth=2, base_filters=4)


def random_batch(height, width, batch=1, seed=0):
    return np.random.default_rng(seed).random((batch, height, width, 3), dtype=np.float32)


# ============================================================================== builders


@pytest.mark.parametrize(
    ("depth", "sizes"),
    [(1, [(2, 2), (6, 10)]), (2, [(4, 4), (12, 20), (36, 8)]), (3, [(8, 8), (24, 40)])],
)
def test_unet_takes_any_multiple_of_two_to_the_depth(depth, sizes):
    config = ModelConfig(depth=depth, base_filters=4, dropout=0.0)
    assert config.size_multiple == 2**depth
    model = build_unet(config)
    assert model.input_shape == (None, None, None, 3)
    assert model.output_shape == (None, None, None, 2)
    for height, width in sizes:
        output = np.asarray(model(random_batch(height, width), training=False))
        assert output.shape == (1, height, width, 2)
        assert output.min() >= 0 and output.max() <= 1


def test_unet_parameters_change_the_network():
    small = build_unet(ModelConfig(depth=2, base_filters=4, batch_norm=False, dropout=0.0))
    large = build_unet(ModelConfig(depth=3, base_filters=8, batch_norm=True, dropout=0.2))
    assert large.count_params() > 4 * small.count_params()
    names = [layer.name for layer in small.layers]
    assert not any("bn" in name or "dropout" in name for name in names)
    large_types = {type(layer).__name__ for layer in large.layers}
    assert {"BatchNormalization", "Dropout"} <= large_types
    assert sum(type(layer).__name__ == "MaxPooling2D" for layer in large.layers) == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"architecture": "resnet"},
        {"depth": 0},
        {"depth": 7},
        {"base_filters": 1},
        {"dropout": 1.0},
        {"dropout": -0.1},
    ],
)
def test_model_config_refusals(kwargs):
    with pytest.raises(ConfigError):
        ModelConfig(**kwargs)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt by Keras to download a file fails the test."""

    def no_download(*args, **kwargs):
        raise AssertionError("the test tried to download something")

    monkeypatch.setattr("keras.src.utils.file_utils.get_file", no_download)


def test_mobilenetv2_from_random_weights(no_network):
    config = ModelConfig("mobilenetv2", dropout=0.0)
    assert config.size_multiple == 32
    model = build_model(config, weights=None)
    assert model.output_shape == (None, None, None, 2)
    output = np.asarray(model(random_batch(64, 96), training=False))
    assert output.shape == (1, 64, 96, 2)
    assert not any(type(layer).__name__ == "Lambda" for layer in model.layers)


@pytest.fixture
def offline_mobilenet(monkeypatch):
    """MobileNetV2 whose ImageNet download fails as it does without network."""
    real = keras.applications.MobileNetV2
    calls = []

    def offline(*args, **kwargs):
        calls.append(kwargs.get("weights"))
        if kwargs.get("weights") == "imagenet":
            raise OSError("URL fetch failure: no network")
        return real(*args, **kwargs)

    monkeypatch.setattr(keras.applications, "MobileNetV2", offline)
    return calls


def test_mobilenetv2_without_network_says_how_to_start_from_random_weights(
    offline_mobilenet, no_network
):
    with pytest.raises(EncoderWeightsError, match="ImageNet weights.*no network.*weights=None"):
        build_model(ModelConfig("mobilenetv2"), weights="imagenet")


def test_training_build_falls_back_to_random_weights_and_says_so(offline_mobilenet, no_network):
    with pytest.warns(UserWarning, match="ImageNet weights.*no network.*random weights"):
        model, encoder_weights = build_for_training(ModelConfig("mobilenetv2"), "float32")
    assert encoder_weights == "random"
    assert offline_mobilenet == ["imagenet", None]
    assert model.output_shape == (None, None, None, 2)
    encoder = model.get_layer("mobilenetv2_encoder")
    momenta = {
        layer.momentum
        for layer in encoder.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    assert momenta == {0.9}  # settles in a short run from random weights


def test_training_build_of_a_unet_has_no_pretrained_encoder(offline_mobilenet):
    model, encoder_weights = build_for_training(TINY, "float32")
    assert encoder_weights is None and offline_mobilenet == []
    assert model.name == "unet"


def test_mobilenetv2_refuses_unknown_weights():
    with pytest.raises(ConfigError, match="weights: expected 'imagenet' or None, got 'coco'"):
        build_model(ModelConfig("mobilenetv2"), weights="coco")


# ============================================================================== saving


@pytest.fixture
def saved_tiny(tmp_path):
    """A tiny U-Net with non-default batch-norm statistics, saved; returns (model, path)."""
    model = build_unet(ModelConfig(depth=2, base_filters=4, dropout=0.1))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.5, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape))
    path = save_model(model, tmp_path / "tiny.keras")
    return model, path


def test_save_load_round_trip_is_exact(saved_tiny, monkeypatch):
    model, path = saved_tiny
    seen = []
    real_load = keras.models.load_model

    def spy(*args, **kwargs):
        seen.append(kwargs.get("safe_mode"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(keras.models, "load_model", spy)
    loaded = load_model(path)
    assert seen == [True]
    batch = random_batch(20, 28, batch=2, seed=5)
    np.testing.assert_allclose(
        np.asarray(loaded(batch, training=False)),
        np.asarray(model(batch, training=False)),
        rtol=0,
        atol=1e-6,
    )
    assert sorted(zipfile.ZipFile(path).namelist()) == sorted(model_module.KERAS_ARCHIVE_MEMBERS)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_compiled_model_round_trip_keeps_loss_and_metrics(tmp_path):
    model = build_unet(TINY)
    model.compile(
        optimizer="adam", loss=NucleiLoss(boundary_weight=0.25), metrics=training_metrics()
    )
    path = save_model(model, tmp_path / "compiled.keras")
    loaded = load_model(path, compile=True)
    assert isinstance(loaded.loss, NucleiLoss)
    assert loaded.loss.boundary_weight == 0.25
    metrics = [item["class_name"] for item in loaded.get_compile_config()["metrics"]]
    assert metrics == ["PixelAccuracy", "ForegroundIoU", "ForegroundDice"]


def test_save_model_is_atomic(saved_tiny, monkeypatch):
    model, path = saved_tiny
    before = path.read_bytes()

    def broken_save(target, *args, **kwargs):
        with open(target, "wb") as handle:
            handle.write(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        save_model(model, path)
    assert path.read_bytes() == before  # the old model is intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.keras"]  # no temp files
    with pytest.raises(ConfigError, match=r"\.keras"):
        save_model(model, path.with_suffix(".h5"))


def test_load_model_refuses_missing_and_non_zip(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model file"):
        load_model(tmp_path / "missing.keras")
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    with pytest.raises(ModelLoadError, match="not a Keras model") as error:
        load_model(text)
    assert str(text) in str(error.value)


def rewrite_archive(source, target, extra=None, replace=None):
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for name in original.namelist():
            data = original.read(name)
            copy.writestr(name, (replace or {}).get(name, data))
        for name, data in (extra or {}).items():
            copy.writestr(name, data)
    return target


def test_load_model_refuses_extra_members(saved_tiny, tmp_path):
    _, path = saved_tiny
    assert load_model(path) is not None
    bad = rewrite_archive(path, tmp_path / "extra.keras", extra={"payload.py": b"import os"})
    with pytest.raises(ModelLoadError, match="unexpected files.*payload.py"):
        load_model(bad)


def test_load_model_refuses_corrupt_weights(saved_tiny, tmp_path):
    _, path = saved_tiny
    bad = rewrite_archive(path, tmp_path / "bad.keras", replace={"model.weights.h5": b"garbage"})
    with pytest.raises(ModelLoadError, match="does not load"):
        load_model(bad)


def test_load_model_refuses_lambda_and_never_runs_it(tmp_path):
    marker = tmp_path / "lambda-ran"
    # The lambda's code writes ``marker``; Keras stores its bytecode in the archive.
    payload = eval(f"lambda t: (open({str(marker)!r}, 'a').close(), t)[1]")
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Lambda(payload)(keras.layers.Conv2D(2, 1)(inputs))
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    marker.unlink()  # building the model ran it once
    with pytest.raises(ModelLoadError, match="Lambda"):
        load_model(tmp_path / "lambda.keras")
    assert not marker.exists()
    # Control: an unsafe load really would have run the payload.
    keras.models.load_model(tmp_path / "lambda.keras", safe_mode=False)
    assert marker.exists()


def test_load_model_refuses_wrong_shapes(tmp_path):
    inputs = keras.Input((None, None, 3))
    one_channel = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    save_model(one_channel, tmp_path / "one.keras")
    with pytest.raises(ModelLoadError, match="output shape") as error:
        load_model(tmp_path / "one.keras")
    assert "one.keras" in str(error.value)

    grey_inputs = keras.Input((None, None, 1))
    grey = keras.Model(grey_inputs, keras.layers.Conv2D(2, 1)(grey_inputs))
    save_model(grey, tmp_path / "grey.keras")
    with pytest.raises(ModelLoadError, match="input shape"):
        load_model(tmp_path / "grey.keras")
    four_channels = keras.Model(inputs, keras.layers.Conv2D(4, 1)(inputs))
    save_model(four_channels, tmp_path / "four.keras")
    with pytest.raises(ModelLoadError, match=r"is not \(batch, H, W, 2\) or \(batch, H, W, 3\)"):
        load_model(tmp_path / "four.keras")
    check_model_shape(build_unet(TINY), "tiny")  # the real things pass
    check_model_shape(build_unet(dataclasses.replace(TINY, distance=True)), "tiny with distance")


def test_distance_model_has_a_third_output_channel_that_survives_saving(tmp_path):
    config = dataclasses.replace(TINY, distance=True)
    model = build_unet(config)
    assert config.output_channels == 3 and model.output_shape[-1] == 3
    loaded = load_model(save_model(model, tmp_path / "distance.keras"))
    batch = np.random.default_rng(0).random((1, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded(batch), model(batch), atol=1e-6)
    assert ModelConfig().output_channels == 2


def test_saved_model_survives_copy(saved_tiny, tmp_path):
    model, path = saved_tiny
    copy = tmp_path / "copies" / "model.keras"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    assert load_model(copy).count_params() == model.count_params()


# ============================================================================== loss and metrics


def hand_made():
    """4 x 4 foreground: truth has 4 pixels; prediction hits 3, misses 1, adds 2."""
    truth = np.zeros((1, 4, 4, 2), np.float32)
    truth[0, 1:3, 1:3, 0] = 1  # 4 foreground pixels
    truth[0, 1, 1, 1] = 1  # some boundary
    guess = np.full((1, 4, 4, 2), 0.1, np.float32)
    guess[0, 1, 1, 0] = guess[0, 1, 2, 0] = guess[0, 2, 1, 0] = 0.9  # 3 TP
    guess[0, 0, 0, 0] = guess[0, 3, 3, 0] = 0.8  # 2 FP; (2, 2) is the FN
    guess[0, 3, 0, 0] = 0.5  # exactly 0.5 is background
    return truth, guess


def expected_loss(truth, guess, boundary_weight=0.5):
    p = np.clip(guess.astype(np.float64), 1e-6, 1 - 1e-6)
    t = truth.astype(np.float64)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()

    def soft_dice(a, b):
        return (2 * (a * b).sum() + 1) / (a.sum() + b.sum() + 1)

    dice_fg = soft_dice(t[..., 0], p[..., 0])
    dice_bd = soft_dice(t[..., 1], p[..., 1])
    return bce + (1 - dice_fg) + boundary_weight * (1 - dice_bd)


def test_nuclei_loss_matches_hand_computation():
    truth, guess = hand_made()
    assert float(NucleiLoss()(truth, guess)) == pytest.approx(expected_loss(truth, guess), rel=1e-4)
    heavy = NucleiLoss(boundary_weight=2.0)
    assert float(heavy(truth, guess)) == pytest.approx(expected_loss(truth, guess, 2.0), rel=1e-4)


def test_nuclei_loss_orders_predictions():
    truth, guess = hand_made()
    loss = NucleiLoss()
    perfect = float(loss(truth, truth * 0.998 + 0.001))
    partial = float(loss(truth, guess))
    inverted = float(loss(truth, 1 - truth))
    assert perfect < 0.05 < partial < inverted
    config = loss.get_config()
    assert NucleiLoss.from_config(config).boundary_weight == 0.5


def test_distance_term_counts_the_nuclei_pixels_only():
    truth, guess = hand_made()
    distance = np.where(truth[..., :1] > 0, 0.8, 0.0).astype(np.float32)
    truth3 = np.concatenate([truth, distance], axis=-1)
    right = np.concatenate([guess, distance], axis=-1)
    loss = NucleiLoss(distance_weight=2.0)
    two_channel = float(NucleiLoss()(truth, guess))
    entropy = -(0.8 * np.log(0.8) + 0.2 * np.log(0.2))  # BCE of a right fraction: its floor
    inside = 4 * entropy / (4 + 1)  # summed over the 4 nucleus pixels, over their count + 1
    assert float(loss(truth3, right)) == pytest.approx(two_channel + 2.0 * inside, rel=1e-3)
    background_noise = right.copy()
    background_noise[..., 2] = np.where(truth[..., 0] > 0, 0.8, 0.5)
    assert float(loss(truth3, background_noise)) == pytest.approx(float(loss(truth3, right)))
    wrong_inside = right.copy()
    wrong_inside[..., 2] = np.where(truth[..., 0] > 0, 0.3, 0.0)
    assert float(loss(truth3, wrong_inside)) > float(loss(truth3, right)) + 0.1
    assert NucleiLoss.from_config(loss.get_config()).distance_weight == 2.0


def test_metrics_on_hand_made_case():
    truth, guess = hand_made()
    # TP 3, FP 2, FN 1, TN 10
    expected = {PixelAccuracy: 13 / 16, ForegroundIoU: 3 / 6, ForegroundDice: 6 / 9}
    for metric_type, value in expected.items():
        metric = metric_type()
        metric.update_state(truth, guess)
        assert float(metric.result()) == pytest.approx(value, abs=1e-6), metric_type.__name__


def test_metrics_accumulate_reset_and_ignore_the_boundary_channel():
    truth, guess = hand_made()
    iou = ForegroundIoU()
    iou.update_state(truth, guess)
    iou.update_state(truth, truth)  # TP 4 more
    assert float(iou.result()) == pytest.approx(7 / 10)
    iou.reset_state()
    other_boundary = guess.copy()
    other_boundary[..., 1] = 1 - other_boundary[..., 1]
    iou.update_state(truth, other_boundary)
    assert float(iou.result()) == pytest.approx(0.5)
    assert [metric.name for metric in training_metrics()] == ["accuracy", "iou", "dice"]


def test_loss_and_metrics_are_registered_for_safe_loading():
    for item in (
        NucleiLoss(boundary_weight=0.3),
        ForegroundIoU(),
        ForegroundDice(),
        PixelAccuracy(),
    ):
        config = keras.saving.serialize_keras_object(item)
        assert config["registered_name"].startswith("nuclei_core>")
        restored = keras.saving.deserialize_keras_object(config, safe_mode=True)
        assert type(restored) is type(item)
