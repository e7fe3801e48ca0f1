"""The number format a run trains in: float32, or mixed bfloat16 where the machine computes it.

:func:`resolve_precision` picks the Keras dtype policy from the requested
precision, the GPUs and the CPU's feature flags (:func:`cpu_flags`);
:func:`build_for_training` builds a network computing in that policy and
:func:`float32_copy` turns the trained one back into the float32 model users load.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from nuclei_core.errors import ConfigError, EncoderWeightsError

# oneDNN, TensorFlow's CPU backend, runs bfloat16 convolutions on CPUs with its
# "avx512_core" instruction set or newer (AMX included); on an AVX2-only CPU the first
# training step fails with "could not create a primitive descriptor".
BFLOAT16_CPU_FLAGS = frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq"})
# CPUs that compute bfloat16 natively (Intel AMX; AVX-512 BF16 on Intel Cooper Lake and
# AMD Zen 4 and later), where "auto" trains the U-Net in mixed bfloat16.
NATIVE_BFLOAT16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The CPU's feature flags, from the ``flags`` line of ``/proc/cpuinfo``.

    ``cpuinfo`` is the text of that file (read when None); the set is empty where
    it does not exist, e.g. on macOS and Windows.

    Examples
    --------
    >>> sorted(cpu_flags("flags : fpu avx2 amx_bf16"))
    ['amx_bf16', 'avx2', 'fpu']
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return frozenset()
    flags = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "")
    return frozenset(flags.partition(":")[2].split())


def resolve_precision(
    precision: str, has_gpu: bool, flags: frozenset[str], architecture: str = "unet"
) -> str:
    """The Keras dtype policy a run trains with, given the machine's GPUs and CPU flags.

    ``"auto"`` picks mixed bfloat16 for the U-Net on a CPU that computes
    bfloat16 natively (:data:`NATIVE_BFLOAT16_CPU_FLAGS`) and float32 everywhere
    else. Measured on a 2-core Sapphire Rapids with AMX (two ``bench/run.py``
    runs of 2026-11-25): the U-Net trains 1.25 times faster end to end (9.5
    images/s in bfloat16 against 7.6 in float32), while MobileNetV2 gains
    nothing (21.6 against 22.6 images/s), its depthwise convolutions not using
    the AMX tiles. On a 2-core AMD EPYC with AVX-512 BF16 and no AMX
    (2026-11-29, ``train_on_batch`` of 8 x 256 x 256): 17.8 against 13.9
    images/s, 1.28 times. The saved ``model.keras`` is float32 either way.

    Raises
    ------
    ConfigError
        ``"bfloat16"`` asked for on a machine with neither a GPU nor the AVX-512
        flags of :data:`BFLOAT16_CPU_FLAGS`.

    Examples
    --------
    >>> amx = frozenset({"avx512f", "avx512bw", "avx512vl", "avx512dq", "amx_bf16"})
    >>> resolve_precision("auto", has_gpu=False, flags=amx)
    'mixed_bfloat16'
    >>> resolve_precision("auto", has_gpu=False, flags=amx, architecture="mobilenetv2")
    'float32'
    >>> resolve_precision("auto", has_gpu=True, flags=amx)
    'float32'
    >>> resolve_precision("auto", has_gpu=False, flags=frozenset({"avx512f", "avx512_bf16"}))
    'mixed_bfloat16'
    """
    if precision == "bfloat16":
        missing = BFLOAT16_CPU_FLAGS - flags
        if missing and not has_gpu:
            raise ConfigError(
                "precision 'bfloat16' needs a GPU or a CPU with AVX-512, and this CPU "
                f"does not report {', '.join(sorted(missing))}: use precision 'auto' or 'float32'"
            )
        return "mixed_bfloat16"
    native_bfloat16 = bool(NATIVE_BFLOAT16_CPU_FLAGS & flags)
    if precision == "auto" and native_bfloat16 and not has_gpu and architecture == "unet":
        return "mixed_bfloat16"
    return "float32"


def training_policy(precision: str = "auto", architecture: str = "unet") -> str:
    """:func:`resolve_precision` for this machine (its GPUs and CPU flags).

    Examples
    --------
    >>> training_policy("float32")
    'float32'
    """
    import tensorflow as tf

    has_gpu = bool(tf.config.list_logical_devices("GPU"))
    return resolve_precision(precision, has_gpu, cpu_flags(), architecture)


def build_with_policy(model_config, policy: str, weights: str | None):
    """Build a fresh network whose layers compute in ``policy``; the global policy is kept.

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig
    >>> import keras
    >>> model = build_with_policy(ModelConfig(depth=2, base_filters=4), "mixed_bfloat16", None)
    >>> model_precision(model), keras.config.dtype_policy().name
    ('mixed_bfloat16', 'float32')
    """
    import keras

    from nuclei_core.network.model import build_model

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return build_model(model_config, weights=weights)
    finally:
        keras.config.set_dtype_policy(previous)


def build_for_training(model_config, policy: str):
    """A fresh network to train, and how its encoder starts.

    Returns ``(model, encoder_weights)``: ``"imagenet"`` or ``"random"`` for
    MobileNetV2 (random, with a warning, when the ImageNet weights cannot be
    loaded, e.g. offline), ``None`` for the U-Net, which has no pretrained part.

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig
    >>> model, encoder_weights = build_for_training(ModelConfig(depth=2), "float32")
    >>> model.output_shape, encoder_weights
    ((None, None, None, 2), None)
    """
    if model_config.architecture != "mobilenetv2":
        return build_with_policy(model_config, policy, weights=None), None
    try:
        return build_with_policy(model_config, policy, weights="imagenet"), "imagenet"
    except EncoderWeightsError as error:
        warnings.warn(f"{error}; starting from random weights", stacklevel=2)
        return build_with_policy(model_config, policy, weights=None), "random"


def float32_copy(model, model_config):
    """The same network and weights with every layer computing in float32.

    A model trained in mixed bfloat16 would run slowly, or not at all, on a CPU
    without bfloat16 support; the file users load is always float32.

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig
    >>> model_config = ModelConfig(depth=2, base_filters=4)
    >>> trained = build_with_policy(model_config, "mixed_bfloat16", None)
    >>> model_precision(trained), model_precision(float32_copy(trained, model_config))
    ('mixed_bfloat16', 'float32')
    """
    copy = build_with_policy(model_config, "float32", weights=None)
    copy.set_weights(model.get_weights())
    return copy


def computing_in_float32(model):
    """``model`` itself when it computes in float32, else a float32 clone with its weights.

    A training checkpoint (``checkpoint_best.keras``) of a run in mixed bfloat16 keeps that
    policy; OpenVINO cannot convert it ("cpu_convert can't convert from f32 to dynamic") and
    TensorFlow cannot run it on a CPU without AVX-512, so inference always gets this copy.
    Unlike :func:`float32_copy` it needs no :class:`~nuclei_core.network.model.ModelConfig`
    (every layer is cloned from its own configuration).

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig
    >>> trained = build_with_policy(ModelConfig(depth=2, base_filters=4), "mixed_bfloat16", None)
    >>> copy = computing_in_float32(trained)
    >>> model_precision(copy), computing_in_float32(copy) is copy
    ('float32', True)
    """
    import keras

    if model_precision(model) == "float32" and model.dtype_policy.name == "float32":
        return model

    def float32_layer(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=float32_layer)
    copy.set_weights(model.get_weights())
    return copy


def model_precision(model) -> str:
    """The dtype policy a model computes in: that of its first layer with weights.

    A network built in mixed bfloat16 keeps only its output layer in float32.

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig, build_unet
    >>> model_precision(build_unet(ModelConfig(depth=2, base_filters=4)))
    'float32'
    """
    return next(layer.dtype_policy.name for layer in model.layers if layer.weights)
