"""User datasets on disk: listing them, reading their images back, their thumbnails.

A user dataset is a named folder under :func:`nuclei_core.locations.user_datasets_folder`
(:mod:`nuclei_core.datasets.user_names`) in the flat layout that
:mod:`nuclei_core.datasets.folders` reads (``inputs/<stem>.png``, 8-bit grey or RGB, and
``masks/<stem>.png``, a 16-bit label image), plus ``dataset.json``, which notes for each
image its kind, the model that made the starting point, its number of nuclei, when it was
saved and the file it came from.  The image files are the truth; ``dataset.json`` only
describes them: an image it does not describe is still listed, from its files.  Images
are saved and removed by :mod:`nuclei_core.datasets.user_write`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from nuclei_core.datasets.folders import flat_mask
from nuclei_core.datasets.user_names import SAFE_NAME, existing_dataset_folder
from nuclei_core.errors import NucleiError
from nuclei_core.io.groundtruth import read_labels
from nuclei_core.io.imread import read_image
from nuclei_core.io.render import overlay
from nuclei_core.io.render import thumbnail as shrink
from nuclei_core.locations import user_datasets_folder
from nuclei_core.segmentation.preprocess import to_display_rgb

__all__ = [
    "DATASET_FILE",
    "UserDataset",
    "UserImage",
    "dataset_images",
    "list_user_datasets",
    "read_record",
    "thumbnail",
]

DATASET_FILE = "dataset.json"
"""The file in each user dataset that describes its images."""


@dataclass(frozen=True)
class UserImage:
    """One image of a user dataset and what ``dataset.json`` notes about it."""

    stem: str
    image_path: Path
    mask_path: Path
    kind: str | None
    source_model: str | None
    n_nuclei: int
    saved_at: str | None
    original_name: str | None = None

    @classmethod
    def from_entry(cls, stem: str, image_path: Path, mask_path: Path, entry: dict) -> UserImage:
        """The image of ``stem`` as ``dataset.json``'s ``entry`` describes it.

        Examples
        --------
        >>> UserImage.from_entry("a", Path("inputs/a.png"), Path("masks/a.png"),
        ...                      {"n_nuclei": 3, "kind": "stained"}).n_nuclei
        3
        """
        return cls(
            stem=stem,
            image_path=image_path,
            mask_path=mask_path,
            kind=entry.get("kind"),
            source_model=entry.get("source_model"),
            n_nuclei=int(entry["n_nuclei"]),
            saved_at=entry.get("saved_at"),
            original_name=entry.get("original_name"),
        )


@dataclass(frozen=True)
class UserDataset:
    """A user dataset: its name, folder, number of images and last change (ISO-8601 UTC)."""

    name: str
    folder: Path
    n_images: int
    updated_at: str | None


def read_record(folder: Path) -> dict[str, Any]:
    """``dataset.json`` as a dict with an ``images`` dict (empty when missing or unreadable).

    Examples
    --------
    >>> read_record(Path("no such folder"))
    {'images': {}}
    """
    try:
        record = json.loads((folder / DATASET_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict):
        record = {}
    if not isinstance(record.get("images"), dict):
        record["images"] = {}
    return record


def _undescribed(mask_path: Path) -> dict[str, Any]:
    """What the files tell of an image ``dataset.json`` does not describe (a crash, a copy)."""
    try:
        count = len(np.unique(read_labels(mask_path, kind="labels"))) - 1
    except NucleiError:
        count = 0
    saved = datetime.fromtimestamp(mask_path.stat().st_mtime, UTC)
    return {"n_nuclei": count, "saved_at": saved.isoformat(timespec="seconds")}


def _images_of(folder: Path) -> list[UserImage]:
    inputs, masks = folder / "inputs", folder / "masks"
    if not inputs.is_dir():
        return []
    described = read_record(folder)["images"]
    found = []
    for image_path in sorted(inputs.glob("*.png")):
        mask_path = masks / image_path.name
        if image_path.name.startswith(".") or not mask_path.is_file():
            continue
        entry = described.get(image_path.stem)
        if not isinstance(entry, dict) or "n_nuclei" not in entry:
            entry = _undescribed(mask_path)
        found.append(UserImage.from_entry(image_path.stem, image_path, mask_path, entry))
    return found


def dataset_images(dataset: Any, root: Path | None = None) -> list[UserImage]:
    """The images of a user dataset (in ``root``, default the data folder's), by stem.

    Raises
    ------
    DatasetError
        No user dataset of that name exists.

    Examples
    --------
    >>> dataset_images("never saved")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nuclei_core.errors.DatasetError: ...: user dataset 'never saved' does not exist
    """
    return _images_of(existing_dataset_folder(dataset, root))


def list_user_datasets(root: Path | None = None) -> list[UserDataset]:
    """The user datasets in ``root`` (default the data folder's), by name (an empty list
    when there is none).

    Examples
    --------
    >>> list_user_datasets()
    []
    """
    root = root or user_datasets_folder()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if (
            not folder.is_dir()
            or folder.name.startswith(".")
            or not SAFE_NAME.fullmatch(folder.name)
        ):
            continue
        updated = read_record(folder).get("updated_at")
        if not isinstance(updated, str):
            updated = datetime.fromtimestamp(folder.stat().st_mtime, UTC).isoformat(
                timespec="seconds"
            )
        found.append(UserDataset(folder.name, folder, len(_images_of(folder)), updated))
    return found


def _nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Labels shrunk to ``shape`` by picking the nearest pixel (no new label values)."""
    rows = (np.arange(shape[0]) + 0.5) * labels.shape[0] // shape[0]
    columns = (np.arange(shape[1]) + 0.5) * labels.shape[1] // shape[1]
    return labels[rows.astype(int)][:, columns.astype(int)]


def thumbnail(image_path: str | os.PathLike, size: int = 160) -> np.ndarray:
    """A small picture of a dataset image with the outlines of its nuclei drawn over it.

    The mask is found as the dataset reader pairs it
    (:func:`nuclei_core.datasets.folders.flat_mask`);
    without one the picture has no outlines.

    Parameters
    ----------
    image_path : str or path
        An image in the ``inputs/`` folder of a flat-layout dataset.
    size : int, default 160
        The longer side of the picture, in pixels.

    Returns
    -------
    ndarray of uint8, shape (h, w, 3)

    Raises
    ------
    ImageReadError, GroundTruthError
        The image or its mask is unreadable.

    Examples
    --------
    >>> labels = np.zeros((400, 200), np.int32); labels[100:300, 50:150] = 1
    >>> from nuclei_core.datasets.user_write import save_training_image
    >>> saved = save_training_image("set", "a", np.zeros((400, 200), np.uint8), labels,
    ...                             "fluorescence")
    >>> picture = thumbnail(saved.image_path)
    >>> picture.shape, picture.dtype, int(picture.max()) > 0
    ((160, 80, 3), dtype('uint8'), True)
    """
    picture = shrink(to_display_rgb(read_image(image_path)), size)
    mask_path = flat_mask(image_path)
    if mask_path is None:
        return picture
    labels = read_labels(mask_path, kind="labels")
    return overlay(picture, _nearest(labels, picture.shape[:2]), alpha=0.0)
