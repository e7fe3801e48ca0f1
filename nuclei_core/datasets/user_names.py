"""User datasets' names: a dataset's folder name and an image's stem, made safe or refused.

A user dataset (:mod:`nuclei_core.datasets.user_read`, :mod:`nuclei_core.datasets.user_write`)
is a folder named :func:`check_dataset_name` under
:func:`nuclei_core.locations.user_datasets_folder`; its images are saved under the stems
:func:`check_image_stem` makes.  Blanks become ``_``; names are held to letters, digits,
``-``, ``_`` and ``.``, at most 100 characters, not hidden.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from nuclei_core.checks import check_name
from nuclei_core.datasets.folders import IMAGE_SUFFIXES, MASK_STEM_SUFFIXES
from nuclei_core.errors import DatasetError, InputError
from nuclei_core.locations import user_datasets_folder

__all__ = [
    "SAFE_NAME",
    "check_dataset_name",
    "check_image_stem",
    "dataset_folder",
    "existing_dataset_folder",
]

SAFE_NAME = re.compile(r"[A-Za-z0-9_\-.]+")
"""What a safe name is made of (a user dataset's folder is listed only when its name is)."""
_MAX_NAME_LENGTH = 100


def _safe_name(value: Any, name: str, what: str) -> str:
    """``value`` stripped, blanks turned to ``_``, held to letters, digits, ``-``, ``_``, ``.``."""
    given = check_name(value, name)
    text = re.sub(r"\s+", "_", given)
    if len(text) > _MAX_NAME_LENGTH:
        raise InputError(f"{name}: {what} {given!r} is longer than {_MAX_NAME_LENGTH} characters")
    if not SAFE_NAME.fullmatch(text):
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


def dataset_folder(dataset: Any, root: Path | None = None) -> Path:
    """The folder of a user dataset (which may not exist yet), in ``root`` (default
    :func:`~nuclei_core.locations.user_datasets_folder`; a signed-in user's own is
    :attr:`nuclei_core.access.users.User.datasets_root`).

    Examples
    --------
    >>> dataset_folder("my cells").name
    'my_cells'
    """
    return (root or user_datasets_folder()) / check_dataset_name(dataset)


def existing_dataset_folder(dataset: Any, root: Path | None = None) -> Path:
    """The folder of a user dataset that exists (in ``root``, as :func:`dataset_folder`).

    Raises
    ------
    DatasetError
        No user dataset of that name exists.

    Examples
    --------
    >>> existing_dataset_folder("never saved")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nuclei_core.errors.DatasetError: ...: user dataset 'never saved' does not exist
    """
    folder = dataset_folder(dataset, root)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: user dataset {dataset!r} does not exist")
    return folder
