"""Reading image files: PNG, JPEG and TIFF decoded into arrays with one convention.

Images come in many shapes and dtypes; :func:`read_image` turns them into
``(H, W)`` or ``(H, W, 3)`` arrays and refuses bad files with a one-line
:class:`~nuclei_core.errors.ImageReadError` that names the file.  The pixel
budget (largest width x height) is checked from the header before any pixel is
decoded; it is ``$NUCLEI_MAX_PIXELS`` (:func:`nuclei_core.locations.max_pixels`),
read at each call.
"""

from __future__ import annotations

import io as _stdio
import logging
import os
import struct
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from nuclei_core import locations
from nuclei_core.errors import ImageReadError, InputError, InputTypeError

__all__ = [
    "TIFF_MAGIC",
    "ImageSource",
    "check_size",
    "fill_non_finite",
    "image_size",
    "is_tiff",
    "pixel_budget",
    "read_image",
    "source_bytes",
]

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO
"""What the readers accept: a path, the file's bytes, or a binary file object."""

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
"""First four bytes of a TIFF file (little/big endian, classic/BigTIFF)."""

# Pillow's own bomb check would raise its own error type; we check the header
# against our budget before decoding instead.
Image.MAX_IMAGE_PIXELS = None

# tifffile logs each damaged tag of a corrupt TIFF before raising; without a handler
# Python prints those records to stderr.  Our one-line ImageReadError says it all.
logging.getLogger("tifffile").addHandler(logging.NullHandler())


def is_tiff(data: bytes) -> bool:
    """Whether bytes (at least the first four of a file) start like a TIFF file.

    Examples
    --------
    >>> is_tiff(b"II*\\x00rest"), is_tiff(b"\\x89PNG")
    (True, False)
    """
    return data[:4] in TIFF_MAGIC


def pixel_budget(max_pixels: int | None = None) -> int:
    """``max_pixels``, or ``$NUCLEI_MAX_PIXELS`` (8192 x 8192 by default) when it is None.

    Examples
    --------
    >>> pixel_budget(600)
    600
    """
    return locations.max_pixels() if max_pixels is None else max_pixels


def source_bytes(source: ImageSource, name: str | None = None) -> tuple[bytes, str]:
    """The raw bytes of ``source`` and a name to put in messages.

    Examples
    --------
    >>> source_bytes(b"abc")
    (b'abc', '<bytes>')
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        if not path.is_file():
            raise ImageReadError(f"{label}: no such file")
        try:
            return path.read_bytes(), label
        except OSError as error:
            raise ImageReadError(f"{label}: cannot read file ({error.strerror})") from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "<bytes>"
    if hasattr(source, "read"):
        label = name or getattr(source, "name", None) or "<upload>"
        if hasattr(source, "seek"):
            source.seek(0)
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise InputTypeError(f"{label}: file object must be opened in binary mode")
        return bytes(data), label
    raise InputTypeError(
        f"source must be a path, bytes or a binary file object, got {type(source).__name__}"
    )


def check_size(width: int, height: int, label: str, max_pixels: int) -> None:
    """Refuse a zero-sized image or one over ``max_pixels``, naming the file ``label``.

    Examples
    --------
    >>> check_size(3, 2, "cells.png", 600)
    >>> check_size(30, 30, "cells.png", 600)
    Traceback (most recent call last):
    ...
    nuclei_core.errors.ImageReadError: cells.png: image is 30 x 30 = 900 pixels, over the limit of 600 (set NUCLEI_MAX_PIXELS to allow larger images)
    """  # noqa: E501
    if width <= 0 or height <= 0:
        raise ImageReadError(f"{label}: image has zero size ({width} x {height})")
    if width * height > max_pixels:
        raise ImageReadError(
            f"{label}: image is {width} x {height} = {width * height:,} pixels, over the "
            f"limit of {max_pixels:,} (set {locations.MAX_PIXELS_ENV} to allow larger images)"
        )


def _decode_tiff(data: bytes, label: str, max_pixels: int) -> np.ndarray:
    try:
        with tifffile.TiffFile(_stdio.BytesIO(data)) as tiff:
            if not tiff.pages:
                raise ImageReadError(f"{label}: TIFF file has no pages")
            page = tiff.pages[0]
            width, height = int(page.imagewidth), int(page.imagelength)
            check_size(width, height, label, max_pixels)
            if len(tiff.pages) > 1:
                warnings.warn(
                    f"{label}: multi-page TIFF with {len(tiff.pages)} pages; using the first",
                    stacklevel=3,
                )
            array = page.asarray()
    except ImageReadError:
        raise
    except Exception as error:  # tifffile raises many types for corrupt files
        raise ImageReadError(f"{label}: truncated or corrupt TIFF ({error})") from None
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[-1] not in (3, 4):
        array = np.moveaxis(array, 0, -1)  # planar (C, H, W) storage
    return array


def _decode_pillow(data: bytes, label: str, max_pixels: int) -> np.ndarray:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        # Pillow refuses a zero-sized PNG as "not an image"; check its header ourselves.
        width, height = struct.unpack(">II", data[16:24])
        check_size(width, height, label, max_pixels)
    try:
        with Image.open(_stdio.BytesIO(data)) as image:
            check_size(image.width, image.height, label, max_pixels)
            if getattr(image, "n_frames", 1) > 1:
                warnings.warn(
                    f"{label}: image has {image.n_frames} frames; using the first", stacklevel=3
                )
            image.load()
            if image.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBA", "LA", "RGBX"):
                image = image.convert("RGB" if image.mode != "LA" else "L")
            elif image.mode == "1":
                image = image.convert("L")
            return np.asarray(image)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(f"{label}: not a PNG, JPEG or TIFF image") from None
    except Exception as error:  # truncated data raises OSError, SyntaxError, ValueError...
        raise ImageReadError(f"{label}: truncated or corrupt image ({error})") from None


def read_image(
    source: ImageSource, *, name: str | None = None, max_pixels: int | None = None
) -> np.ndarray:
    """Read a PNG, JPEG or TIFF image into a numpy array.

    Parameters
    ----------
    source : str, Path, bytes or binary file object
        The image file (an uploaded file object works too).
    name : str, optional
        Name used in error messages (defaults to the path or the file's name).
    max_pixels : int, optional
        Largest width x height accepted; checked from the header before decoding.
        By default ``$NUCLEI_MAX_PIXELS`` (:func:`pixel_budget`).

    Returns
    -------
    image : ndarray
        ``(H, W)`` or ``(H, W, 3)`` in the file's dtype; alpha is dropped,
        palette and CMYK become RGB, a multi-page TIFF gives its first page
        (with a warning). Non-finite float values become the lowest finite
        value (with a warning).

    Raises
    ------
    ImageReadError
        Empty, truncated, not an image, zero-sized or over ``max_pixels``.

    Examples
    --------
    >>> import io
    >>> buffer = io.BytesIO()
    >>> Image.new("L", (5, 3), 7).save(buffer, format="PNG")
    >>> read_image(buffer.getvalue()).shape
    (3, 5)
    """
    data, label = source_bytes(source, name)
    if not data:
        raise ImageReadError(f"{label}: file is empty")
    budget = pixel_budget(max_pixels)
    if is_tiff(data):
        array = _decode_tiff(data, label, budget)
    else:
        array = _decode_pillow(data, label, budget)
    return _standardise(array, label)


def _standardise(array: np.ndarray, label: str) -> np.ndarray:
    """Bring a decoded array to ``(H, W)`` or ``(H, W, 3)`` with finite values."""
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype.kind not in "uif":
        raise ImageReadError(f"{label}: unsupported pixel type {array.dtype}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    elif array.ndim == 3 and array.shape[-1] == 2:
        array = array[..., 0]  # grey + alpha
    elif array.ndim == 3 and array.shape[-1] >= 3:
        array = array[..., :3]
    if array.ndim != 2 and not (array.ndim == 3 and array.shape[-1] == 3):
        raise ImageReadError(f"{label}: unsupported image shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageReadError(f"{label}: image has zero size {array.shape}")
    try:
        array, replaced = fill_non_finite(array)
    except InputError as error:
        raise ImageReadError(f"{label}: {error}") from None
    if replaced:
        warnings.warn(f"{label}: {replaced} NaN/inf pixels set to the lowest value", stacklevel=3)
    return np.ascontiguousarray(array)


def fill_non_finite(array: np.ndarray) -> tuple[np.ndarray, int]:
    """``array`` with NaN and infinities set to its lowest finite value, and how many were set.

    Raises
    ------
    InputError
        No value is finite.

    Examples
    --------
    >>> filled, replaced = fill_non_finite(np.array([2.0, np.nan, 5.0]))
    >>> filled.tolist(), replaced
    ([2.0, 2.0, 5.0], 1)
    """
    if array.dtype.kind != "f":
        return array, 0
    finite = np.isfinite(array)
    if finite.all():
        return array, 0
    if not finite.any():
        raise InputError("image has no finite pixel values (all NaN/inf)")
    return np.where(finite, array, array[finite].min()), int(finite.size - finite.sum())


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header only.

    Raises
    ------
    ImageReadError
        The file is not a readable image.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "cells.png"
    >>> Image.new("L", (5, 3)).save(target)
    >>> image_size(target)
    (3, 5)
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
        if is_tiff(magic):
            with tifffile.TiffFile(path) as tiff:
                page = tiff.pages[0]
                return int(page.imagelength), int(page.imagewidth)
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, UnidentifiedImageError, ValueError, IndexError) as error:
        raise ImageReadError(f"{path}: not a readable image ({error})") from None
