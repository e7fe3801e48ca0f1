"""The segmentation networks, and saving / loading them safely.

Two architectures, both fully convolutional with two sigmoid output channels
(foreground, nucleus boundary) so touching nuclei can be split afterwards, and
optionally a third (``ModelConfig(distance=True)``): each nucleus pixel's distance
to the nucleus's edge over the largest in that nucleus (1 at its centre), whose
peaks seed one nucleus each:

* ``"unet"``: a compact U-Net built from scratch (depth, filters, batch norm
  and dropout are parameters), fast enough for a CPU;
* ``"mobilenetv2"``: the TensorFlow segmentation tutorial model the original
  student project used (MobileNetV2 encoder, transpose-convolution decoder).

Model files are Keras 3 ``.keras`` archives, written atomically and loaded
with ``safe_mode=True`` after checking the archive holds nothing unexpected.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
from keras import layers

from nuclei_core.errors import ConfigError, EncoderWeightsError, ModelLoadError
from nuclei_core.io.groundtruth import ZIP_ERRORS
from nuclei_core.network import losses  # noqa: F401  (registers the custom loss and metrics)
from nuclei_core.storage import atomic_path

ARCHITECTURES = ("unet", "mobilenetv2")
OUTPUT_CHANNELS = 2  # foreground, boundary
DISTANCE_CHANNELS = 3  # foreground, boundary, normalised distance to the nucleus's edge
KERAS_ARCHIVE_MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and size of a segmentation network."""

    architecture: str = "unet"
    depth: int = 4
    base_filters: int = 16
    batch_norm: bool = True
    dropout: float = 0.1
    distance: bool = False  # a third output channel: the normalised distance map

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(
                f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}"
            )
        if not 1 <= self.depth <= 6:
            raise ConfigError(f"depth must be between 1 and 6, got {self.depth}")
        if not 2 <= self.base_filters <= 128:
            raise ConfigError(f"base_filters must be between 2 and 128, got {self.base_filters}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 32 if self.architecture == "mobilenetv2" else 2**self.depth

    @property
    def output_channels(self) -> int:
        """2 (foreground, boundary), or 3 with the distance map."""
        return DISTANCE_CHANNELS if self.distance else OUTPUT_CHANNELS

    def as_dict(self) -> dict:
        return asdict(self)


def _conv_block(inputs, filters: int, config: ModelConfig, name: str):
    """Two 3x3 convolutions, each followed by batch norm (optional) and ReLU."""
    features = inputs
    for index in (1, 2):
        features = layers.Conv2D(
            filters, 3, padding="same", use_bias=not config.batch_norm, name=f"{name}_conv{index}"
        )(features)
        if config.batch_norm:
            features = layers.BatchNormalization(name=f"{name}_bn{index}")(features)
        features = layers.Activation("relu", name=f"{name}_relu{index}")(features)
    return features


def build_unet(config: ModelConfig = ModelConfig()) -> keras.Model:
    """A U-Net: encoder of conv blocks and max-pooling, decoder with skip connections.

    Examples
    --------
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> model.output_shape
    (None, None, None, 2)
    >>> build_unet(ModelConfig(depth=2, base_filters=4, distance=True)).output_shape
    (None, None, None, 3)
    """
    inputs = keras.Input(shape=(None, None, 3), name="image")
    features, skips = inputs, []
    for level in range(config.depth):
        features = _conv_block(features, config.base_filters * 2**level, config, f"down{level}")
        skips.append(features)
        features = layers.MaxPooling2D(2, name=f"pool{level}")(features)
    features = _conv_block(features, config.base_filters * 2**config.depth, config, "bottom")
    if config.dropout:
        features = layers.Dropout(config.dropout, name="bottom_dropout")(features)
    for level in reversed(range(config.depth)):
        filters = config.base_filters * 2**level
        features = layers.Conv2DTranspose(filters, 2, strides=2, name=f"up{level}_transpose")(
            features
        )
        features = layers.Concatenate(name=f"up{level}_concat")([features, skips[level]])
        features = _conv_block(features, filters, config, f"up{level}")
    outputs = layers.Conv2D(
        config.output_channels, 1, activation="sigmoid", dtype="float32", name="probabilities"
    )(features)
    return keras.Model(inputs, outputs, name="unet")


def _imagenet_mobilenet(weights: str | None) -> keras.Model:
    """MobileNetV2 without its top: ImageNet weights, or random ones for ``weights=None``."""
    if weights == "imagenet":
        try:
            return keras.applications.MobileNetV2(
                input_shape=(None, None, 3), include_top=False, weights="imagenet"
            )
        except Exception as error:  # no network, no cached file, corrupt download
            raise EncoderWeightsError(
                f"ImageNet weights for MobileNetV2 could not be loaded ({type(error).__name__}: "
                f"{error}); pass weights=None to start from random weights"
            ) from error
    if weights is not None:
        raise ConfigError(f"weights: expected 'imagenet' or None, got {weights!r}")
    base = keras.applications.MobileNetV2(
        input_shape=(None, None, 3), include_top=False, weights=None
    )
    # From random weights the default momentum (0.999) leaves the moving statistics
    # far from the batch statistics after a short run, and inference predicts all
    # background; 0.9 lets them settle.
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.9
    return base


def build_mobilenet_unet(config: ModelConfig = ModelConfig("mobilenetv2"), weights="imagenet"):
    """The TensorFlow segmentation tutorial model: MobileNetV2 encoder, pix2pix decoder.

    Encoder activations at strides 2, 4, 8, 16 and 32 feed a decoder of
    transpose convolutions (512, 256, 128, 64 filters) with skip connections.
    """
    base = _imagenet_mobilenet(weights)
    skip_names = [
        "block_1_expand_relu",  # stride 2
        "block_3_expand_relu",  # stride 4
        "block_6_expand_relu",  # stride 8
        "block_13_expand_relu",  # stride 16
        "block_16_project",  # stride 32
    ]
    encoder = keras.Model(
        base.input, [base.get_layer(name).output for name in skip_names], name="mobilenetv2_encoder"
    )
    inputs = keras.Input(shape=(None, None, 3), name="image")
    rescaled = layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")(inputs)
    *skips, features = encoder(rescaled)
    decoder_filters = (512, 256, 128, 64)
    for index, (filters, skip) in enumerate(zip(decoder_filters, reversed(skips), strict=True)):
        features = layers.Conv2DTranspose(
            filters, 3, strides=2, padding="same", use_bias=False, name=f"up{index}_transpose"
        )(features)
        features = layers.BatchNormalization(name=f"up{index}_bn")(features)
        if config.dropout:
            features = layers.Dropout(config.dropout, name=f"up{index}_dropout")(features)
        features = layers.Activation("relu", name=f"up{index}_relu")(features)
        features = layers.Concatenate(name=f"up{index}_concat")([features, skip])
    outputs = layers.Conv2DTranspose(
        config.output_channels,
        3,
        strides=2,
        padding="same",
        activation="sigmoid",
        dtype="float32",
        name="probabilities",
    )(features)
    return keras.Model(inputs, outputs, name="mobilenetv2_unet")


def build_model(config: ModelConfig, weights: str | None = "imagenet") -> keras.Model:
    """Build the network ``config`` names (``weights`` only affects MobileNetV2).

    Raises :class:`EncoderWeightsError` when MobileNetV2's ImageNet weights cannot
    be loaded (offline, no cached copy); ``weights=None`` starts from random ones.
    """
    if config.architecture == "mobilenetv2":
        return build_mobilenet_unet(config, weights=weights)
    return build_unet(config)


def save_model(model: keras.Model, path) -> Path:
    """Save ``model`` as a ``.keras`` file atomically: the old file stays valid on failure."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ConfigError(f"{path}: model files must end in .keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        model.save(temporary)
    return path


MAX_CONFIG_BYTES = 64 * 1024 * 1024
CODE_CLASS_NAMES = ("Lambda", "TFOpLambda", "__lambda__")
"""Keras class names that carry Python code; a model holding one is refused."""
ALLOWED_MODULE_ROOTS = ("keras", "nuclei_core")
"""A model's config may only name classes and functions from these packages."""


def _unsafe_reference(config) -> str | None:
    """The first class or module in a model config that could run foreign code."""
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            class_name = item.get("class_name")
            if isinstance(class_name, str) and class_name in CODE_CLASS_NAMES:
                return f"a {class_name} layer (arbitrary code)"
            module = item.get("module")
            if isinstance(module, str) and module.split(".")[0] not in ALLOWED_MODULE_ROOTS:
                return f"a reference to module {module!r}"
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _check_archive(path: Path) -> None:
    """Refuse anything but a plain Keras 3 archive, before Keras reads it."""
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path}: not a Keras model (.keras files are zip archives)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            extra = sorted(names - KERAS_ARCHIVE_MEMBERS)
            if extra:
                raise ModelLoadError(f"{path}: unexpected files in the model archive: {extra[:5]}")
            if "config.json" not in names:
                raise ModelLoadError(f"{path}: model archive has no config.json")
            if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise ModelLoadError(f"{path}: model config is too large")
            config_text = archive.read("config.json").decode("utf-8", errors="replace")
    except ModelLoadError:
        raise
    except ZIP_ERRORS as error:
        raise ModelLoadError(f"{path}: corrupt model archive ({error})") from None
    if '"Lambda"' in config_text or '"TFOpLambda"' in config_text:
        raise ModelLoadError(f"{path}: model contains a Lambda layer (arbitrary code); refused")
    try:
        config = json.loads(config_text)
    except (ValueError, RecursionError):
        raise ModelLoadError(f"{path}: model config is not valid JSON") from None
    unsafe = _unsafe_reference(config)
    if unsafe:
        raise ModelLoadError(f"{path}: model contains {unsafe}; refused")


def check_model_shape(model: keras.Model, label: str) -> None:
    """Refuse a model whose input is not ``(H, W, 3)`` or output not ``(H, W, 2 or 3)``."""
    input_shape, output_shape = tuple(model.input_shape), tuple(model.output_shape)
    if len(input_shape) != 4 or input_shape[-1] != 3:
        raise ModelLoadError(f"{label}: model input shape {input_shape} is not (batch, H, W, 3)")
    if len(output_shape) != 4 or output_shape[-1] not in (OUTPUT_CHANNELS, DISTANCE_CHANNELS):
        raise ModelLoadError(
            f"{label}: model output shape {output_shape} is not (batch, H, W, "
            f"{OUTPUT_CHANNELS}) or (batch, H, W, {DISTANCE_CHANNELS})"
        )


def load_keras_safely(path, compile: bool = False) -> keras.Model:
    """Load any ``.keras`` file with ``safe_mode=True`` after the archive's checks (no
    Lambda layer, no unsafe reference, only the expected members); shapes unchecked.

    Raises
    ------
    ModelLoadError
        Not a Keras archive, unexpected members, a Lambda layer, or does not load.
    """
    path = Path(path)
    if path.name.lower().endswith(".bioimageio.zip"):  # runtime.PACKAGE_SUFFIX (no import circle)
        raise ModelLoadError(
            f"{path.name}: a BioImage Model Zoo package from elsewhere runs here (segment, "
            "compare) but is not a Keras network of this project: it cannot be trained on, "
            "fine-tuned or exported again"
        )
    _check_archive(path)
    try:
        return keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # Keras raises many types for bad archives
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelLoadError(f"{path}: model does not load ({message[:300]})") from None


def load_model(path, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` model with ``safe_mode=True`` and check its shapes.

    Raises
    ------
    ModelLoadError
        Not a Keras archive, unexpected members, a Lambda layer, does not load,
        or the wrong input/output shape.
    """
    model = load_keras_safely(path, compile)
    check_model_shape(model, str(path))
    return model
