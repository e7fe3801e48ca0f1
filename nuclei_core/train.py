"""Training: data pipeline, fit loop with checkpoints and resume, model card.

:func:`train` takes a :class:`TrainConfig` and writes into ``config.out``:

* ``model.keras`` and ``model.json`` (the best weights and their model card),
* ``checkpoint_best.keras`` / ``checkpoint_last.keras`` and ``state.json``
  (written atomically after every epoch; ``resume=True`` continues from them),
* ``history.csv`` and TensorBoard logs under ``logs/``.

Whoever listens (the CLI's progress bar, the dashboard's training process)
passes a :class:`TrainingListener`; a ``should_stop`` callable ends a run
cleanly between batches, keeping the best checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from skimage.segmentation import find_boundaries

from nuclei_core import io
from nuclei_core.cards import machine_description, utc_now, write_card
from nuclei_core.errors import ConfigError, EncoderWeightsError, NucleiError
from nuclei_core.storage import atomic_write_json, atomic_write_text

STRATEGIES = ("auto", "none", "mirrored", "multiworker")
PRECISIONS = ("auto", "float32", "bfloat16")
MAX_SCALE = 2.0  # crops are rescaled by a factor in [1 / MAX_SCALE, MAX_SCALE] (log-uniform)
STAIN_JITTER = 0.1  # HED optical densities scaled by 1 +- this and shifted by +- half of it
METRIC_KEYS = ("loss", "accuracy", "iou", "dice")


@dataclass
class TrainConfig:
    """Everything a training run needs; stored in the model card."""

    data: str | list[str]
    out: str
    architecture: str = "unet"
    epochs: int = 40
    batch_size: int = 8
    learning_rate: float = 2e-3
    patience: int = 10
    crop: int = 256
    val_fraction: float = 0.1
    seed: int = 0
    depth: int = 4
    base_filters: int = 16
    dropout: float = 0.1
    time_budget_minutes: float | None = None
    strategy: str = "auto"
    precision: str = "auto"
    resume: bool = False
    name: str | None = None

    def data_folders(self) -> list[str]:
        """The dataset folders, in order (``data`` is one folder or a list of them)."""
        return [self.data] if isinstance(self.data, str | os.PathLike) else list(self.data)

    def model_config(self):
        from nuclei_core.model import ModelConfig

        return ModelConfig(self.architecture, self.depth, self.base_filters, True, self.dropout)

    def check(self) -> None:
        """Refuse out-of-range values with the reason, before any work starts."""
        if not self.data_folders():
            raise ConfigError("data must name at least one dataset folder")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if not 0 < self.learning_rate <= 1:
            raise ConfigError(f"learning rate must be in (0, 1], got {self.learning_rate}")
        if self.patience < 1:
            raise ConfigError(f"patience must be at least 1, got {self.patience}")
        if not 0 < self.val_fraction < 0.9:
            raise ConfigError(f"validation fraction must be in (0, 0.9), got {self.val_fraction}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.strategy == "multiworker" and "TF_CONFIG" not in os.environ:
            raise ConfigError("strategy 'multiworker' needs the TF_CONFIG environment variable")
        if self.time_budget_minutes is not None and self.time_budget_minutes <= 0:
            raise ConfigError(f"time budget must be positive, got {self.time_budget_minutes}")
        multiple = self.model_config().size_multiple
        if self.crop < multiple or self.crop % multiple:
            raise ConfigError(f"crop must be a positive multiple of {multiple}, got {self.crop}")


class TrainingListener:
    """Receives progress from :func:`train`; override what you need."""

    def on_status(self, message: str) -> None:
        """A line of text about what training is doing now."""

    def on_batch_end(self, epoch: int, step: int, steps: int, logs: dict) -> None:
        """After every batch: ``epoch`` (0-based), ``step`` of ``steps``."""

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """After every epoch, with training and validation metrics."""


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    model_path: Path
    card_path: Path
    history: list[dict]
    best_epoch: int
    stopped_early: bool
    status: str  # "finished" or "stopped"
    final_metrics: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- data


def make_targets(labels: np.ndarray) -> np.ndarray:
    """Training targets of a label image: float32 ``(H, W, 2)`` = foreground, boundary.

    Examples
    --------
    >>> labels = np.zeros((5, 5), int); labels[1:4, 1:4] = 1
    >>> float(make_targets(labels)[..., 1].sum()), float(make_targets(labels)[..., 0].sum())
    (8.0, 9.0)
    """
    foreground = labels > 0
    boundary = find_boundaries(labels, mode="inner") & foreground
    return np.stack([foreground, boundary], axis=-1).astype(np.float32)


def _pad_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
    pad_h, pad_w = max(0, height - array.shape[0]), max(0, width - array.shape[1])
    if not pad_h and not pad_w:
        return array
    return np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)))


def _crops_per_image(height: int, width: int, crop: int) -> int:
    """Large images give several random crops per epoch (at most 4)."""
    return int(np.clip(round(height * width / crop**2), 1, 4))


class TrainingArray(NamedTuple):
    """One training image, ready for the ``tf.data`` pipeline."""

    model_input: np.ndarray  # float32 (H, W, 3), padded to at least a crop
    targets: np.ndarray  # float32 (H, W, 2)
    count: int  # random crops drawn from it per epoch
    colour: bool  # stained/colour image: gets stain augmentation


def load_training_data(samples, crop: int, listener: TrainingListener | None = None, groups=None):
    """Read samples into model inputs and targets, skipping (and listing) bad ones.

    ``groups`` names the dataset of each sample (default: one dataset); every
    (dataset, kind) group is weighted by :func:`kind_weights` so that small
    datasets and rare kinds are seen often enough.

    Returns
    -------
    arrays : list of TrainingArray
    problems : list of str, one line per skipped file
    """
    groups = groups or [""] * len(samples)
    arrays, kinds, problems = [], [], []
    for index, (sample, group) in enumerate(zip(samples, groups, strict=True), start=1):
        try:
            image, labels = io.load_sample(sample)
        except NucleiError as error:
            problems.append(str(error))
            continue
        model_input = _pad_to(io.to_model_input(image), crop, crop)
        targets = _pad_to(make_targets(labels), crop, crop)
        kind = io.image_kind(image)
        count = _crops_per_image(*labels.shape, crop)
        arrays.append(TrainingArray(model_input, targets, count, kind == "stained"))
        kinds.append(f"{group}/{kind}" if group else kind)
        if listener and (index % 25 == 0 or index == len(samples)):
            listener.on_status(f"loaded {index}/{len(samples)} images")
    weights = kind_weights(kinds, cap=_weight_cap(groups))
    arrays = [
        array._replace(count=int(round(array.count * weights[kind])))
        for array, kind in zip(arrays, kinds, strict=True)
    ]
    return arrays, problems


def _weight_cap(groups) -> float:
    """3 within one dataset; with several, a small dataset may be drawn up to 8 times as often."""
    return 8.0 if len(set(groups)) > 1 else 3.0


def kind_weights(kinds, cap: float = 3.0) -> dict[str, float]:
    """Sampling weight per image kind: rarer kinds are seen more often (at most ``cap`` x).

    The weight of a kind is ``sqrt(n_most_common / n_kind)``, so a minority
    (stained tissue is 1 image in 6 of the 2018 Data Science Bowl set) is not
    drowned by the majority. With several datasets a "kind" is a
    ``dataset/kind`` group.

    Examples
    --------
    >>> kind_weights(["fluorescence"] * 9 + ["stained"])
    {'fluorescence': 1.0, 'stained': 3.0}
    """
    counts = {kind: kinds.count(kind) for kind in set(kinds)}
    largest = max(counts.values(), default=1)
    return {kind: min(cap, math.sqrt(largest / count)) for kind, count in sorted(counts.items())}


# Stain vectors of haematoxylin, eosin and DAB (Ruifrok and Johnston, as skimage.color).
_RGB_FROM_HED = np.array(
    [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=np.float32
)
_RGB_FROM_HED /= np.linalg.norm(_RGB_FROM_HED, axis=1, keepdims=True)


def _stain_jitter(image):
    """Random HED stain change of an inverted colour model input (Tellez et al. 2018).

    The input is ``1 - rgb``; the optical densities of haematoxylin, eosin and
    DAB are each scaled by ``1 +- STAIN_JITTER`` and shifted by
    ``+- STAIN_JITTER / 2``, then hue and saturation are jittered.
    """
    import tensorflow as tf

    rgb_from_hed = tf.constant(_RGB_FROM_HED)
    hed_from_rgb = tf.constant(np.linalg.inv(_RGB_FROM_HED).astype(np.float32))
    density = -tf.math.log(tf.clip_by_value(1.0 - image, 1e-3, 1.0))
    hed = tf.tensordot(density, hed_from_rgb, axes=1)
    scale = tf.random.uniform([3], 1 - STAIN_JITTER, 1 + STAIN_JITTER)
    shift = tf.random.uniform([3], -STAIN_JITTER / 2, STAIN_JITTER / 2)
    density = tf.maximum(tf.tensordot(hed * scale + shift, rgb_from_hed, axes=1), 0.0)
    rgb = tf.exp(-density)
    rgb = tf.image.random_hue(rgb, 0.05)
    rgb = tf.image.random_saturation(rgb, 0.7, 1.3)
    return 1.0 - tf.clip_by_value(rgb, 0.0, 1.0)


def _augment(image, target, colour, crop: int):
    """Random rescaled crop, flips, 90-degree rotation, stain and intensity jitter (tf ops).

    The crop covers ``crop * scale`` pixels (scale log-uniform in
    ``[1 / MAX_SCALE, MAX_SCALE]``, at most the image) and is resized to
    ``crop``, so nuclei are seen from half to twice their size.
    """
    import tensorflow as tf

    scale = tf.exp(tf.random.uniform([], -math.log(MAX_SCALE), math.log(MAX_SCALE)))
    shape = tf.shape(image)
    size = tf.minimum(tf.cast(tf.round(crop * scale), tf.int32), tf.minimum(shape[0], shape[1]))
    stacked = tf.concat([image, target], axis=-1)
    patch = tf.image.random_crop(stacked, tf.stack([size, size, 5]))
    patch = tf.image.resize(patch, [crop, crop], method="bilinear")
    patch = tf.image.random_flip_left_right(patch)
    patch = tf.image.random_flip_up_down(patch)
    patch = tf.image.rot90(patch, k=tf.random.uniform([], 0, 4, dtype=tf.int32))
    image, target = patch[..., :3], tf.cast(patch[..., 3:] > 0.5, tf.float32)
    image = tf.clip_by_value(image, 0.0, 1.0)
    if colour:
        image = _stain_jitter(image)
    if tf.random.uniform([]) < 0.2:
        image = tf.repeat(tf.reduce_mean(image, axis=-1, keepdims=True), 3, axis=-1)
    gamma = tf.exp(tf.random.uniform([], math.log(0.7), math.log(1.4)))
    image = image**gamma
    contrast = tf.random.uniform([], 0.7, 1.3)
    brightness = tf.random.uniform([], -0.1, 0.1)
    mean = tf.reduce_mean(image)
    image = tf.clip_by_value((image - mean) * contrast + mean + brightness, 0.0, 1.0)
    return tf.ensure_shape(image, [crop, crop, 3]), tf.ensure_shape(target, [crop, crop, 2])


def training_dataset(arrays, crop: int, batch_size: int, seed: int):
    """Infinite ``tf.data`` pipeline of augmented crops from the cached arrays."""
    import tensorflow as tf

    order = np.repeat(np.arange(len(arrays)), [array.count for array in arrays])

    def generate():
        rng = np.random.default_rng(seed)
        while True:
            for index in rng.permutation(order):
                array = arrays[index]
                yield array.model_input, array.targets, array.colour

    signature = (
        tf.TensorSpec((None, None, 3), tf.float32),
        tf.TensorSpec((None, None, 2), tf.float32),
        tf.TensorSpec((), tf.bool),
    )
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    dataset = dataset.map(
        lambda image, target, colour: _augment(image, target, colour, crop),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE), len(order)


def validation_dataset(arrays, multiple: int, replicas: int = 1):
    """Whole validation images, zero-padded to a size multiple, one per replica per batch.

    With several replicas (a distribution strategy) every batch holds one image per
    replica, zero-padded to the largest, and images are repeated to fill the last
    batch: a replica that gets an empty batch makes the evaluation step fail.
    """
    import tensorflow as tf

    padded = []
    for model_input, targets, *_ in arrays:
        height = -(-model_input.shape[0] // multiple) * multiple
        width = -(-model_input.shape[1] // multiple) * multiple
        padded.append((_pad_to(model_input, height, width), _pad_to(targets, height, width)))
    while padded and len(padded) % replicas:
        padded.append(padded[len(padded) % len(arrays)])

    signature = (
        tf.TensorSpec((None, None, 3), tf.float32),
        tf.TensorSpec((None, None, 2), tf.float32),
    )
    dataset = tf.data.Dataset.from_generator(lambda: iter(padded), output_signature=signature)
    return dataset.padded_batch(replicas).cache().prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------- callbacks


def _strategy(name: str):
    import tensorflow as tf

    if name == "multiworker":
        import os

        if "TF_CONFIG" not in os.environ:
            raise ConfigError("strategy 'multiworker' needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "auto" and len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


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
    """:func:`resolve_precision` for this machine (its GPUs and CPU flags)."""
    import tensorflow as tf

    has_gpu = bool(tf.config.list_logical_devices("GPU"))
    return resolve_precision(precision, has_gpu, cpu_flags(), architecture)


def build_with_policy(model_config, policy: str, weights: str | None):
    """Build a fresh network whose layers compute in ``policy``; the global policy is kept."""
    import keras

    from nuclei_core.model import build_model

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
    """
    copy = build_with_policy(model_config, "float32", weights=None)
    copy.set_weights(model.get_weights())
    return copy


def cosine_learning_rate(epoch: int, epochs: int, base: float, time_used: float = 0.0) -> float:
    """Cosine decay from ``base`` to 5 % of it, after one warm-up epoch.

    Progress is the larger of the share of epochs done and ``time_used``, the
    share of the time budget spent, so a run cut short by its budget still
    ends with a small learning rate.

    Examples
    --------
    >>> round(cosine_learning_rate(0, 10, 1.0), 2), round(cosine_learning_rate(9, 10, 1.0), 2)
    (0.3, 0.05)
    >>> round(cosine_learning_rate(1, 10, 1.0, time_used=1.0), 2)
    0.05
    """
    if epoch == 0 and epochs > 2:
        return 0.3 * base
    progress = min(1.0, max(epoch / max(1, epochs - 1), time_used))
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def _make_callbacks(config, out: Path, steps: int, state: dict, listener, should_stop):
    import keras

    from nuclei_core.model import save_model

    class RunKeeper(keras.callbacks.Callback):
        """Checkpoints, early stopping, time budget, stop flag and progress reports."""

        def __init__(self):
            super().__init__()
            self.epoch_started = time.monotonic()
            self.run_started = time.monotonic() - state.get("seconds", 0.0)
            self.stopped = False

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.monotonic()
            budget = config.time_budget_minutes
            time_used = (time.monotonic() - self.run_started) / (budget * 60) if budget else 0.0
            self.model.optimizer.learning_rate.assign(
                cosine_learning_rate(epoch, config.epochs, config.learning_rate, time_used)
            )

        def on_train_batch_end(self, batch, logs=None):
            if listener:
                listener.on_batch_end(self.current_epoch, batch + 1, steps, dict(logs or {}))
            if should_stop and should_stop():
                self.stopped = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            row["lr"] = float(self.model.optimizer.learning_rate.numpy())
            row["seconds"] = round(time.monotonic() - self.epoch_started, 2)
            state["history"].append(row)
            state["epoch"] = epoch + 1
            state["seconds"] = time.monotonic() - self.run_started
            monitored = row.get("val_loss", row["loss"])
            if monitored < state["best"]:
                state.update(best=monitored, best_epoch=epoch + 1, wait=0)
                save_model(self.model, out / "checkpoint_best.keras")
            else:
                state["wait"] += 1
            save_model(self.model, out / "checkpoint_last.keras")
            atomic_write_json(out / "state.json", state)
            _write_history_csv(out / "history.csv", state["history"])
            if listener:
                listener.on_epoch_end(epoch, row)
            if state["wait"] >= config.patience:
                state["stopped_early"] = True
                self.model.stop_training = True
            budget = config.time_budget_minutes
            if budget and state["seconds"] + row["seconds"] > budget * 60:
                state["stopped_early"] = True
                self.model.stop_training = True
                if listener:
                    listener.on_status(f"time budget of {budget} min reached")

        @property
        def current_epoch(self):
            return state["epoch"]

    callbacks = [RunKeeper(), keras.callbacks.TensorBoard(out / "logs", profile_batch=0)]
    return callbacks


def _write_history_csv(path: Path, history: list[dict]) -> None:
    columns = list(dict.fromkeys(key for row in history for key in row))
    lines = [",".join(columns)]
    lines += [",".join(str(row.get(column, "")) for column in columns) for row in history]
    atomic_write_text(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- train


def _check_crop_fits(samples, crop: int) -> None:
    largest = 0
    for sample in samples:
        try:
            largest = max(largest, min(io.image_size(sample.image_path)))
        except NucleiError:
            continue
        if largest >= crop:
            return
    raise ConfigError(f"crop {crop} is larger than every training image (largest side {largest})")


@dataclass
class TrainingSplit:
    """The training and validation samples of a run's dataset folders."""

    train: list = field(default_factory=list)
    val: list = field(default_factory=list)
    train_groups: list[str] = field(default_factory=list)  # dataset of each training sample
    val_groups: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    n_test: int = 0  # kept out of training and model selection


def check_dataset(config: TrainConfig) -> TrainingSplit:
    """Split every dataset folder and refuse a batch or crop they cannot feed, before any work.

    Each folder is split on its own (:func:`nuclei_core.io.select_split`), so
    the test part of every dataset stays out of training and model selection.
    """
    folders = config.data_folders()
    split = TrainingSplit()
    for folder in folders:
        dataset = io.discover_dataset(folder)
        train_samples = io.select_split(dataset, "train", config.val_fraction)
        val_samples = io.select_split(dataset, "val", config.val_fraction)
        if not val_samples and len(train_samples) >= 2:
            val_samples = [train_samples.pop()]
        group = str(folder) if len(folders) > 1 else ""
        split.train += train_samples
        split.val += val_samples
        split.train_groups += [group] * len(train_samples)
        split.val_groups += [group] * len(val_samples)
        split.problems += dataset.problems
        split.n_test += len(io.select_split(dataset, "test", config.val_fraction))
    if not split.train:
        raise ConfigError(f"{config.data}: no training images after the train/val/test split")
    if config.batch_size > len(split.train):
        raise ConfigError(
            f"batch size {config.batch_size} is larger than the {len(split.train)} training images"
        )
    _check_crop_fits(split.train, config.crop)
    return split


def _command_line() -> str | None:
    """``python -m nuclei_core ...`` when running from the CLI, else None."""
    if Path(sys.argv[0]).name not in ("__main__.py", "nuclei_core"):
        return None
    return " ".join(["python -m nuclei_core", *sys.argv[1:]])


def _should_continue(config: TrainConfig, state: dict) -> bool:
    """False when a resumed run has nothing left: all epochs, early stop or budget spent."""
    if state["epoch"] >= config.epochs or (state["epoch"] and state["wait"] >= config.patience):
        return False
    budget = config.time_budget_minutes
    return not (budget and state["seconds"] >= budget * 60)


def train(
    config: TrainConfig,
    listener: TrainingListener | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a model as ``config`` says; see the module docstring for the files written.

    Raises
    ------
    ConfigError
        A parameter is out of range, or the precision is one this machine cannot
        train in (both checked before any work starts).
    DatasetError
        The dataset folder has no usable pairs.
    """
    config.check()
    split = check_dataset(config)
    # The strategy first: a multi-worker one must exist before TensorFlow lists its devices.
    strategy = _strategy(config.strategy)
    policy = training_policy(config.precision, config.architecture)  # refused before any work
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    import keras

    from nuclei_core.losses import NucleiLoss, training_metrics
    from nuclei_core.model import load_model, save_model

    keras.utils.set_random_seed(config.seed)
    listener = listener or TrainingListener()
    listener.on_status(
        f"reading {len(split.train)} training and {len(split.val)} validation images"
    )
    train_arrays, problems = load_training_data(
        split.train, config.crop, listener, split.train_groups
    )
    val_arrays, val_problems = load_training_data(split.val, config.crop)
    problems = [*split.problems, *problems, *val_problems]
    for problem in problems:
        listener.on_status(f"skipped: {problem}")
    if len(train_arrays) < config.batch_size:
        raise ConfigError(
            f"only {len(train_arrays)} readable training images for batch size {config.batch_size}"
        )

    replicas = int(strategy.num_replicas_in_sync)
    crops_per_epoch = sum(array.count for array in train_arrays)
    steps = max(1, crops_per_epoch // config.batch_size)
    train_data, _ = training_dataset(train_arrays, config.crop, config.batch_size, config.seed)
    multiple = config.model_config().size_multiple
    val_data = validation_dataset(val_arrays, multiple, replicas) if val_arrays else None

    state_path, last_path = out / "state.json", out / "checkpoint_last.keras"
    state = {
        "epoch": 0,
        "best": float("inf"),
        "best_epoch": 0,
        "wait": 0,
        "history": [],
        "seconds": 0.0,
    }
    with strategy.scope():
        if config.resume and state_path.is_file() and last_path.is_file():
            state.update(json.loads(state_path.read_text()))
            model = load_model(last_path, compile=True)
            listener.on_status(f"resuming after epoch {state['epoch']}")
        else:
            model, state["encoder_weights"] = build_for_training(config.model_config(), policy)
            model.compile(
                optimizer=keras.optimizers.Adam(config.learning_rate),
                loss=NucleiLoss(),
                metrics=training_metrics(),
            )
    # A resumed run keeps its checkpoint's precision.
    policy = next(layer.dtype_policy.name for layer in model.layers if layer.weights)
    listener.on_status(
        f"strategy: {type(strategy).__name__} with {replicas} replica(s), precision {policy}"
    )
    state["stopped_early"] = False
    command = _command_line()
    if command:
        state["commands"] = [*state.get("commands", []), command]
    callbacks = _make_callbacks(config, out, steps, state, listener, should_stop)
    listener.on_status(f"training: {steps} steps of {config.batch_size} crops per epoch")
    started = time.monotonic()
    warnings.filterwarnings("ignore", message=".*(shuffle=True|ran out of data).*")
    if _should_continue(config, state):
        model.fit(
            train_data,
            steps_per_epoch=steps,
            epochs=config.epochs,
            initial_epoch=state["epoch"],
            validation_data=val_data,
            callbacks=callbacks,
            verbose=0,
        )
    stopped = callbacks[0].stopped
    best_path = out / "checkpoint_best.keras"
    if not best_path.is_file():
        raise NucleiError(f"{out}: training stopped before the first epoch ended; nothing saved")
    best_model = float32_copy(load_model(best_path), config.model_config())
    model_path = save_model(best_model, out / "model.keras")
    history = state["history"]
    best_row = next(row for row in history if row["epoch"] == state["best_epoch"])
    final_metrics = {
        key: best_row[key] for key in best_row if key.startswith("val_") or key in METRIC_KEYS
    }
    card = {
        "name": config.name or out.name,
        "architecture": config.architecture,
        "params": asdict(config),
        "model": config.model_config().as_dict(),
        "n_parameters": int(best_model.count_params()),
        "dataset": config.data if isinstance(config.data, list) else str(config.data),
        "split": {
            "rule": "sha256 of image id (nuclei_core.io.split_ids)",
            "val_fraction": config.val_fraction,
            "n_train": len(train_arrays),
            "n_val": len(val_arrays),
            "n_test": split.n_test,
        },
        "skipped_files": problems,
        "command": command,
        "commands": state.get("commands", []),
        "machine": machine_description(),
        "strategy": {"name": config.strategy, "replicas": replicas},
        "precision": policy,
        "encoder_weights": state.get("encoder_weights"),
        "train_seconds": round(state["seconds"], 1),
        "session_seconds": round(time.monotonic() - started, 1),
        "epochs_run": state["epoch"],
        "best_epoch": state["best_epoch"],
        "stopped_early": bool(state["stopped_early"]),
        "status": "stopped" if stopped else "finished",
        "history": history,
        "final_metrics": final_metrics,
        "created_at": utc_now(),
    }
    card_file = write_card(model_path, card)
    atomic_write_json(state_path, state)
    return TrainResult(
        model_path=model_path,
        card_path=card_file,
        history=history,
        best_epoch=state["best_epoch"],
        stopped_early=bool(state["stopped_early"]),
        status=card["status"],
        final_metrics=final_metrics,
    )
