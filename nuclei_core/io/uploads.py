"""Reading files a user uploaded: an image, its ground truth, and a key for caching results.

The readers of :mod:`nuclei_core.io.imread` and :mod:`nuclei_core.io.groundtruth` warn
about what they had to fix (a multi-page TIFF, NaN pixels ...); here the warnings
are collected as one-line texts to show beside the result, instead of going to
the terminal.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable

import numpy as np

from nuclei_core.io.groundtruth import read_labels
from nuclei_core.io.imread import read_image

__all__ = ["image_digest", "read_ground_truth", "read_upload"]


def _collect_warnings(function: Callable, *args, **kwargs) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function(*args, **kwargs)
    return result, [str(item.message) for item in caught]


def read_upload(data: bytes, name: str) -> tuple[np.ndarray, list[str]]:
    """Read an uploaded image; returns ``(image, warnings)`` (warnings as one-line texts).

    Raises
    ------
    ImageReadError
        Not a readable PNG, JPEG or TIFF image; the message names ``name``.

    Examples
    --------
    >>> from nuclei_core.io.export import encode_png
    >>> image, notes = read_upload(encode_png(np.zeros((4, 6), np.uint8)), "cells.png")
    >>> image.shape, notes
    ((4, 6), [])
    """
    return _collect_warnings(read_image, data, name=name)


def read_ground_truth(data: bytes, name: str, shape) -> tuple[np.ndarray, list[str]]:
    """Read uploaded ground truth (mask, label image, zip); returns ``(labels, warnings)``.

    ``shape`` is the image's shape; ground truth of another size is refused.

    Raises
    ------
    GroundTruthError
        Unreadable, empty, or not the size of the image.

    Examples
    --------
    >>> from nuclei_core.io.export import encode_png
    >>> mask = np.zeros((4, 6), np.uint8); mask[1:3, 1:3] = 255
    >>> labels, notes = read_ground_truth(encode_png(mask), "mask.png", (4, 6, 3))
    >>> int(labels.max()), notes
    (1, [])
    """
    return _collect_warnings(read_labels, data, name=name, shape=tuple(shape[:2]))


def image_digest(data: bytes) -> str:
    """Short content hash of an upload (the key of cached predictions).

    Examples
    --------
    >>> image_digest(b"abc")
    'ba7816bf8f01cfea'
    """
    return hashlib.sha256(bytes(data)).hexdigest()[:16]
