"""Reading microscopy images, ground truth and dataset folders.

Images come as PNG, JPEG or TIFF in many shapes and dtypes; this module turns
them into arrays with one convention, refuses bad files with a one-line
:class:`~nuclei_core.errors.ImageReadError` that names the file, and finds
image/mask pairs in a dataset folder in either of two layouts:

* Kaggle / BBBC038: ``<id>/images/<id>.png`` + ``<id>/masks/*.png`` (one binary
  mask per nucleus);
* flat: ``inputs/`` (or ``images/``) + ``masks/`` paired by file stem, a mask
  being a binary mask or an integer label image; optionally under ``train/``
  and ``test/`` sub-folders.
"""

from __future__ import annotations

import hashlib
import io as _stdio
import logging
import os
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError
from skimage.measure import label as connected_components

from nuclei_core.errors import (
    DatasetError,
    GroundTruthError,
    ImageReadError,
    InputError,
    InputTypeError,
)

DEFAULT_MAX_PIXELS = int(os.environ.get("NUCLEI_MAX_PIXELS", 8192 * 8192))
"""Largest image (width x height) read; set ``NUCLEI_MAX_PIXELS`` to change it."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MASK_STEM_SUFFIXES = ("_masks", "_mask", "_labels", "_label", "_gt")
IMAGE_KINDS = ("fluorescence", "brightfield", "stained")
COLOUR_INVERT_MEDIAN = 0.25
"""A colour image whose median (normalised grey) exceeds this is stained tissue in
transmitted light and is inverted: dense H&E tiles have medians of 0.34 to 0.5, colour
fluorescence (dark background) far below."""

# Pillow's own bomb check would raise its own error type; we check the header
# against our budget before decoding instead.
Image.MAX_IMAGE_PIXELS = None

# tifffile logs each damaged tag of a corrupt TIFF before raising; without a handler
# Python prints those records to stderr.  Our one-line ImageReadError says it all.
logging.getLogger("tifffile").addHandler(logging.NullHandler())


# --------------------------------------------------------------------------- reading


def _source_bytes(source, name: str | None) -> tuple[bytes, str]:
    """Return the raw bytes of ``source`` and a name to put in messages."""
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


def _check_size(width: int, height: int, label: str, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageReadError(f"{label}: image has zero size ({width} x {height})")
    if width * height > max_pixels:
        raise ImageReadError(
            f"{label}: image is {width} x {height} = {width * height:,} pixels, over the "
            f"limit of {max_pixels:,} (set NUCLEI_MAX_PIXELS to allow larger images)"
        )


def _decode_tiff(data: bytes, label: str, max_pixels: int) -> np.ndarray:
    try:
        with tifffile.TiffFile(_stdio.BytesIO(data)) as tiff:
            if not tiff.pages:
                raise ImageReadError(f"{label}: TIFF file has no pages")
            page = tiff.pages[0]
            width, height = int(page.imagewidth), int(page.imagelength)
            _check_size(width, height, label, max_pixels)
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
        _check_size(width, height, label, max_pixels)
    try:
        with Image.open(_stdio.BytesIO(data)) as image:
            _check_size(image.width, image.height, label, max_pixels)
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


def read_image(source, *, name: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Read a PNG, JPEG or TIFF image into a numpy array.

    Parameters
    ----------
    source : str, Path, bytes or binary file object
        The image file (an uploaded file object works too).
    name : str, optional
        Name used in error messages (defaults to the path or the file's name).
    max_pixels : int
        Largest width x height accepted; checked from the header before decoding.

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
    >>> from PIL import Image
    >>> buffer = _stdio.BytesIO()
    >>> Image.new("L", (5, 3), 7).save(buffer, format="PNG")
    >>> read_image(buffer.getvalue()).shape
    (3, 5)
    """
    data, label = _source_bytes(source, name)
    if not data:
        raise ImageReadError(f"{label}: file is empty")
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        array = _decode_tiff(data, label, max_pixels)
    else:
        array = _decode_pillow(data, label, max_pixels)
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
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            if not finite.any():
                raise ImageReadError(f"{label}: image has no finite pixel values (all NaN/inf)")
            warnings.warn(
                f"{label}: {int((~finite).sum())} NaN/inf pixels set to the lowest value",
                stacklevel=3,
            )
            array = np.where(finite, array, array[finite].min())
    return np.ascontiguousarray(array)


# --------------------------------------------------------------------------- conversions


def _as_image_array(image) -> np.ndarray:
    try:
        array = np.asarray(image)
    except (TypeError, ValueError):
        raise InputTypeError(
            f"image cannot be converted to an array ({type(image).__name__})"
        ) from None
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise InputTypeError(f"image must have shape (H, W) or (H, W, 3), got {array.shape}")
    if array.dtype.kind not in "buif":
        raise InputTypeError(f"image must be numeric, got dtype {array.dtype}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"image has zero size {array.shape}")
    return array


def _finite_image(array: np.ndarray) -> np.ndarray:
    """``array`` with NaN/inf set to its lowest finite value (as :func:`read_image` does)."""
    if array.dtype.kind != "f":
        return array
    finite = np.isfinite(array)
    if finite.all():
        return array
    if not finite.any():
        raise InputError("image has no finite pixel values (all NaN/inf)")
    return np.where(finite, array, array[finite].min())


def _is_float64(array: np.ndarray) -> bool:
    return array.dtype.kind == "f" and array.dtype.itemsize > 4


def _percentile_limits(array: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """Robust intensity limits, from a subsample of at most ~1 M pixels."""
    step = max(1, int(np.sqrt(array.shape[0] * array.shape[1] / 1_000_000)))
    dtype = np.float64 if _is_float64(array) else np.float32
    sample = np.asarray(array[::step, ::step], dtype=dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        lower, upper = np.percentile(sample, [low, high])
    if not (np.isfinite(lower) and np.isfinite(upper)) or upper <= lower:
        lower, upper = float(sample.min()), float(sample.max())
    return float(lower), float(upper)


def normalise(image, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Scale intensities to [0, 1] between two percentiles (robust to hot pixels).

    Examples
    --------
    >>> image = np.zeros((40, 40), np.uint16); image[:20] = 1000; image[0, 0] = 65535
    >>> float(normalise(image)[30, 30]), float(normalise(image)[1, 1])
    (0.0, 1.0)
    """
    array = _finite_image(_as_image_array(image))
    lower, upper = _percentile_limits(array, low, high)
    if not upper > lower:
        return np.zeros(array.shape, np.float32)
    if _is_float64(array) or upper - lower > float(np.finfo(np.float32).max):
        # Values near the float limits: halve in float64 so no difference overflows.
        half = np.asarray(array, np.float64) / 2
        scaled = (half - lower / 2) / (upper / 2 - lower / 2)
        return np.clip(scaled, 0.0, 1.0).astype(np.float32)
    scaled = (np.asarray(array, np.float32) - lower) / (upper - lower)
    return np.clip(scaled, 0.0, 1.0, out=scaled)


def _grey(image01: np.ndarray) -> np.ndarray:
    return image01 if image01.ndim == 2 else image01.mean(axis=-1)


def is_colour(image) -> bool:
    """True when the channels of an RGB image differ (stained/colour images).

    Examples
    --------
    >>> red = np.dstack([np.eye(4), np.zeros((4, 4)), np.zeros((4, 4))])
    >>> is_colour(np.zeros((4, 4, 3))), is_colour(red)
    (False, True)
    """
    array = _as_image_array(image)
    if array.ndim == 2:
        return False
    sample = np.asarray(array[::4, ::4], np.float32)
    spread = float(sample.max() - sample.min()) or 1.0
    difference = np.abs(sample - sample.mean(axis=-1, keepdims=True)).mean()
    return bool(difference > 0.01 * spread)


def has_bright_background(image) -> bool:
    """True when most of the normalised image is bright (brightfield, stained tissue).

    Examples
    --------
    >>> has_bright_background(np.full((8, 8), 200, np.uint8) - np.eye(8, dtype=np.uint8) * 150)
    True
    """
    return bool(np.median(_grey(normalise(image))) > 0.5)


def image_kind(image) -> str:
    """Classify an image as ``"fluorescence"``, ``"brightfield"`` or ``"stained"``.

    Colour images are ``"stained"``; greyscale images with a bright background are
    ``"brightfield"``; other greyscale images are ``"fluorescence"``.

    Examples
    --------
    >>> image_kind(np.eye(8, dtype=np.uint8) * 255)
    'fluorescence'
    """
    if is_colour(image):
        return "stained"
    return "brightfield" if has_bright_background(image) else "fluorescence"


def to_model_input(image) -> np.ndarray:
    """Model input: float32 ``(H, W, 3)`` in [0, 1], nuclei bright.

    Intensities are percentile-normalised per image; greyscale is repeated over
    three channels; images with a bright background (brightfield, stained
    tissue, where nuclei are dark) are inverted so nuclei are always bright: a
    greyscale image when its median is above 0.5, a colour image when above
    :data:`COLOUR_INVERT_MEDIAN` (dense tissue fills most of an H&E tile).

    Examples
    --------
    >>> x = to_model_input(np.eye(4, dtype=np.uint8) * 255)
    >>> x.shape, x.dtype, float(x.max())
    ((4, 4, 3), dtype('float32'), 1.0)
    """
    scaled = normalise(image)
    if np.median(_grey(scaled)) > (COLOUR_INVERT_MEDIAN if is_colour(image) else 0.5):
        scaled = 1.0 - scaled
    if scaled.ndim == 2:
        scaled = np.repeat(scaled[..., None], 3, axis=-1)
    return np.ascontiguousarray(scaled, dtype=np.float32)


def to_display_rgb(image) -> np.ndarray:
    """uint8 ``(H, W, 3)`` version of an image for display (percentile scaled).

    Examples
    --------
    >>> to_display_rgb(np.arange(12, dtype=np.uint16).reshape(3, 4)).shape
    (3, 4, 3)
    """
    scaled = normalise(image, 0.5, 99.9)
    if scaled.ndim == 2:
        scaled = np.repeat(scaled[..., None], 3, axis=-1)
    return (scaled * 255 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------- ground truth


def _labels_from_array(array: np.ndarray, label: str, kind: str) -> np.ndarray:
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
        labels = connected_components(array > values.min() if len(values) == 2 else array > 0)
    else:
        labels = array
    return labels.astype(np.int32)


# What ``zipfile`` raises for damaged archives: bad headers or CRCs, unsupported
# compression or encryption, impossible offsets, data cut short.
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


def _labels_from_zip(data: bytes, label: str, max_pixels: int) -> np.ndarray:
    try:
        archive = zipfile.ZipFile(_stdio.BytesIO(data))
    except ZIP_ERRORS:
        raise GroundTruthError(f"{label}: not a valid zip file") from None
    try:
        return _read_zip_masks(archive, label, max_pixels)
    except GroundTruthError:
        raise
    except ZIP_ERRORS as error:
        message = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise GroundTruthError(f"{label}: corrupt zip file ({message})") from None


def _read_zip_masks(archive: zipfile.ZipFile, label: str, max_pixels: int) -> np.ndarray:
    labels = None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        for info in members:
            member = PurePosixPath(info.filename.replace("\\", "/"))
            drive = bool(member.parts) and ":" in member.parts[0]
            if member.is_absolute() or drive or ".." in member.parts:
                raise GroundTruthError(f"{label}: unsafe path {info.filename!r} in zip")
        masks = [
            info
            for info in members
            if not PurePosixPath(info.filename).name.startswith(".")
            and "__MACOSX" not in info.filename
        ]
        if not masks:
            raise GroundTruthError(f"{label}: zip holds no mask images")
        for index, info in enumerate(sorted(masks, key=lambda item: item.filename), start=1):
            member_label = f"{label}:{info.filename}"
            if info.file_size > 4 * max_pixels + 1_000_000:
                raise GroundTruthError(f"{member_label}: member too large")
            try:
                mask = read_image(archive.read(info), name=member_label, max_pixels=max_pixels)
            except ImageReadError as error:
                raise GroundTruthError(str(error)) from None
            mask = _grey(mask) if mask.ndim == 3 else mask
            if labels is None:
                labels = np.zeros(mask.shape, np.int32)
            elif mask.shape != labels.shape:
                raise GroundTruthError(
                    f"{member_label}: mask size {mask.shape[1]} x {mask.shape[0]} differs from "
                    f"the other masks ({labels.shape[1]} x {labels.shape[0]})"
                )
            labels[mask > 0] = index
    return labels


def read_labels(
    source,
    *,
    name: str | None = None,
    shape: tuple[int, int] | None = None,
    kind: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
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

    Raises
    ------
    GroundTruthError
        The mask does not fit: wrong size, non-binary, empty, unsafe zip ...

    Examples
    --------
    >>> from PIL import Image
    >>> buffer = _stdio.BytesIO()
    >>> mask = np.zeros((6, 6), np.uint8); mask[1:3, 1:3] = 255; mask[4:, 4:] = 255
    >>> Image.fromarray(mask).save(buffer, format="PNG")
    >>> int(read_labels(buffer.getvalue()).max())
    2
    """
    if kind not in ("auto", "binary", "labels"):
        raise GroundTruthError(f"kind must be 'auto', 'binary' or 'labels', got {kind!r}")
    data, label = _source_bytes(source, name)
    if data[:4] == b"PK\x03\x04":
        labels = _labels_from_zip(data, label, max_pixels)
    else:
        try:
            array = read_image(data, name=label, max_pixels=max_pixels)
        except ImageReadError as error:
            raise GroundTruthError(str(error)) from None
        labels = _labels_from_array(array, label, kind)
    if shape is not None and tuple(labels.shape) != tuple(shape[:2]):
        raise GroundTruthError(
            f"{label}: mask size {labels.shape[1]} x {labels.shape[0]} differs from image size "
            f"{shape[1]} x {shape[0]}"
        )
    if not labels.any():
        raise GroundTruthError(f"{label}: mask is empty (no nucleus pixels)")
    return labels


# --------------------------------------------------------------------------- datasets


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


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not path.name.startswith(".")
    )


def _mask_stem(path: Path) -> str:
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
        images = _image_files(images_dir)
        masks = _image_files(masks_dir) if masks_dir.is_dir() else []
        if not images:
            problems.append(f"{images_dir}: no image file")
        elif not masks:
            problems.append(f"{images[0]}: image without masks (no {masks_dir.name}/ files)")
        else:
            samples.append(Sample(folder.name, images[0], tuple(masks)))
    return samples, problems


def _flat_samples(folder: Path, subset: str | None) -> tuple[list[Sample], list[str]]:
    inputs_dir = next(
        (folder / name for name in ("inputs", "images") if (folder / name).is_dir()), None
    )
    images = {path.stem: path for path in _image_files(inputs_dir)}
    masks = {_mask_stem(path): path for path in _image_files(folder / "masks")}
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


def discover_dataset(root) -> Dataset:
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
                            f"{subset}/{s.id}", s.image_path, label_path=s.label_path, subset=subset
                        )
                        for s in found
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


def load_sample(sample: Sample, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Read a sample's image and build its instance label image.

    Returns
    -------
    image : ndarray
        As :func:`read_image` returns it.
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
    labels = np.zeros(shape, np.int32)
    for index, mask_path in enumerate(sample.mask_paths, start=1):
        try:
            mask = read_image(mask_path, max_pixels=max_pixels)
        except ImageReadError as error:
            raise GroundTruthError(str(error)) from None
        if mask.shape[:2] != shape:
            raise GroundTruthError(
                f"{mask_path}: mask size {mask.shape[1]} x {mask.shape[0]} differs from image "
                f"size {shape[1]} x {shape[0]}"
            )
        labels[(mask if mask.ndim == 2 else mask[..., 0]) > 0] = index
    if not labels.any():
        raise GroundTruthError(f"{sample.image_path}: all masks are empty")
    return image, labels


def split_ids(ids, val_fraction: float = 0.1, test_fraction: float = 0.1) -> dict[str, list[str]]:
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
        pool = [s for s in dataset.samples if s.subset == ("test" if split == "test" else "train")]
        if split == "test":
            return pool
        parts = split_ids([s.id for s in pool], val_fraction=val_fraction, test_fraction=0.0)
    else:
        pool = list(dataset.samples)
        parts = split_ids([s.id for s in pool], val_fraction=val_fraction)
    chosen = set(parts[split])
    return [sample for sample in pool if sample.id in chosen]


def image_size(path) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header only.

    Raises
    ------
    ImageReadError
        The file is not a readable image.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
        if magic in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            with tifffile.TiffFile(path) as tiff:
                page = tiff.pages[0]
                return int(page.imagelength), int(page.imagewidth)
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, UnidentifiedImageError, ValueError, IndexError) as error:
        raise ImageReadError(f"{path}: not a readable image ({error})") from None


# --------------------------------------------------------------------------- writing


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a ``uint8``/``uint16`` greyscale or ``uint8`` RGB array.

    Label images with up to 65,535 nuclei fit a 16-bit PNG.

    Examples
    --------
    >>> encode_png(np.zeros((2, 2), np.uint16))[:4]
    b'\\x89PNG'
    """
    import cv2

    array = np.asarray(array)
    if array.dtype not in (np.uint8, np.uint16):
        raise InputTypeError(f"PNG data must be uint8 or uint16, got {array.dtype}")
    if array.ndim == 3:
        array = array[..., ::-1]  # OpenCV writes BGR
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise ImageReadError(f"cannot encode an array of shape {array.shape} as PNG")
    return encoded.tobytes()


def labels_to_uint16(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    """Label image as ``uint16`` for a 16-bit PNG; refuses more than 65,535 nuclei."""
    labels = np.asarray(labels)
    if labels.size and int(labels.max()) > np.iinfo(np.uint16).max:
        raise InputTypeError(f"{name}: {int(labels.max())} nuclei do not fit a 16-bit image")
    return labels.astype(np.uint16)
