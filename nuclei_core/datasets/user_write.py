"""User datasets written: saving a corrected image and its labels, removing one.

:func:`save_training_image` writes an image (8-bit grey or RGB) and its labels (16-bit)
into the flat layout that :mod:`nuclei_core.datasets.user_read` lists and
:mod:`nuclei_core.datasets.folders` reads, and notes it in ``dataset.json``;
:func:`remove_training_image` takes one out (kept aside in the dataset's hidden
``.removed/`` folder, so that :func:`restore_training_image` can undo it).  Every file is
written through :mod:`nuclei_core.storage`: the image and its mask are written under
temporary (hidden) names and renamed into place together, ``dataset.json`` last, so a
crash never leaves a half-written file in the dataset. Saving an image under a name the
dataset already holds replaces that image and its labels (the app asks first) and touches
nothing else. Writers of one dataset take turns (a ``flock`` on its hidden ``.lock`` file).

Examples
--------
>>> from nuclei_core.datasets.user_read import dataset_images, list_user_datasets
>>> from nuclei_core.locations import user_datasets_folder
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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from skimage.segmentation import relabel_sequential

from nuclei_core.checks import (
    as_image,
    check_choice,
    check_label_image,
    check_optional_path,
    check_same_shape,
)
from nuclei_core.datasets.user_names import (
    check_image_stem,
    dataset_folder,
    existing_dataset_folder,
)
from nuclei_core.datasets.user_read import DATASET_FILE, UserImage, read_record
from nuclei_core.errors import DatasetError, InputError, StorageError
from nuclei_core.io.export import encode_png, labels_png16
from nuclei_core.registry.cards import utc_now
from nuclei_core.segmentation.preprocess import IMAGE_KINDS, normalise
from nuclei_core.storage import atomic_path, atomic_write_bytes, atomic_write_json, ensure_dir

__all__ = [
    "KEEP_REMOVED",
    "MAX_NUCLEI",
    "remove_training_image",
    "restore_training_image",
    "save_training_image",
]

MAX_NUCLEI = int(np.iinfo(np.uint16).max)
"""The most nuclei one image may hold: its labels are saved as a 16-bit PNG."""

KEEP_REMOVED = 20
"""How many removed images a dataset keeps aside for an undo (the oldest go first)."""
REMOVED_FOLDER = ".removed"
"""The hidden folder of a dataset where removed images wait for an undo."""

_LOCK_FILE = ".lock"
_REMOVED_MASK = "_mask.png"


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


def _write_record(folder: Path, record: dict[str, Any]) -> None:
    record["name"] = folder.name
    record["updated_at"] = utc_now()
    atomic_write_json(folder / DATASET_FILE, record)


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
    root: Path | None = None,
) -> UserImage:
    """Save an image and its corrected labels into a user dataset (created when new).

    Parameters
    ----------
    dataset : str
        The dataset's name (see :func:`~nuclei_core.datasets.user_names.check_dataset_name`).
    name : str
        The image's file name or stem (see
        :func:`~nuclei_core.datasets.user_names.check_image_stem`); an image saved under
        the same stem before is replaced, with its labels.
    image : array_like, shape (H, W) or (H, W, 3)
        The image; ``uint8`` is saved as it is, other types rescaled to 8 bits.
    labels : ndarray of int, shape (H, W)
        The nuclei (0 = background); saved numbered 1..n without gaps.
    kind : {"fluorescence", "brightfield", "stained"}
        The image's kind (:func:`nuclei_core.segmentation.preprocess.image_kind`).
    source_model : str or path, optional
        The model that made the starting point (``None``: drawn from scratch).
    root : Path, optional
        The folder of the datasets (default the data folder's; a signed-in user's own is
        :attr:`nuclei_core.access.users.User.datasets_root`).

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
    folder = dataset_folder(dataset, root)
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
        record = read_record(folder)
        record["images"][stem] = entry
        _write_record(folder, record)
    return UserImage.from_entry(stem, image_path, mask_path, entry)


def _removed_paths(folder: Path, stem: str) -> dict[str, Path]:
    """Where a removed image, its labels and its ``dataset.json`` entry wait for an undo."""
    removed = folder / REMOVED_FOLDER
    return {
        "image": removed / f"{stem}.png",
        "mask": removed / f"{stem}{_REMOVED_MASK}",
        "entry": removed / f"{stem}.json",
    }


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError as error:
        raise StorageError(f"cannot move {source.name}: {error.strerror or error}") from error


def _read_entry(path: Path) -> dict[str, Any]:
    """A removed image's ``dataset.json`` entry (empty when unreadable)."""
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return entry if isinstance(entry, dict) else {}


def _removed_at(path: Path) -> int:
    """When the image of an entry file was removed (its ``removed_at``, ns since 1970)."""
    removed_at = _read_entry(path).get("removed_at")
    return removed_at if isinstance(removed_at, int) else 0


def _forget_oldest_removed(folder: Path) -> None:
    """Keep the :data:`KEEP_REMOVED` images removed last; delete the files of older ones."""
    entries = sorted((folder / REMOVED_FOLDER).glob("*.json"), key=_removed_at)
    for entry in entries[: max(0, len(entries) - KEEP_REMOVED)]:
        for path in _removed_paths(folder, entry.stem).values():
            path.unlink(missing_ok=True)


def remove_training_image(dataset: Any, stem: Any, root: Path | None = None) -> None:
    """Take one image and its labels out of a user dataset (in ``root``, default the data
    folder's), keeping them aside so that :func:`restore_training_image` can undo it.

    The dataset's hidden ``.removed/`` folder keeps the :data:`KEEP_REMOVED` images removed
    last; the other images stay as they are.

    Raises
    ------
    DatasetError
        The dataset does not exist or holds no image of that stem.
    StorageError
        A file cannot be moved.

    Examples
    --------
    >>> _ = save_training_image("set", "a", np.zeros((8, 8), np.uint8), np.eye(8, dtype=int),
    ...                         "fluorescence")
    >>> remove_training_image("set", "b")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.DatasetError: user dataset 'set' holds no image 'b'
    """
    folder = existing_dataset_folder(dataset, root)
    stem = check_image_stem(stem)
    with _locked(folder):
        image_path, mask_path = folder / "inputs" / f"{stem}.png", folder / "masks" / f"{stem}.png"
        if not image_path.is_file():
            raise DatasetError(f"user dataset {folder.name!r} holds no image {stem!r}")
        aside = _removed_paths(folder, stem)
        ensure_dir(aside["image"].parent)
        record = read_record(folder)
        entry = record["images"].get(stem) or {}
        atomic_write_json(aside["entry"], {**entry, "removed_at": time.time_ns()})
        if mask_path.is_file():
            _move(mask_path, aside["mask"])
        _move(image_path, aside["image"])
        record["images"].pop(stem, None)
        _write_record(folder, record)
        _forget_oldest_removed(folder)


def restore_training_image(dataset: Any, stem: Any, root: Path | None = None) -> UserImage:
    """Put back an image that :func:`remove_training_image` took out (the undo).

    Raises
    ------
    DatasetError
        The dataset does not exist, nothing of that stem was removed (or it was removed
        too long ago), or an image of that stem was saved since.
    StorageError
        A file cannot be moved.

    Examples
    --------
    >>> saved = save_training_image("undo", "a", np.zeros((8, 8), np.uint8),
    ...                             np.eye(8, dtype=int), "stained")
    >>> remove_training_image("undo", "a"); saved.image_path.exists()
    False
    >>> back = restore_training_image("undo", "a")
    >>> back.image_path.exists(), back.kind, back.n_nuclei
    (True, 'stained', 1)
    """
    folder = existing_dataset_folder(dataset, root)
    stem = check_image_stem(stem)
    with _locked(folder):
        aside = _removed_paths(folder, stem)
        if not aside["image"].is_file():
            raise DatasetError(f"user dataset {folder.name!r} has no removed image {stem!r}")
        image_path, mask_path = folder / "inputs" / f"{stem}.png", folder / "masks" / f"{stem}.png"
        if image_path.exists():
            raise DatasetError(
                f"user dataset {folder.name!r} holds an image {stem!r} saved since it was "
                "removed; the removed one was not put back"
            )
        entry = _read_entry(aside["entry"])
        entry.pop("removed_at", None)
        if aside["mask"].is_file():
            _move(aside["mask"], ensure_dir(mask_path.parent) / mask_path.name)
        _move(aside["image"], ensure_dir(image_path.parent) / image_path.name)
        aside["entry"].unlink(missing_ok=True)
        record = read_record(folder)
        record["images"][stem] = entry
        _write_record(folder, record)
    return UserImage.from_entry(stem, image_path, mask_path, entry)
