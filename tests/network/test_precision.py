"""Tests of nuclei_core.network.precision: the bfloat16 run and its float32 export, the
precision chosen for each machine, the refusal on CPUs without AVX-512, the CPU flags."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nuclei_core.errors import ConfigError
from nuclei_core.network import precision as precision_module
from nuclei_core.training import TrainConfig, train

TINY = {"depth": 2, "base_filters": 4, "crop": 32, "batch_size": 4, "strategy": "none"}


# ============================================================================== precision


def _layer_policies(model) -> set[str]:
    return {layer.dtype_policy.name for layer in model.layers if layer.weights}


@pytest.mark.skipif(
    not precision_module.BFLOAT16_CPU_FLAGS <= precision_module.cpu_flags(),
    reason="bfloat16 training needs a CPU with AVX-512 (or a GPU)",
)
def test_bfloat16_run_saves_a_float32_model_with_the_same_predictions(
    tmp_path, flat_dataset_factory
):
    from nuclei_core.network.model import load_model

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
AVX512 = AVX2 | precision_module.BFLOAT16_CPU_FLAGS
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
    choice = precision_module.resolve_precision(precision, has_gpu, flags, architecture)
    assert choice == expected


def test_bfloat16_is_refused_on_a_cpu_without_avx512(tmp_path, flat_dataset_factory, monkeypatch):
    # oneDNN would fail inside the first step with "could not create a primitive descriptor".
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: AVX2)
    data = flat_dataset_factory(tmp_path / "data", size=(32, 32))
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), precision="bfloat16", **TINY)
    with pytest.raises(ConfigError, match="bfloat16.*avx512bw, avx512dq, avx512f, avx512vl"):
        train(config)
    assert not (tmp_path / "run").exists()


def test_cpu_flags_are_read_from_the_flags_line_only():
    assert precision_module.cpu_flags("model name : amx_bf16 lookalike\nflags : fpu avx2") == {
        "fpu",
        "avx2",
    }
    assert "amx_bf16" in precision_module.cpu_flags("processor : 0\nflags\t: fpu amx_bf16 amx_tile")
    assert precision_module.cpu_flags("processor : 0") == frozenset()
