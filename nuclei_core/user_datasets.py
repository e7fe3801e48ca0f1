"""User datasets: the images a person corrected in the app, kept for fine-tuning.

A user dataset is a named folder under :func:`nuclei_core.locations.user_datasets_folder`
in the flat layout that :mod:`nuclei_core.datasets` reads (``inputs/<stem>.png``, 8-bit
grey or RGB, and ``masks/<stem>.png``, a 16-bit label image), plus ``dataset.json``, which
notes for each image its kind, the model that made the starting point, its number of
nuclei, when it was saved and the file it came from.

The image files are the truth; ``dataset.json`` only describes them. Every file is
written through :mod:`nuclei_core.storage`: the image and its mask are written under
temporary (hidden) names and renamed into place together, ``dataset.json`` last, so a
crash never leaves a half-written file in the dataset. Saving an image under a name
the dataset already holds replaces that image and its labels and touches nothing else.
Writers of one dataset take turns (a ``flock`` on its hidden ``.lock`` file).

Examples
--------
>>> labels = np.zeros((32, 32), np.int32); labels[4:12, 4:12] = 1; labels[20:28, 20:28] = 2
>>> image = (labels > 0).astype(np.uint8) * 200
>>> saved = save_training_image("my cells", "tile 1.tif", image, labels, "fluorescence")
>>> saved.stem, saved.n_nuclei, saved.mask_path.relative_to(user_datasets_folder()).as_posix()
('tile_1', 2, 'my_cells/masks/tile_1.png')
>>> [(found.name, found.n_images) for found in list_user_datasets()]
[('my_cells', 1)]
>>> remove_training_image("my_cells", "tile_1")
>>> dataset_images("my_cells")
[]
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from skimage.segmentation import relabel_sequential

from nuclei_core.cards import utc_now
from nuclei_core.checks import (
    as_image,
    check_choice,
    check_label_image,
    check_name,
    check_optional_path,
    check_same_shape,
)
from nuclei_core.datasets import IMAGE_SUFFIXES, MASK_STEM_SUFFIXES, flat_mask
from nuclei_core.errors import DatasetError, InputError, NucleiError, StorageError
from nuclei_core.export import encode_png, labels_png16
from nuclei_core.groundtruth import read_labels
from nuclei_core.imread import read_image
from nuclei_core.locations import user_datasets_folder
from nuclei_core.preprocess import IMAGE_KINDS, normalise, to_display_rgb
from nuclei_core.render import overlay
from nuclei_core.render import thumbnail as shrink
from nuclei_core.storage import atomic_path, atomic_write_bytes, atomic_write_json, ensure_dir

__all__ = [
    "DATASET_FILE",
    "MAX_NUCLEI",
    "UserDataset",
    "UserImage",
    "check_dataset_name",
    "check_image_stem",
    "dataset_folder",
    "dataset_images",
    "list_user_datasets",
    "remove_training_image",
    "save_training_image",
    "thumbnail",
]

DATASET_FILE = "dataset.json"
"""The file in each user dataset that describes its images."""

MAX_NUCLEI = int(np.iinfo(np.uint16).max)
"""The most nuclei one image may hold: its labels are saved as a 16-bit PNG."""

_LOCK_FILE = ".lock"
_MAX_NAME_LENGTH = 100
_SAFE_NAME = re.compile(r"[A-Za-z0-9_\-.]+")


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


@dataclass(frozen=True)
class UserDataset:
    """A user dataset: its name, folder, number of images and last change (ISO-8601 UTC)."""

    name: str
    folder: Path
    n_images: int
    updated_at: str | None


# --------------------------------------------------------------------------- names


def _safe_name(value: Any, name: str, what: str) -> str:
    """``value`` stripped, blanks turned to ``_``, held to letters, digits, ``-``, ``_``, ``.``."""
    given = check_name(value, name)
    text = re.sub(r"\s+", "_", given)
    if len(text) > _MAX_NAME_LENGTH:
        raise InputError(f"{name}: {what} {given!r} is longer than {_MAX_NAME_LENGTH} characters")
    if not _SAFE_NAME.fullmatch(text):
        bad = "".join(sorted(set(re.sub(r"[A-Za-z0-9_\-.]", "", text))))
        raise InputError(
            f"{name}: {what} {given!r} holds {bad!r}; use letters, digits, '-', '_' and '.'"
        )
    if text.startswith("."):
        raise InputError(f"{name}: {what} {given!r} must not start with '.' (a hidden file)")
    return text


def check_dataset_name(name: Any) -> str:
    """A user dataset's name, made safe for a folder: blanks become ``_``; others are refused.

    Parameters
    ----------
    name : str
        The name as typed.

    Returns
    -------
    str
        The name of the dataset's folder.

    Raises
    ------
    InputError
        The name is empty, too long, starts with ``.`` or holds other characters than
        letters, digits, ``-``, ``_``, ``.`` and blanks.

    Examples
    --------
    >>> check_dataset_name(" H&E tiles ")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: dataset: name 'H&E tiles' holds '&'; use letters, digits, '-', '_' and '.'
    >>> check_dataset_name("HE tiles 2")
    'HE_tiles_2'
    """  # noqa: E501
    return _safe_name(name, "dataset", "name")


def check_image_stem(name: Any) -> str:
    """The stem an image is saved under: its file name without an image ending, made safe.

    A stem that ends like a mask's (``_mask``, ``_labels``, ...) is refused, because
    the dataset reader pairs masks with images by dropping that ending.

    Examples
    --------
    >>> check_image_stem("tile 3.TIF")
    'tile_3'
    >>> check_image_stem("tile_mask.png")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: name: image name 'tile_mask.png' ends in '_mask', as masks do; rename it
    """  # noqa: E501
    text = check_name(name, "name")
    if Path(text).suffix.lower() in IMAGE_SUFFIXES:
        text = text[: -len(Path(text).suffix)]
    stem = _safe_name(text, "name", "image name")
    for ending in MASK_STEM_SUFFIXES:
        if stem.lower().endswith(ending):
            raise InputError(
                f"name: image name {name!r} ends in {ending!r}, as masks do; rename it"
            )
    return stem


def dataset_folder(dataset: Any) -> Path:
    """The folder of a user dataset (which may not exist yet).

    Examples
    --------
    >>> dataset_folder("my cells").name
    'my_cells'
    """
    return user_datasets_folder() / check_dataset_name(dataset)


def _existing_folder(dataset: Any) -> Path:
    folder = dataset_folder(dataset)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: user dataset {dataset!r} does not exist")
    return folder


# --------------------------------------------------------------------------- dataset.json


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the dataset's write lock (``flock``: between processes and between threads)."""
    path = folder / _LOCK_FILE
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise StorageError(f"cannot open {path}: {error.strerror or error}") from error
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _read_record(folder: Path) -> dict[str, Any]:
    """``dataset.json`` as a dict with an ``images`` dict (empty when missing or unreadable)."""
    try:
        record = json.loads((folder / DATASET_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict):
        record = {}
    if not isinstance(record.get("images"), dict):
        record["images"] = {}
    return record


def _write_record(folder: Path, record: dict[str, Any]) -> None:
    record["name"] = folder.name
    record["updated_at"] = utc_now()
    atomic_write_json(folder / DATASET_FILE, record)


# --------------------------------------------------------------------------- saving


def _image_uint8(image: np.ndarray) -> np.ndarray:
    """The image as 8-bit grey or RGB: ``uint8`` kept, ``bool`` as 0/255, others rescaled.

    Rescaling keeps the 0.5-99.9 percentile range, as the app shows images.
    """
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    return (normalise(image, 0.5, 99.9) * 255 + 0.5).astype(np.uint8)


def _checked_labels(labels: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """The labels numbered 1..n without gaps, and n; refuses no nucleus or too many."""
    labels = check_same_shape(check_label_image(labels), "labels", shape[:2], "image")
    renumbered = relabel_sequential(np.array(labels))[0]  # a copy: skimage refuses read-only
    count = int(renumbered.max())
    if count == 0:
        raise InputError("labels: no nucleus; a training image needs at least one")
    if count > MAX_NUCLEI:
        raise InputError(
            f"labels: {count} nuclei do not fit a 16-bit label image (at most {MAX_NUCLEI})"
        )
    return renumbered, count


def _write_pair(image_path: Path, image_bytes: bytes, mask_path: Path, mask_bytes: bytes) -> None:
    """Write an image and its mask under temporary names, then rename both into place.

    When the mask's rename fails after the image's, the image is put back as it was.
    """
    previous = image_path.read_bytes() if image_path.is_file() else None
    image_replaced = False
    try:
        with atomic_path(mask_path) as mask_temp:
            mask_temp.write_bytes(mask_bytes)
            with atomic_path(image_path) as image_temp:
                image_temp.write_bytes(image_bytes)
            image_replaced = True
    except BaseException:
        if image_replaced and previous is None:
            image_path.unlink(missing_ok=True)
        elif image_replaced:
            atomic_write_bytes(image_path, previous)
        raise


def save_training_image(
    dataset: Any,
    name: Any,
    image: Any,
    labels: Any,
    kind: Any,
    source_model: Any = None,
) -> UserImage:
    """Save an image and its corrected labels into a user dataset (created when new).

    Parameters
    ----------
    dataset : str
        The dataset's name (see :func:`check_dataset_name`).
    name : str
        The image's file name or stem (see :func:`check_image_stem`); an image saved
        under the same stem before is replaced, with its labels.
    image : array_like, shape (H, W) or (H, W, 3)
        The image; ``uint8`` is saved as it is, other types rescaled to 8 bits.
    labels : ndarray of int, shape (H, W)
        The nuclei (0 = background); saved numbered 1..n without gaps.
    kind : {"fluorescence", "brightfield", "stained"}
        The image's kind (:func:`nuclei_core.preprocess.image_kind`).
    source_model : str or path, optional
        The model that made the starting point (``None``: drawn from scratch).

    Returns
    -------
    UserImage

    Raises
    ------
    InputError
        A bad name or kind, labels that do not fit the image, no nucleus, or more
        than :data:`MAX_NUCLEI` nuclei.
    StorageError
        A file cannot be written; the dataset is left as it was.

    Examples
    --------
    >>> labels = np.zeros((16, 16), np.int32); labels[2:9, 2:9] = 7
    >>> saved = save_training_image("set", "a", np.zeros((16, 16, 3), np.uint8), labels,
    ...                             "stained", source_model="models/default.keras")
    >>> saved.n_nuclei, saved.kind, saved.source_model
    (1, 'stained', 'models/default.keras')
    """
    folder = dataset_folder(dataset)
    stem = check_image_stem(name)
    image = as_image(image)
    renumbered, count = _checked_labels(labels, image.shape)
    kind = check_choice(kind, "kind", IMAGE_KINDS)
    source_model = check_optional_path(source_model, "source_model")
    image_bytes = encode_png(_image_uint8(image))
    mask_bytes = labels_png16(renumbered)
    ensure_dir(folder)
    with _locked(folder):
        image_path = ensure_dir(folder / "inputs") / f"{stem}.png"
        mask_path = ensure_dir(folder / "masks") / f"{stem}.png"
        _write_pair(image_path, image_bytes, mask_path, mask_bytes)
        entry = {
            "kind": kind,
            "source_model": source_model,
            "n_nuclei": count,
            "saved_at": utc_now(),
            "original_name": str(name).strip(),
        }
        record = _read_record(folder)
        record["images"][stem] = entry
        _write_record(folder, record)
    return _user_image(stem, image_path, mask_path, entry)


# --------------------------------------------------------------------------- reading


def _user_image(stem: str, image_path: Path, mask_path: Path, entry: dict) -> UserImage:
    return UserImage(
        stem=stem,
        image_path=image_path,
        mask_path=mask_path,
        kind=entry.get("kind"),
        source_model=entry.get("source_model"),
        n_nuclei=int(entry["n_nuclei"]),
        saved_at=entry.get("saved_at"),
        original_name=entry.get("original_name"),
    )


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
    described = _read_record(folder)["images"]
    found = []
    for image_path in sorted(inputs.glob("*.png")):
        mask_path = masks / image_path.name
        if image_path.name.startswith(".") or not mask_path.is_file():
            continue
        entry = described.get(image_path.stem)
        if not isinstance(entry, dict) or "n_nuclei" not in entry:
            entry = _undescribed(mask_path)
        found.append(_user_image(image_path.stem, image_path, mask_path, entry))
    return found


def dataset_images(dataset: Any) -> list[UserImage]:
    """The images of a user dataset, by stem.

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
    return _images_of(_existing_folder(dataset))


def list_user_datasets() -> list[UserDataset]:
    """The user datasets, by name (an empty list when there is none).

    Examples
    --------
    >>> list_user_datasets()
    []
    """
    root = user_datasets_folder()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if (
            not folder.is_dir()
            or folder.name.startswith(".")
            or not _SAFE_NAME.fullmatch(folder.name)
        ):
            continue
        updated = _read_record(folder).get("updated_at")
        if not isinstance(updated, str):
            updated = datetime.fromtimestamp(folder.stat().st_mtime, UTC).isoformat(
                timespec="seconds"
            )
        found.append(UserDataset(folder.name, folder, len(_images_of(folder)), updated))
    return found


def remove_training_image(dataset: Any, stem: Any) -> None:
    """Remove one image and its labels from a user dataset; the others stay as they are.

    Raises
    ------
    DatasetError
        The dataset does not exist or holds no image of that stem.
    StorageError
        A file cannot be removed.

    Examples
    --------
    >>> _ = save_training_image("set", "a", np.zeros((8, 8), np.uint8), np.eye(8, dtype=int),
    ...                         "fluorescence")
    >>> remove_training_image("set", "b")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nuclei_core.errors.DatasetError: ...: user dataset 'set' holds no image 'b'
    """
    folder = _existing_folder(dataset)
    stem = check_image_stem(stem)
    with _locked(folder):
        paths = [folder / "inputs" / f"{stem}.png", folder / "masks" / f"{stem}.png"]
        if not any(path.is_file() for path in paths):
            raise DatasetError(f"{folder}: user dataset {dataset!r} holds no image {stem!r}")
        for path in paths:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                raise StorageError(f"cannot remove {path}: {error.strerror or error}") from error
        record = _read_record(folder)
        record["images"].pop(stem, None)
        _write_record(folder, record)


# --------------------------------------------------------------------------- pictures


def _nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Labels shrunk to ``shape`` by picking the nearest pixel (no new label values)."""
    rows = (np.arange(shape[0]) + 0.5) * labels.shape[0] // shape[0]
    columns = (np.arange(shape[1]) + 0.5) * labels.shape[1] // shape[1]
    return labels[rows.astype(int)][:, columns.astype(int)]


def thumbnail(image_path: str | os.PathLike, size: int = 160) -> np.ndarray:
    """A small picture of a dataset image with the outlines of its nuclei drawn over it.

    The mask is found as the dataset reader pairs it (:func:`nuclei_core.datasets.flat_mask`);
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
