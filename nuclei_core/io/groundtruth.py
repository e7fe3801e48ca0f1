"""Ground truth: reading the nuclei a person drew, as an instance label image.

Three kinds of file hold ground truth, and :func:`read_labels` reads each into an
``int32 (H, W)`` label image (0 = background, 1..N = nuclei):

* a binary mask (two values), split into 4-connected components;
* an integer label image, its values taken as nucleus ids;
* a zip of per-nucleus binary masks (one file a nucleus, as in BBBC038), painted in
  turn by :func:`labels_from_masks`, which also builds the labels of a Kaggle-layout
  dataset sample (:func:`nuclei_core.datasets.folders.load_sample`).

A mask that does not fit is refused with a one-line
:class:`~nuclei_core.errors.GroundTruthError` that names the file.
"""

from __future__ import annotations

import io as _stdio
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath

import numpy as np

from nuclei_core.errors import GroundTruthError, ImageReadError, InputError
from nuclei_core.io.imread import ImageSource, pixel_budget, read_image, source_bytes
from nuclei_core.segmentation.preprocess import grey, is_colour

__all__ = ["ZIP_ERRORS", "labels_from_masks", "read_labels"]

ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    ValueError,
    EOFError,
    OSError,
    KeyError,
)
"""What ``zipfile`` raises for damaged archives: bad headers or CRCs, unsupported
compression or encryption, impossible offsets, data cut short."""

_ZIP_MAGIC = b"PK\x03\x04"


def _size_mismatch(name: str, found: tuple[int, ...], expected: str) -> str:
    """The message for a mask of the wrong size (``expected``: the size it should have)."""
    return f"{name}: mask size {found[1]} x {found[0]} differs from {expected}"


def _image_size(shape: tuple[int, ...]) -> str:
    return f"image size {shape[1]} x {shape[0]}"


def _read_mask(source: ImageSource, name: str, max_pixels: int | None) -> np.ndarray:
    """One mask image as a 2-D array (colour averaged to grey); unreadable -> GroundTruthError."""
    try:
        mask = read_image(source, name=name, max_pixels=max_pixels)
    except ImageReadError as error:
        raise GroundTruthError(str(error)) from None
    return grey(mask)


def labels_from_masks(
    masks: Iterable[tuple[str, ImageSource]],
    *,
    shape: tuple[int, int] | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Paint per-nucleus mask files into one label image: mask ``k`` gives nucleus ``k``.

    Parameters
    ----------
    masks : iterable of (str, source)
        The name to use in messages and the mask file (path or bytes) of each
        nucleus, in order; any non-zero pixel belongs to the nucleus, and a later
        mask paints over an earlier one where they overlap.
    shape : (int, int), optional
        The image's ``(H, W)``; by default the first mask's size.
    max_pixels : int, optional
        Pixel budget of each mask (see :func:`nuclei_core.io.imread.read_image`).

    Returns
    -------
    labels : ndarray of int32, shape (H, W)

    Raises
    ------
    GroundTruthError
        A mask is unreadable or of another size than the image (or the other masks).

    Examples
    --------
    >>> from nuclei_core.io.export import encode_png
    >>> first = np.zeros((4, 4), np.uint8); first[:2] = 255
    >>> second = np.zeros((4, 4), np.uint8); second[3:] = 255
    >>> masks = [("a.png", encode_png(first)), ("b.png", encode_png(second))]
    >>> labels_from_masks(masks)[:, 0].tolist()
    [1, 1, 0, 2]
    """
    labels = None if shape is None else np.zeros(tuple(shape[:2]), np.int32)
    for index, (name, source) in enumerate(masks, start=1):
        mask = _read_mask(source, name, max_pixels)
        if labels is None:
            labels = np.zeros(mask.shape, np.int32)
        elif mask.shape != labels.shape:
            expected = (
                _image_size(labels.shape)
                if shape is not None
                else f"the other masks ({labels.shape[1]} x {labels.shape[0]})"
            )
            raise GroundTruthError(_size_mismatch(name, mask.shape, expected))
        labels[mask > 0] = index
    if labels is None:
        raise InputError("masks is empty and no shape is given")
    return labels


def _labels_from_array(array: np.ndarray, label: str, kind: str) -> np.ndarray:
    """Labels from one decoded mask image: a binary mask's components, or its values as ids."""
    if array.ndim == 3:
        if is_colour(array):
            raise GroundTruthError(f"{label}: colour mask; expected a greyscale mask or labels")
        array = array[..., 0]
    if array.dtype.kind == "f":
        if not np.all(np.mod(array, 1) == 0):
            raise GroundTruthError(f"{label}: label image has non-integer values")
    values = np.unique(array)
    if values.min() < 0:
        raise GroundTruthError(f"{label}: label image has negative values")
    if kind == "binary" and len(values) > 2:
        raise GroundTruthError(
            f"{label}: binary mask has {len(values)} different values; expected only 0 and one "
            "foreground value (was it saved as JPEG?)"
        )
    if len(values) <= 2 and kind != "labels":
        from skimage.measure import label as connected_components  # 0.3 s: only for masks

        labels = connected_components(array > values.min() if len(values) == 2 else array > 0)
    else:
        labels = array
    return labels.astype(np.int32)


# What ``zipfile`` raises for damaged archives: bad headers or CRCs, unsupported
# compression or encryption, impossible offsets, data cut short.


def _safe_members(archive: zipfile.ZipFile, label: str) -> list[zipfile.ZipInfo]:
    """The mask files of a zip, in name order; refuses paths that leave the archive."""
    members = [info for info in archive.infolist() if not info.is_dir()]
    for info in members:
        member = PurePosixPath(info.filename.replace("\\", "/"))
        drive = bool(member.parts) and ":" in member.parts[0]
        if member.is_absolute() or drive or ".." in member.parts:
            raise GroundTruthError(f"{label}: unsafe path {info.filename!r} in zip")
    masks = [
        info
        for info in members
        if not PurePosixPath(info.filename).name.startswith(".") and "__MACOSX" not in info.filename
    ]
    if not masks:
        raise GroundTruthError(f"{label}: zip holds no mask images")
    return sorted(masks, key=lambda item: item.filename)


def _zip_masks(
    archive: zipfile.ZipFile, label: str, max_pixels: int
) -> Iterator[tuple[str, bytes]]:
    """Each mask member of a zip as (name, bytes), refusing members too large to be masks."""
    for info in _safe_members(archive, label):
        member_label = f"{label}:{info.filename}"
        if info.file_size > 4 * max_pixels + 1_000_000:
            raise GroundTruthError(f"{member_label}: member too large")
        yield member_label, archive.read(info)


def _labels_from_zip(data: bytes, label: str, max_pixels: int) -> np.ndarray:
    try:
        archive = zipfile.ZipFile(_stdio.BytesIO(data))
    except ZIP_ERRORS:
        raise GroundTruthError(f"{label}: not a valid zip file") from None
    try:
        with archive:
            masks = _zip_masks(archive, label, max_pixels)
            return labels_from_masks(masks, max_pixels=max_pixels)
    except GroundTruthError:
        raise
    except ZIP_ERRORS as error:
        message = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise GroundTruthError(f"{label}: corrupt zip file ({message})") from None


def read_labels(
    source: ImageSource,
    *,
    name: str | None = None,
    shape: tuple[int, int] | None = None,
    kind: str = "auto",
    max_pixels: int | None = None,
) -> np.ndarray:
    """Read ground truth as an instance label image (0 = background, 1..N = nuclei).

    Parameters
    ----------
    source : str, Path, bytes or binary file object
        A binary mask, an integer label image, or a zip of per-nucleus masks.
    name : str, optional
        Name used in messages.
    shape : (int, int), optional
        The image's ``(H, W)``; a mask of another size is refused.
    kind : {"auto", "binary", "labels"}
        ``"binary"`` refuses masks with more than two values; ``"labels"`` takes
        values as nucleus ids; ``"auto"`` treats two-valued images as binary
        masks (split into connected components) and others as label images.
    max_pixels : int, optional
        Pixel budget (see :func:`nuclei_core.io.imread.read_image`).

    Returns
    -------
    labels : ndarray of int32, shape (H, W)

    Raises
    ------
    GroundTruthError
        The mask does not fit: wrong size, non-binary, empty, unsafe zip ...

    Examples
    --------
    >>> from nuclei_core.io.export import encode_png
    >>> mask = np.zeros((6, 6), np.uint8); mask[1:3, 1:3] = 255; mask[4:, 4:] = 255
    >>> int(read_labels(encode_png(mask)).max())
    2
    """
    if kind not in ("auto", "binary", "labels"):
        raise GroundTruthError(f"kind must be 'auto', 'binary' or 'labels', got {kind!r}")
    data, label = source_bytes(source, name)
    budget = pixel_budget(max_pixels)
    if data[:4] == _ZIP_MAGIC:
        labels = _labels_from_zip(data, label, budget)
    else:
        try:
            array = read_image(data, name=label, max_pixels=budget)
        except ImageReadError as error:
            raise GroundTruthError(str(error)) from None
        labels = _labels_from_array(array, label, kind)
    if shape is not None and tuple(labels.shape) != tuple(shape[:2]):
        raise GroundTruthError(_size_mismatch(label, labels.shape, _image_size(shape)))
    if not labels.any():
        raise GroundTruthError(f"{label}: mask is empty (no nucleus pixels)")
    return labels
