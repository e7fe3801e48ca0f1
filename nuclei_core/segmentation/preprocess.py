"""Intensities: percentile normalisation, image kinds and the model's input convention.

An image as read (:func:`nuclei_core.io.imread.read_image`, any numeric dtype,
``(H, W)`` or ``(H, W, 3)``) becomes the model input (:func:`to_model_input`:
``float32 (H, W, 3)`` in [0, 1], nuclei bright) or a display picture
(:func:`to_display_rgb`).  :func:`image_kind` tells fluorescence, brightfield and
stained images apart, as the benchmark and the app report them.  The percentile limits
and the inversion can be decided once for a larger image (a whole slide,
:mod:`nuclei_core.slides.normalise`) and applied to its parts.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from nuclei_core.checks import as_image
from nuclei_core.errors import InputError
from nuclei_core.io.imread import fill_non_finite

__all__ = [
    "COLOUR_INVERT_MEDIAN",
    "IMAGE_KINDS",
    "grey",
    "has_bright_background",
    "image_kind",
    "inverts_for_model",
    "is_colour",
    "normalise",
    "percentile_limits",
    "to_display_rgb",
    "to_model_input",
]

IMAGE_KINDS = ("fluorescence", "brightfield", "stained")
"""What :func:`image_kind` returns."""

COLOUR_INVERT_MEDIAN = 0.25
"""A colour image whose median (normalised grey) exceeds this is stained tissue in
transmitted light and is inverted: dense H&E tiles have medians of 0.34 to 0.5, colour
fluorescence (dark background) far below."""


def _is_float64(array: np.ndarray) -> bool:
    return array.dtype.kind == "f" and array.dtype.itemsize > 4


def _finite_limits(array: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """Robust intensity limits of an array of finite values, from a subsample of at most
    ~1 M pixels."""
    step = max(1, int(np.sqrt(array.shape[0] * array.shape[1] / 1_000_000)))
    dtype = np.float64 if _is_float64(array) else np.float32
    sample = np.asarray(array[::step, ::step], dtype=dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        lower, upper = np.percentile(sample, [low, high])
    if not (np.isfinite(lower) and np.isfinite(upper)) or upper <= lower:
        lower, upper = float(sample.min()), float(sample.max())
    return float(lower), float(upper)


def percentile_limits(
    image: ArrayLike, low: float = 1.0, high: float = 99.8
) -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles of an image's intensities, as :func:`normalise`
    uses them.

    Taken on a regular grid of at most about 1 M pixels (every ``step``-th row and
    column); the lowest and highest values when the percentiles coincide.  NaN and
    infinities count as the lowest finite value.

    Examples
    --------
    >>> image = np.zeros((40, 40), np.uint16); image[:20] = 1000; image[0, 0] = 65535
    >>> percentile_limits(image)
    (0.0, 1000.0)
    """
    array, _ = fill_non_finite(as_image(image))
    return _finite_limits(array, low, high)


def normalise(
    image: ArrayLike,
    low: float = 1.0,
    high: float = 99.8,
    *,
    limits: tuple[float, float] | None = None,
) -> np.ndarray:
    """Scale intensities to [0, 1] between two percentiles (robust to hot pixels).

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, 3)
    low, high : float
        The percentiles that become 0 and 1.
    limits : tuple of float, optional
        The intensities that become 0 and 1, found before (:func:`percentile_limits`
        of a larger image this one is part of); ``low`` and ``high`` are then unused.

    Examples
    --------
    >>> image = np.zeros((40, 40), np.uint16); image[:20] = 1000; image[0, 0] = 65535
    >>> float(normalise(image)[30, 30]), float(normalise(image)[1, 1])
    (0.0, 1.0)
    >>> normalise(np.array([[0, 50, 100]], np.uint8), limits=(0.0, 200.0)).tolist()
    [[0.0, 0.25, 0.5]]
    """
    array, _ = fill_non_finite(as_image(image))
    lower, upper = _finite_limits(array, low, high) if limits is None else limits
    if not upper > lower:
        return np.zeros(array.shape, np.float32)
    if _is_float64(array) or upper - lower > float(np.finfo(np.float32).max):
        # Values near the float limits: halve in float64 so no difference overflows.
        half = np.asarray(array, np.float64) / 2
        scaled = (half - lower / 2) / (upper / 2 - lower / 2)
        return np.clip(scaled, 0.0, 1.0).astype(np.float32)
    scaled = (np.asarray(array, np.float32) - lower) / (upper - lower)
    return np.clip(scaled, 0.0, 1.0, out=scaled)


def grey(image: np.ndarray, dtype: DTypeLike = None, name: str = "image") -> np.ndarray:
    """Greyscale of an image: ``(H, W)`` as it is, ``(H, W, C)`` averaged over its channels.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C)
    dtype : dtype, optional
        Of the result; by default the image's own for ``(H, W)``, numpy's mean's for
        ``(H, W, C)``.
    name : str
        The argument's name in the error message.

    Examples
    --------
    >>> grey(np.array([[[0, 3, 6]]], np.uint8)).tolist()
    [[3.0]]
    """
    if image.ndim == 2:
        return image if dtype is None else image.astype(dtype)
    if image.ndim == 3:
        return image.mean(axis=-1, dtype=dtype)
    raise InputError(f"{name} must be (H, W) or (H, W, C), got shape {image.shape}")


def is_colour(image: ArrayLike) -> bool:
    """True when the channels of an RGB image differ (stained/colour images).

    Examples
    --------
    >>> red = np.dstack([np.eye(4), np.zeros((4, 4)), np.zeros((4, 4))])
    >>> is_colour(np.zeros((4, 4, 3))), is_colour(red)
    (False, True)
    """
    array = as_image(image)
    if array.ndim == 2:
        return False
    sample = np.asarray(array[::4, ::4], np.float32)
    spread = float(sample.max() - sample.min()) or 1.0
    difference = np.abs(sample - sample.mean(axis=-1, keepdims=True)).mean()
    return bool(difference > 0.01 * spread)


def has_bright_background(image: ArrayLike) -> bool:
    """True when most of the normalised image is bright (brightfield, stained tissue).

    Examples
    --------
    >>> has_bright_background(np.full((8, 8), 200, np.uint8) - np.eye(8, dtype=np.uint8) * 150)
    True
    """
    return bool(np.median(grey(normalise(image))) > 0.5)


def image_kind(image: ArrayLike) -> str:
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


def _inverted(scaled: np.ndarray, image: ArrayLike) -> bool:
    """The inversion rule of :func:`to_model_input`, on the image normalised (``scaled``)."""
    return bool(np.median(grey(scaled)) > (COLOUR_INVERT_MEDIAN if is_colour(image) else 0.5))


def inverts_for_model(image: ArrayLike) -> bool:
    """Whether :func:`to_model_input` inverts the image (nuclei dark on a bright background).

    Examples
    --------
    >>> inverts_for_model(np.full((8, 8), 200, np.uint8) - np.eye(8, dtype=np.uint8) * 150)
    True
    """
    return _inverted(normalise(image), image)


def to_model_input(
    image: ArrayLike,
    *,
    limits: tuple[float, float] | None = None,
    invert: bool | None = None,
) -> np.ndarray:
    """Model input: float32 ``(H, W, 3)`` in [0, 1], nuclei bright.

    Intensities are percentile-normalised per image; greyscale is repeated over
    three channels; images with a bright background (brightfield, stained
    tissue, where nuclei are dark) are inverted so nuclei are always bright: a
    greyscale image when its median is above 0.5, a colour image when above
    :data:`COLOUR_INVERT_MEDIAN` (dense tissue fills most of an H&E tile).

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, 3)
    limits : tuple of float, optional
        The intensities that become 0 and 1 (see :func:`normalise`); by default the
        image's own percentiles.
    invert : bool, optional
        Whether to invert; by default decided from the image as above.  A part of a
        larger image takes the limits and the inversion of the whole.

    Examples
    --------
    >>> x = to_model_input(np.eye(4, dtype=np.uint8) * 255)
    >>> x.shape, x.dtype, float(x.max())
    ((4, 4, 3), dtype('float32'), 1.0)
    >>> part = to_model_input(np.array([[0, 50, 100]], np.uint8), limits=(0.0, 100.0), invert=True)
    >>> part[0, :, 0].tolist()
    [1.0, 0.5, 0.0]
    """
    scaled = normalise(image, limits=limits)
    if invert is None:
        invert = _inverted(scaled, image)
    if invert:
        scaled = 1.0 - scaled
    if scaled.ndim == 2:
        scaled = np.repeat(scaled[..., None], 3, axis=-1)
    return np.ascontiguousarray(scaled, dtype=np.float32)


def to_display_rgb(image: ArrayLike) -> np.ndarray:
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
