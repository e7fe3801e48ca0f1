"""Training data: the split of the dataset folders, the arrays and the ``tf.data`` pipelines.

:func:`check_dataset` splits every dataset folder (train / val / test) and
refuses a batch or crop the images cannot feed; :func:`load_training_data`
reads the samples into :class:`TrainingArray` (model input, targets, crops per
epoch); :func:`training_dataset` turns them into an endless stream of augmented
crops (rescaling, flips, rotations, HED stain and intensity jitter) and
:func:`validation_dataset` into whole, padded validation images.
TensorFlow is imported by the two pipeline functions only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from nuclei_core.datasets import discover_dataset, load_sample, select_split
from nuclei_core.errors import ConfigError, NucleiError
from nuclei_core.imread import image_size
from nuclei_core.preprocess import image_kind, to_model_input
from nuclei_core.rescale import equivalent_diameters
from nuclei_core.training.config import TrainConfig

if TYPE_CHECKING:
    from nuclei_core.training.run import TrainingListener

MAX_SCALE = 2.0  # crops are rescaled by a factor in [1 / MAX_SCALE, MAX_SCALE] (log-uniform)
STAIN_JITTER = 0.1  # HED optical densities scaled by 1 +- this and shifted by +- half of it

# --------------------------------------------------------------------------- the split


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

    Each folder is split on its own (:func:`nuclei_core.datasets.select_split`), so
    the test part of every dataset stays out of training and model selection.

    Raises
    ------
    DatasetError
        A folder does not exist or holds no usable image/mask pairs.
    ConfigError
        No training images, or fewer than a batch, or none as large as the crop.

    Examples
    --------
    >>> from nuclei_core.locations import sample_folder
    >>> split = check_dataset(TrainConfig(data=str(sample_folder()), out="run"))
    >>> len(split.train), len(split.val), split.n_test
    (23, 4, 1)
    """
    folders = config.data_folders()
    split = TrainingSplit()
    for folder in folders:
        dataset = discover_dataset(folder)
        train_samples, val_samples = _train_and_val(dataset, config)
        group = str(folder) if len(folders) > 1 or config.rehearsal else ""
        split.train += train_samples
        split.val += val_samples
        split.train_groups += [group] * len(train_samples)
        split.val_groups += [group] * len(val_samples)
        split.problems += dataset.problems
        if config.split == "hash":
            split.n_test += len(select_split(dataset, "test", config.val_fraction))
    if not split.train:
        raise ConfigError(f"{config.data}: no training images after the train/val/test split")
    for folder in config.rehearsal or []:
        replayed = rehearsal_samples(folder, config.rehearsal_images, config.val_fraction)
        split.train += replayed
        split.train_groups += [f"rehearsal {folder}"] * len(replayed)
    if config.split == "hash" and config.batch_size > len(split.train):
        raise ConfigError(
            f"batch size {config.batch_size} is larger than the {len(split.train)} training images"
        )
    _check_crop_fits(split.train, config.crop)
    return split


def _train_and_val(dataset, config: TrainConfig) -> tuple[list, list]:
    """The training and validation samples of one folder, as ``config.split`` says.

    With ``hash`` a folder whose split has no validation image gives one of its
    training images to validation; with ``all`` every image does both.
    """
    if config.split == "all":
        return list(dataset.samples), list(dataset.samples)
    train_samples = select_split(dataset, "train", config.val_fraction)
    val_samples = select_split(dataset, "val", config.val_fraction)
    if not val_samples and len(train_samples) >= 2:
        val_samples = [train_samples.pop()]
    return train_samples, val_samples


def rehearsal_samples(folder, count: int, val_fraction: float = 0.1) -> list:
    """Up to ``count`` training-split samples of ``folder``, spread evenly over the split.

    Replayed beside a fine-tuning run's new images, they keep the network good on
    what it learned before; they come from the training split only, so the folder's
    validation and test parts stay unseen.

    Examples
    --------
    >>> from nuclei_core.locations import sample_folder
    >>> [sample.id for sample in rehearsal_samples(sample_folder(), 3)]
    ['fluo_01', 'fluo_10', 'fluo_17']
    """
    train = select_split(discover_dataset(folder), "train", val_fraction)
    step = max(1, len(train) // count)
    return train[::step][:count]


def shorter_sides(samples) -> Iterator[int]:
    """The shorter side of each sample's image, read from its header; unreadable ones skipped.

    Examples
    --------
    >>> from nuclei_core.locations import sample_folder
    >>> list(shorter_sides(discover_dataset(sample_folder()).samples[:2]))
    [1024, 256]
    """
    for sample in samples:
        try:
            yield min(image_size(sample.image_path))
        except NucleiError:
            continue


def _check_crop_fits(samples, crop: int) -> None:
    largest = 0
    for side in shorter_sides(samples):
        largest = max(largest, side)
        if largest >= crop:
            return
    raise ConfigError(f"crop {crop} is larger than every training image (largest side {largest})")


# --------------------------------------------------------------------------- the arrays


def make_targets(labels: np.ndarray, distance: bool = False) -> np.ndarray:
    """Training targets of a label image: float32 ``(H, W, 2)`` = foreground, boundary.

    With ``distance=True`` a third channel holds :func:`normalised_distance`.

    Examples
    --------
    >>> labels = np.zeros((5, 5), int); labels[1:4, 1:4] = 1
    >>> float(make_targets(labels)[..., 1].sum()), float(make_targets(labels)[..., 0].sum())
    (8.0, 9.0)
    >>> make_targets(labels, distance=True)[2, 1:4, 2].tolist()
    [0.5, 1.0, 0.5]
    """
    foreground = labels > 0
    boundary = find_boundaries(labels, mode="inner") & foreground
    channels = [foreground, boundary]
    if distance:
        channels.append(normalised_distance(labels))
    return np.stack(channels, axis=-1).astype(np.float32)


def normalised_distance(labels: np.ndarray) -> np.ndarray:
    """Each nucleus pixel's distance to the nucleus's edge over the nucleus's largest.

    The Euclidean distance to the nearest pixel outside the nucleus (background or
    another nucleus), divided by its maximum in that nucleus: 1 at the centre of every
    nucleus whatever its size, falling towards the rim; 0 on background. A nucleus cut
    by the image's border is taken to go on beyond it.

    Examples
    --------
    >>> labels = np.zeros((3, 10), int); labels[:, 1:6] = 1; labels[:, 6:] = 2
    >>> normalised_distance(labels)[1].astype(float).round(2).tolist()
    [0.0, 0.33, 0.67, 1.0, 0.67, 0.33, 0.25, 0.5, 0.75, 1.0]
    """
    result = np.zeros(labels.shape, np.float32)
    # One pixel around the image, repeating its border, so every nucleus has a margin.
    padded = np.pad(labels, 1, mode="edge")
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        around = tuple(slice(part.start, part.stop + 2) for part in box)  # box +1 px, padded
        inside = padded[around] == index
        distance = cv2.distanceTransform(inside.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        distance = distance[1:-1, 1:-1]
        result[box] += distance / max(float(distance.max()), 1.0)
    return result


class TrainingArray(NamedTuple):
    """One training image, ready for the ``tf.data`` pipeline."""

    model_input: np.ndarray  # float32 (H, W, 3), padded to at least a crop
    targets: np.ndarray  # float32 (H, W, 2), or (H, W, 3) with the distance map
    count: int  # random crops drawn from it per epoch
    colour: bool  # stained/colour image: gets stain augmentation
    diameters: np.ndarray = np.zeros(0, np.float32)  # equivalent diameter of each nucleus, px


def load_training_data(
    samples,
    crop: int,
    listener: TrainingListener | None = None,
    groups: list[str] | None = None,
    distance: bool = False,
):
    """Read samples into model inputs and targets, skipping (and listing) bad ones.

    ``groups`` names the dataset of each sample (default: one dataset); every
    (dataset, kind) group is weighted by :func:`kind_weights` so that small
    datasets and rare kinds are seen often enough. ``listener`` (a
    :class:`~nuclei_core.training.TrainingListener`) hears the progress;
    ``distance`` adds the distance map to the targets (:func:`make_targets`).

    Returns
    -------
    arrays : list of TrainingArray
    problems : list of str, one line per skipped file

    Examples
    --------
    >>> from nuclei_core.locations import sample_folder
    >>> samples = discover_dataset(sample_folder()).samples[1:3]  # two 256 x 256 images
    >>> arrays, problems = load_training_data(samples, crop=128)
    >>> arrays[0].model_input.shape, arrays[0].count, arrays[0].colour, problems
    ((256, 256, 3), 4, False, [])
    """
    groups = groups or [""] * len(samples)
    arrays, kinds, problems = [], [], []
    for index, (sample, group) in enumerate(zip(samples, groups, strict=True), start=1):
        try:
            image, labels = load_sample(sample)
        except NucleiError as error:
            problems.append(str(error))
            continue
        model_input = _pad_to(to_model_input(image), crop, crop)
        targets = _pad_to(make_targets(labels, distance), crop, crop)
        kind = image_kind(image)
        count = crops_per_image(*labels.shape, crop)
        diameters = equivalent_diameters(labels).astype(np.float32)
        arrays.append(TrainingArray(model_input, targets, count, kind == "stained", diameters))
        kinds.append(f"{group}/{kind}" if group else kind)
        if listener and (index % 25 == 0 or index == len(samples)):
            listener.on_status(f"loaded {index}/{len(samples)} images")
    weights = kind_weights(kinds, cap=weight_cap(groups))
    arrays = [
        array._replace(count=int(round(array.count * weights[kind])))
        for array, kind in zip(arrays, kinds, strict=True)
    ]
    return arrays, problems


def training_diameter(arrays) -> float | None:
    """Median equivalent diameter over every nucleus of ``arrays``, each counted once.

    None when the images hold no nucleus. The model card records it as
    ``nucleus_diameter_px``, the size :mod:`nuclei_core.rescale` scales images to.
    """
    diameters = [array.diameters for array in arrays if array.diameters.size]
    if not diameters:
        return None
    return round(float(np.median(np.concatenate(diameters))), 1)


def _pad_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
    pad_h, pad_w = max(0, height - array.shape[0]), max(0, width - array.shape[1])
    if not pad_h and not pad_w:
        return array
    return np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)))


def crops_per_image(height: int, width: int, crop: int) -> int:
    """Large images give several random crops per epoch (at most 4).

    Examples
    --------
    >>> crops_per_image(256, 256, 256), crops_per_image(1000, 1000, 256)
    (1, 4)
    """
    return int(np.clip(round(height * width / crop**2), 1, 4))


def weight_cap(groups) -> float:
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


# --------------------------------------------------------------------------- augmentation

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
    channels = target.shape[-1]
    stacked = tf.concat([image, target], axis=-1)
    patch = tf.image.random_crop(stacked, tf.stack([size, size, 3 + channels]))
    patch = tf.image.resize(patch, [crop, crop], method="bilinear")
    patch = tf.image.random_flip_left_right(patch)
    patch = tf.image.random_flip_up_down(patch)
    patch = tf.image.rot90(patch, k=tf.random.uniform([], 0, 4, dtype=tf.int32))
    # Foreground and boundary stay binary; a distance map is a fraction and stays one.
    image, masks = patch[..., :3], tf.cast(patch[..., 3:5] > 0.5, tf.float32)
    target = tf.concat([masks, patch[..., 5:]], axis=-1)
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
    return tf.ensure_shape(image, [crop, crop, 3]), tf.ensure_shape(target, [crop, crop, channels])


# --------------------------------------------------------------------------- pipelines


def training_dataset(arrays, crop: int, batch_size: int, seed: int):
    """Endless ``tf.data`` pipeline of augmented crops from the cached arrays.

    Returns
    -------
    dataset : tf.data.Dataset
        Batches of ``(images, targets)``, float32 ``(batch_size, crop, crop, 3)``
        and ``(batch_size, crop, crop, 2)``.
    crops : int
        Crops per pass over the arrays (the sum of their counts).

    Examples
    --------
    >>> image, targets = np.zeros((64, 64, 3), np.float32), np.zeros((64, 64, 2), np.float32)
    >>> array = TrainingArray(image, targets, count=2, colour=False)
    >>> dataset, crops = training_dataset([array], crop=32, batch_size=2, seed=0)
    >>> images, targets = next(iter(dataset))
    >>> tuple(images.shape), tuple(targets.shape), crops
    ((2, 32, 32, 3), (2, 32, 32, 2), 2)
    """
    import tensorflow as tf

    order = np.repeat(np.arange(len(arrays)), [array.count for array in arrays])
    channels = arrays[0].targets.shape[-1]

    def generate():
        rng = np.random.default_rng(seed)
        while True:
            for index in rng.permutation(order):
                array = arrays[index]
                yield array.model_input, array.targets, array.colour

    signature = (
        tf.TensorSpec((None, None, 3), tf.float32),
        tf.TensorSpec((None, None, channels), tf.float32),
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

    Examples
    --------
    >>> image, targets = np.zeros((40, 50, 3), np.float32), np.zeros((40, 50, 2), np.float32)
    >>> array = TrainingArray(image, targets, count=1, colour=False)
    >>> [tuple(images.shape) for images, _ in validation_dataset([array], multiple=16)]
    [(1, 48, 64, 3)]
    """
    import tensorflow as tf

    padded = []
    for model_input, targets, *_ in arrays:
        height = -(-model_input.shape[0] // multiple) * multiple
        width = -(-model_input.shape[1] // multiple) * multiple
        padded.append((_pad_to(model_input, height, width), _pad_to(targets, height, width)))
    while padded and len(padded) % replicas:
        padded.append(padded[len(padded) % len(arrays)])

    channels = arrays[0].targets.shape[-1] if arrays else 2
    signature = (
        tf.TensorSpec((None, None, 3), tf.float32),
        tf.TensorSpec((None, None, channels), tf.float32),
    )
    dataset = tf.data.Dataset.from_generator(lambda: iter(padded), output_signature=signature)
    return dataset.padded_batch(replicas).cache().prefetch(tf.data.AUTOTUNE)
