"""Dataset folders: finding image/ground-truth pairs, loading them, and splitting them.

Two layouts are recognised by :func:`discover_dataset`:

* Kaggle / BBBC038: ``<id>/images/<id>.png`` + ``<id>/masks/*.png`` (one binary
  mask per nucleus);
* flat: ``inputs/`` (or ``images/``) + ``masks/`` paired by file stem, a mask
  being a binary mask or an integer label image (its stem may end in one of
  :data:`MASK_STEM_SUFFIXES`); optionally under ``train/`` and ``test/`` sub-folders.

:func:`flat_images` and :func:`flat_mask` apply the same pairing rules to one
folder or one image (the app's sample images use them).  Splits are decided by
a hash of each image id (:func:`split_ids`), never by order or a random seed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nuclei_core.errors import DatasetError, GroundTruthError
from nuclei_core.io.groundtruth import labels_from_masks, read_labels
from nuclei_core.io.imread import read_image

__all__ = [
    "IMAGE_SUFFIXES",
    "MASK_STEM_SUFFIXES",
    "Dataset",
    "Sample",
    "discover_dataset",
    "flat_images",
    "flat_mask",
    "load_sample",
    "select_split",
    "split_ids",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
"""File name endings (any case) of the images and masks found in dataset folders."""

MASK_STEM_SUFFIXES = ("_masks", "_mask", "_labels", "_label", "_gt")
"""Endings of a flat-layout mask's stem that are left out to pair it with its image."""


@dataclass(frozen=True)
class Sample:
    """One image of a dataset and where its ground truth lives."""

    id: str
    image_path: Path
    mask_paths: tuple[Path, ...] = ()
    label_path: Path | None = None
    subset: str | None = None


@dataclass(frozen=True)
class Dataset:
    """Samples found in a dataset folder, and the files that could not be paired."""

    root: Path
    layout: str
    samples: tuple[Sample, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def ids(self) -> list[str]:
        return [sample.id for sample in self.samples]


def flat_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in a folder (not in its sub-folders), by name; hidden ones left out.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("b.TIF", "a.png", ".hidden.png", "notes.txt"):
    ...     _ = (folder / name).write_bytes(b"")
    >>> [path.name for path in flat_images(folder)]
    ['a.png', 'b.TIF']
    """
    folder = Path(folder)
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not path.name.startswith(".")
    )


def _mask_stem(path: Path) -> str:
    """The stem of the image a flat-layout mask belongs to."""
    stem = path.stem
    for suffix in MASK_STEM_SUFFIXES:
        if stem.lower().endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def _kaggle_samples(root: Path) -> tuple[list[Sample], list[str]]:
    samples, problems = [], []
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        images_dir, masks_dir = folder / "images", folder / "masks"
        if not images_dir.is_dir():
            continue
        images = flat_images(images_dir)
        masks = flat_images(masks_dir) if masks_dir.is_dir() else []
        if not images:
            problems.append(f"{images_dir}: no image file")
        elif not masks:
            problems.append(f"{images[0]}: image without masks (no {masks_dir.name}/ files)")
        else:
            samples.append(Sample(folder.name, images[0], tuple(masks)))
    return samples, problems


def _masks_by_stem(folder: Path) -> dict[str, Path]:
    """The masks of a flat ``masks/`` folder, keyed by the stem of their image."""
    return {_mask_stem(path): path for path in flat_images(folder)}


def flat_mask(image_path: str | os.PathLike) -> Path | None:
    """The mask of a flat-layout image (``../masks/<stem>[_mask].png``), or None.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("inputs/cells.png", "masks/cells_mask.png"):
    ...     (root / name).parent.mkdir(exist_ok=True)
    ...     _ = (root / name).write_bytes(b"")
    >>> flat_mask(root / "inputs" / "cells.png").name
    'cells_mask.png'
    """
    image_path = Path(image_path)
    masks = image_path.parent.parent / "masks"
    return _masks_by_stem(masks).get(image_path.stem) if masks.is_dir() else None


def _flat_samples(folder: Path, subset: str | None) -> tuple[list[Sample], list[str]]:
    inputs_dir = next(
        (folder / name for name in ("inputs", "images") if (folder / name).is_dir()), None
    )
    images = {path.stem: path for path in flat_images(inputs_dir)}
    masks = _masks_by_stem(folder / "masks")
    samples = [
        Sample(stem, images[stem], label_path=masks[stem], subset=subset)
        for stem in sorted(images)
        if stem in masks
    ]
    problems = [
        f"{images[stem]}: image without a mask" for stem in sorted(images) if stem not in masks
    ]
    problems += [
        f"{masks[stem]}: mask without an image" for stem in sorted(masks) if stem not in images
    ]
    return samples, problems


def _is_flat(folder: Path) -> bool:
    return (folder / "masks").is_dir() and any(
        (folder / name).is_dir() for name in ("inputs", "images")
    )


def discover_dataset(root: str | os.PathLike) -> Dataset:
    """Find image/ground-truth pairs in a dataset folder, in either layout.

    Raises
    ------
    DatasetError
        The folder does not exist, is not a folder, or holds no pairs.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: dataset folder does not exist")
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    try:
        if _is_flat(root):
            layout = "flat"
            samples, problems = _flat_samples(root, None)
        elif any(_is_flat(root / subset) for subset in ("train", "test")):
            layout = "flat"
            samples, problems = [], []
            for subset in ("train", "test"):
                if _is_flat(root / subset):
                    found, issues = _flat_samples(root / subset, subset)
                    samples += [
                        Sample(
                            f"{subset}/{sample.id}",
                            sample.image_path,
                            label_path=sample.label_path,
                            subset=subset,
                        )
                        for sample in found
                    ]
                    problems += issues
        else:
            layout = "kaggle"
            samples, problems = _kaggle_samples(root)
    except PermissionError as error:
        raise DatasetError(f"{error.filename}: permission denied") from None
    if not samples:
        detail = f" ({len(problems)} unpaired files)" if problems else ""
        raise DatasetError(
            f"{root}: no image/mask pairs found{detail}; expected <id>/images/ + <id>/masks/ "
            "or inputs/ + masks/"
        )
    return Dataset(root, layout, tuple(samples), tuple(problems))


def load_sample(sample: Sample, max_pixels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a sample's image and build its instance label image.

    Returns
    -------
    image : ndarray
        As :func:`nuclei_core.io.imread.read_image` returns it.
    labels : ndarray of int32
        0 = background, 1..N = nuclei.

    Raises
    ------
    ImageReadError, GroundTruthError
        The image or one of its masks is unreadable or does not fit.
    """
    image = read_image(sample.image_path, max_pixels=max_pixels)
    shape = image.shape[:2]
    if sample.label_path is not None:
        return image, read_labels(sample.label_path, shape=shape, max_pixels=max_pixels)
    masks = ((str(path), path) for path in sample.mask_paths)
    labels = labels_from_masks(masks, shape=shape, max_pixels=max_pixels)
    if not labels.any():
        raise GroundTruthError(f"{sample.image_path}: all masks are empty")
    return image, labels


def split_ids(
    ids: Iterable[str], val_fraction: float = 0.1, test_fraction: float = 0.1
) -> dict[str, list[str]]:
    """Split image ids into train / val / test, deterministically by a hash of each id.

    An id's split depends only on the id and the fractions, never on the
    order, the machine or a random seed; the test split depends only on
    ``test_fraction``, so changing ``val_fraction`` never moves an image into
    or out of the test split.

    Examples
    --------
    >>> parts = split_ids([f"img{i}" for i in range(100)])
    >>> sorted(parts), sum(len(v) for v in parts.values())
    (['test', 'train', 'val'], 100)
    >>> parts == split_ids(reversed([f"img{i}" for i in range(100)]))
    True
    """
    if not 0 <= test_fraction < 1 or not 0 <= val_fraction < 1 or val_fraction + test_fraction >= 1:
        raise DatasetError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be in [0, 1) "
            "and sum to less than 1"
        )
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for image_id in sorted(ids):
        digest = hashlib.sha256(str(image_id).encode("utf-8")).digest()
        position = int.from_bytes(digest[:8], "big") / 2**64
        if position < test_fraction:
            parts["test"].append(image_id)
        elif position < test_fraction + val_fraction:
            parts["val"].append(image_id)
        else:
            parts["train"].append(image_id)
    return parts


def select_split(dataset: Dataset, split: str, val_fraction: float = 0.1) -> list[Sample]:
    """Samples of one split (``"train"``, ``"val"``, ``"test"`` or ``"all"``).

    A flat layout with ``train/`` and ``test/`` sub-folders uses them as the
    test split; otherwise :func:`split_ids` decides.
    """
    if split == "all":
        return list(dataset.samples)
    if split not in ("train", "val", "test"):
        raise DatasetError(f"split must be train, val, test or all, got {split!r}")
    subsets = {sample.subset for sample in dataset.samples}
    if "test" in subsets:
        wanted = "test" if split == "test" else "train"
        pool = [sample for sample in dataset.samples if sample.subset == wanted]
        if split == "test":
            return pool
        parts = split_ids([sample.id for sample in pool], val_fraction, test_fraction=0.0)
    else:
        pool = list(dataset.samples)
        parts = split_ids([sample.id for sample in pool], val_fraction)
    chosen = set(parts[split])
    return [sample for sample in pool if sample.id in chosen]
