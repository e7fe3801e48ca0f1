"""Tests of nuclei_core.network.runtime: backend choice, the cached OpenVINO export, equal
outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nuclei_core.errors import ConfigError, ModelLoadError
from nuclei_core.network import runtime
from nuclei_core.network.predict import predict_probabilities

needs_openvino = pytest.mark.skipif(
    not runtime.openvino_available(), reason="openvino is not installed"
)


@pytest.fixture
def model_file(tmp_path, tiny_model_file):
    """A private copy of the tiny model, so a test may change or damage its cache."""
    copy = tmp_path / "model" / "tiny.keras"
    copy.parent.mkdir()
    copy.write_bytes(tiny_model_file.read_bytes())
    return copy


def test_unknown_backend_and_precision_are_refused(model_file):
    with pytest.raises(ConfigError, match="backend must be one of"):
        runtime.resolve_backend("onnx")
    with pytest.raises(ConfigError, match="needs backend 'openvino'"):
        runtime.load_inference_model(model_file, "tensorflow", "bfloat16")


def test_auto_falls_back_to_tensorflow_without_openvino(monkeypatch, model_file):
    monkeypatch.setattr(runtime, "openvino_available", lambda: False)
    assert runtime.resolve_backend("auto") == "tensorflow"
    with pytest.raises(ConfigError, match="needs the openvino package"):
        runtime.resolve_backend("openvino")
    model = runtime.load_inference_model(model_file, "auto")
    assert runtime.backend_of(model) == "tensorflow"
    assert runtime.describe(model) == "TensorFlow, float32"


@needs_openvino
def test_auto_picks_openvino_where_installed(model_file):
    model = runtime.load_inference_model(model_file, "auto")
    assert runtime.backend_of(model) == "openvino"
    assert runtime.describe(model) == f"OpenVINO, {runtime.resolve_precision('auto', 'openvino')}"


@needs_openvino
@pytest.mark.parametrize(
    ("flags", "expected"),
    [({"avx512f", "avx512_bf16"}, "bfloat16"), ({"amx_bf16"}, "bfloat16"), ({"avx2"}, "float32")],
)
def test_auto_precision_is_bfloat16_only_on_cpus_that_compute_it(
    monkeypatch, model_file, flags, expected
):
    from nuclei_core.network import precision

    real_flags = precision.cpu_flags()
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
    assert runtime.resolve_precision("auto", "openvino") == expected
    model = runtime.load_inference_model(model_file)
    # What it computes in is this CPU's doing: bfloat16 asked of a CPU without it is float32.
    native = bool(precision.NATIVE_BFLOAT16_CPU_FLAGS & real_flags)
    computed = expected if native or expected == "float32" else "float32"
    assert runtime.describe(model) == f"OpenVINO, {computed}"
    assert runtime.describe(runtime.load_inference_model(model_file, "tensorflow")) == (
        "TensorFlow, float32"
    )


def test_an_explicit_precision_is_kept_and_an_unknown_one_refused():
    assert runtime.resolve_precision("float32", "openvino", frozenset({"amx_bf16"})) == "float32"
    assert runtime.resolve_precision("bfloat16", "openvino", frozenset()) == "bfloat16"
    with pytest.raises(ConfigError, match="precision must be one of"):
        runtime.resolve_precision("int8", "openvino")


@needs_openvino
def test_openvino_gives_the_tensorflow_probabilities(model_file):
    from nuclei_core.network.model import load_model

    rng = np.random.default_rng(0)
    image = rng.random((70, 90, 3), dtype=np.float32)
    keras_model = load_model(model_file)
    openvino_model = runtime.load_openvino(model_file)
    for tta in (False, True):
        expected = predict_probabilities(keras_model, image, tta=tta)
        found = predict_probabilities(openvino_model, image, tta=tta)
        assert found.shape == expected.shape == (70, 90, 2)
        np.testing.assert_allclose(found, expected, atol=1e-4)


@needs_openvino
def test_export_is_cached_and_reused(model_file, monkeypatch):
    folder = runtime.exported_model(model_file)
    assert folder.parent == runtime.cache_root(model_file)
    manifest = json.loads((folder / runtime.MANIFEST_NAME).read_text())
    assert manifest["keras_sha256"] == runtime.file_sha256(model_file)
    exports = []
    monkeypatch.setattr(runtime, "_export", lambda *args: exports.append(args))
    assert runtime.exported_model(model_file) == folder
    assert exports == []  # reused, not converted again


@pytest.mark.slow
@needs_openvino
def test_export_is_rebuilt_when_the_model_changes(model_file):
    from nuclei_core.network.model import ModelConfig, build_unet, save_model

    old_folder = runtime.exported_model(model_file)
    save_model(build_unet(ModelConfig(depth=2, base_filters=8)), model_file)
    new_folder = runtime.exported_model(model_file)
    assert new_folder != old_folder and not old_folder.exists()  # the stale export is gone
    outputs = runtime.load_openvino(model_file).predict_batch(np.zeros((1, 32, 32, 3), np.float32))
    assert outputs.shape == (1, 32, 32, 2)


@pytest.mark.slow
@needs_openvino
@pytest.mark.parametrize("damage", ["truncate_bin", "edit_xml", "drop_manifest", "bad_json"])
def test_a_damaged_export_is_rebuilt_never_trusted(model_file, damage):
    folder = runtime.exported_model(model_file)
    if damage == "truncate_bin":
        data = (folder / "model.bin").read_bytes()
        (folder / "model.bin").write_bytes(data[: len(data) // 2])
    elif damage == "edit_xml":
        (folder / "model.xml").write_text("<net/>")
    elif damage == "drop_manifest":
        (folder / runtime.MANIFEST_NAME).unlink()
    else:
        (folder / runtime.MANIFEST_NAME).write_text("{not json")
    assert not runtime._cache_is_valid(folder, runtime.file_sha256(model_file))
    rebuilt = runtime.exported_model(model_file)
    assert runtime._cache_is_valid(rebuilt, runtime.file_sha256(model_file))
    model = runtime.load_openvino(model_file)
    outputs = model.predict_batch(np.zeros((2, 32, 32, 3), np.float32))
    assert outputs.shape == (2, 32, 32, 2) and np.isfinite(outputs).all()


@needs_openvino
def test_a_model_folder_that_cannot_be_written_uses_the_data_folder(
    model_file, monkeypatch, tmp_path
):
    monkeypatch.setenv("NUCLEI_DATA_DIR", str(tmp_path / "data"))
    real_export = runtime._export

    def refuse_beside_the_model(model_path, folder, digest):
        if folder.parent == runtime.cache_root(model_path):
            raise PermissionError(folder)
        real_export(model_path, folder, digest)

    monkeypatch.setattr(runtime, "_export", refuse_beside_the_model)
    folder = runtime.exported_model(model_file)
    assert (tmp_path / "data") in folder.parents


@needs_openvino
def test_bad_model_files_are_refused_before_export(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model file"):
        runtime.load_openvino(tmp_path / "missing.keras")
    fake = tmp_path / "fake.keras"
    fake.write_bytes(b"not a zip")
    with pytest.raises(ModelLoadError, match="not a Keras model"):
        runtime.load_openvino(fake)
    assert not runtime.cache_root(fake).exists() or not any(
        (runtime.cache_root(fake)).glob("*/manifest.json")
    )


@needs_openvino
def test_a_training_checkpoint_in_mixed_bfloat16_runs_on_both_backends_as_float32(tmp_path):
    """A run's ``checkpoint_best.keras`` keeps its mixed bfloat16 policy; OpenVINO failed on it
    with a raw "cpu_convert can't convert from f32 to dynamic". Both backends now run its
    float32 copy, and give what the float32 model of the same weights gives."""
    from nuclei_core.network.model import ModelConfig, save_model
    from nuclei_core.network.precision import build_with_policy, float32_copy, model_precision

    model_config = ModelConfig(depth=2, base_filters=4)
    checkpoint = build_with_policy(model_config, "mixed_bfloat16", None)
    path = save_model(checkpoint, tmp_path / "checkpoint_best.keras")
    image = np.random.default_rng(0).random((64, 96, 3), dtype=np.float32)
    expected = predict_probabilities(float32_copy(checkpoint, model_config), image)
    for backend in ("tensorflow", "openvino"):
        model = runtime.load_inference_model(path, backend, "float32")
        if backend == "tensorflow":
            assert model_precision(model) == "float32"
        found = predict_probabilities(model, image)
        assert np.abs(found - expected).max() < 1e-4, backend


def test_an_openvino_model_says_the_precision_it_computes_in(model_file):
    from nuclei_core.network.precision import NATIVE_BFLOAT16_CPU_FLAGS, cpu_flags

    asked = runtime.load_openvino(model_file, "bfloat16")
    native = bool(NATIVE_BFLOAT16_CPU_FLAGS & cpu_flags())
    assert asked.precision == ("bfloat16" if native else "float32")
    assert runtime.load_openvino(model_file, "float32").precision == "float32"
