"""Training data: the split of the dataset folders, the arrays and the ``tf.data`` pipelines.

:func:`check_dataset` splits every dataset folder (train / val / test) and
refuses a batch or crop the images cannot feed; :func:`load_training_data`
reads the samples into :class:`TrainingArray` (model input, targets, crops per
epoch); :mod:`nuclei_core.training.pipelines` turns them into ``tf.data`` streams.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from nuclei_core.datasets.folders import discover_dataset, load_sample, select_split
from nuclei_core.errors import ConfigError, NucleiError
from nuclei_core.io.imread import image_size
from nuclei_core.segmentation.diameter import equivalent_diameters
from nuclei_core.segmentation.preprocess import image_kind, to_model_input
from nuclei_core.training.config import HOLD_OUT_EVERY, MIN_IMAGES_TO_HOLD_OUT, TrainConfig

if TYPE_CHECKING:
    from nuclei_core.training.listener import TrainingListener

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

    Each folder is split on its own (:func:`nuclei_core.datasets.folders.select_split`), so
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
    training images to validation; with ``holdout`` (a fine-tune) one image in
    ``HOLD_OUT_EVERY`` validates when there are ``MIN_IMAGES_TO_HOLD_OUT`` or
    more, else every image trains and none validates. A validation image never trains.
    """
    if config.split == "holdout":
        return hold_out(list(dataset.samples))
    train_samples = select_split(dataset, "train", config.val_fraction)
    val_samples = select_split(dataset, "val", config.val_fraction)
    if not val_samples and len(train_samples) >= 2:
        val_samples = [train_samples.pop()]
    return train_samples, val_samples


def hold_out(samples: list) -> tuple[list, list]:
    """``(train, val)`` of a fine-tune's few images: one in ``HOLD_OUT_EVERY`` (those whose
    id hashes lowest, at least one) validates once there are ``MIN_IMAGES_TO_HOLD_OUT``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> images = [SimpleNamespace(id=f"cells{index}") for index in range(11)]
    >>> train, val = hold_out(images)
    >>> len(train), len(val), set(item.id for item in train) & set(item.id for item in val)
    (9, 2, set())
    >>> len(hold_out(images[:4])[1])
    0
    """
    if len(samples) < MIN_IMAGES_TO_HOLD_OUT:
        return samples, []
    count = max(1, len(samples) // HOLD_OUT_EVERY)
    ranked = sorted(samples, key=lambda sample: hashlib.sha256(sample.id.encode()).digest())
    held = {id(sample) for sample in ranked[:count]}
    return [item for item in samples if id(item) not in held], ranked[:count]


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
        model_input = pad_to(to_model_input(image), crop, crop)
        targets = pad_to(make_targets(labels, distance), crop, crop)
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
    ``nucleus_diameter_px``, the size :mod:`nuclei_core.segmentation.diameter` scales images to.
    """
    diameters = [array.diameters for array in arrays if array.diameters.size]
    if not diameters:
        return None
    return round(float(np.median(np.concatenate(diameters))), 1)


def pad_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
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
