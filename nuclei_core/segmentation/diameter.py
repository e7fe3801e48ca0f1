"""Expected nucleus diameter: rescaling an image so that its nuclei have the model's size.

A network sees nuclei best at the size it was trained on: the median nucleus
diameter of its training data, ``nucleus_diameter_px`` in the model card
(:func:`model_diameter`; :data:`DEFAULT_MODEL_DIAMETER_PX` when a card has none).
Given the diameter a user expects in an image, :func:`scale_factor` is
``model diameter / expected diameter``; the image goes to the network at that
scale (:func:`resize_image`) and the results come back to the image's own pixels
(:func:`resize_to` for probabilities, :func:`labels_to_shape` for a label image),
so every measurement stays in the original pixels. :func:`median_diameter` is
the diameter of a label image's nuclei, as the training data's was measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import cv2
import numpy as np

from nuclei_core.checks import check_array, check_int, check_label_image, check_positive
from nuclei_core.errors import InputError

__all__ = [
    "DEFAULT_MODEL_DIAMETER_PX",
    "SCALE_RANGE",
    "diameter_in_pixels",
    "equivalent_diameters",
    "labels_to_shape",
    "median_diameter",
    "model_diameter",
    "resize_image",
    "resize_to",
    "scale_factor",
    "scaled_shape",
]

DEFAULT_MODEL_DIAMETER_PX = 20.6
"""Nucleus diameter (pixels) of a model whose card does not say: the median equivalent
diameter of the default model's 24,847 training nuclei (training splits of the 2018 Data
Science Bowl stage1_train, median 19.7, and of the MoNuSeg tiles, median 24.2; every nucleus
counted once, not weighted as training sampled them)."""

_OPENCV_DTYPES = tuple(np.dtype(name) for name in ("uint8", "uint16", "float32", "float64"))

SCALE_RANGE = (0.25, 4.0)
"""Smallest and largest rescaling factor: a diameter further from the model's is refused."""
ENLARGED_MAX_PIXELS = 4096 * 4096
"""The most pixels an image is enlarged to for the network and its post-processing: an
image of small nuclei is enlarged less than they ask (a 4096 x 4096 one not at all), so
its memory stays bounded (at 2.85x, a 4096 x 4096 image took 14 GB)."""


def largest_scale(shape) -> float:
    """The largest factor an image of ``shape`` ``(H, W, ...)`` may be enlarged by:
    :data:`SCALE_RANGE`'s, or less where :data:`ENLARGED_MAX_PIXELS` says (never below 1).

    Examples
    --------
    >>> largest_scale((512, 512)), largest_scale((2048, 2048)), largest_scale((8192, 8192))
    (4.0, 2.0, 1.0)
    """
    pixels = max(1, int(shape[0]) * int(shape[1]))
    return min(SCALE_RANGE[1], max(1.0, (ENLARGED_MAX_PIXELS / pixels) ** 0.5))


def equivalent_diameters(labels) -> np.ndarray:
    """The equivalent diameter (pixels) of each nucleus of a label image, in label order.

    That is the diameter of the disc of the nucleus's area, ``sqrt(4 * area / pi)``;
    absent labels are skipped.

    Examples
    --------
    >>> labels = np.zeros((20, 20), np.int32)
    >>> labels[2:12, 2:12], labels[15:17, 15:17] = 1, 3
    >>> equivalent_diameters(labels).round(2)
    array([11.28,  2.26])
    """
    labels = check_label_image(labels)
    areas = np.bincount(labels.ravel().astype(np.int64))[1:]
    return np.sqrt(4.0 * areas[areas > 0] / math.pi)


def median_diameter(labels) -> float | None:
    """Median equivalent diameter (pixels) of the nuclei of a label image; None without any.

    The equivalent diameter of a nucleus is that of the disc of the same area
    (:func:`equivalent_diameters`).

    Examples
    --------
    >>> labels = np.zeros((20, 20), np.int32); labels[2:6, 2:6] = 1; labels[10:14, 10:14] = 2
    >>> round(median_diameter(labels), 2)
    4.51
    >>> median_diameter(np.zeros((4, 4), np.int32)) is None
    True
    """
    diameters = equivalent_diameters(labels)
    if not diameters.size:
        return None
    return float(np.median(diameters))


def model_diameter(card: Mapping) -> float:
    """The nucleus diameter (pixels) a model was trained on, from its card.

    ``nucleus_diameter_px`` of the card, else :data:`DEFAULT_MODEL_DIAMETER_PX`.

    Examples
    --------
    >>> model_diameter({"nucleus_diameter_px": 21.5}), model_diameter({})
    (21.5, 20.6)
    """
    value = card.get("nucleus_diameter_px")
    if value is None:
        return DEFAULT_MODEL_DIAMETER_PX
    return check_positive(value, "nucleus_diameter_px of the model card")


def diameter_in_pixels(diameter_um: float, pixel_size: float | None) -> float:
    """An expected diameter in micrometres, in pixels of an image of ``pixel_size`` µm.

    Examples
    --------
    >>> diameter_in_pixels(8.0, 0.5)
    16.0
    >>> diameter_in_pixels(8.0, None)
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: a diameter in µm needs a pixel size (from the file or given)
    """
    check_positive(diameter_um, "diameter_um")
    if pixel_size is None:
        raise InputError("a diameter in µm needs a pixel size (from the file or given)")
    return diameter_um / check_positive(pixel_size, "pixel_size")


def scale_factor(diameter: float, model_diameter: float, name: str = "diameter") -> float:
    """How much to enlarge an image so that nuclei of ``diameter`` pixels get the model's size.

    ``model_diameter / diameter``; a factor outside :data:`SCALE_RANGE` is refused
    (``name`` is the argument named in the message).

    Raises
    ------
    InputError
        ``diameter`` is not a positive number or too far from ``model_diameter``.

    Examples
    --------
    >>> scale_factor(8.0, 16.0)
    2.0
    >>> try:
    ...     scale_factor(100.0, 16.0)
    ... except ValueError as error:
    ...     print(error)
    diameter must be between 4 and 64 pixels for this model, got 100.0
    """
    diameter = check_positive(diameter, name)
    model_diameter = check_positive(model_diameter, "model_diameter")
    factor = model_diameter / diameter
    if not SCALE_RANGE[0] <= factor <= SCALE_RANGE[1]:
        low, high = model_diameter / SCALE_RANGE[1], model_diameter / SCALE_RANGE[0]
        raise InputError(
            f"{name} must be between {low:.3g} and {high:.3g} pixels for this model, got {diameter}"
        )
    return factor


def scaled_shape(shape, factor: float) -> tuple[int, int]:
    """``(height, width)`` of an image of ``shape`` rescaled by ``factor`` (at least 1 pixel).

    Examples
    --------
    >>> scaled_shape((100, 51), 0.5)
    (50, 26)
    """
    factor = check_positive(factor, "factor")
    return tuple(max(1, int(round(side * factor))) for side in shape[:2])


def resize_to(array, shape) -> np.ndarray:
    """An image or probability map ``(H, W)`` or ``(H, W, C)`` resized to ``shape[:2]``.

    Area interpolation where it shrinks (every pixel counts, no aliasing), linear
    where it enlarges (``cv2.resize``).  ``uint8``, ``uint16``, ``float32`` and
    ``float64`` arrays keep their dtype; others become ``float32``.

    Examples
    --------
    >>> resize_to(np.ones((10, 10, 2), np.float32), (20, 5)).shape
    (20, 5, 2)
    """
    array = check_array(array, "array")
    if array.ndim not in (2, 3):
        raise InputError(f"array must be (H, W) or (H, W, C), got shape {array.shape}")
    height, width = int(shape[0]), int(shape[1])
    if (height, width) == array.shape[:2]:
        return array
    if array.dtype not in _OPENCV_DTYPES:
        array = array.astype(np.float32)
    shrinking = height * width < array.shape[0] * array.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(array, (width, height), interpolation=interpolation)
    if resized.ndim < array.ndim:  # OpenCV drops a last axis of length 1
        resized = resized[..., None]
    return resized


def resize_image(image, factor: float) -> np.ndarray:
    """An image or probability map rescaled by ``factor`` (see :func:`resize_to`).

    Examples
    --------
    >>> resize_image(np.zeros((40, 30), np.uint8), 0.5).shape
    (20, 15)
    """
    image = check_array(image, "image")
    return resize_to(image, scaled_shape(image.shape, factor))


def labels_to_shape(labels, shape, min_size: int = 0) -> np.ndarray:
    """A label image resized to ``shape[:2]`` by nearest neighbour (pixel centres aligned).

    Nuclei left with fewer than ``min_size`` pixels (or none: a small nucleus can
    fall between the sampled pixels of a smaller shape) are dropped, and the rest
    numbered 1..N in their former order; the result is ``int32``.  With ``shape``
    the labels' own, only that happens.

    Examples
    --------
    >>> labels = np.array([[1, 0], [0, 3]], np.int32)
    >>> labels_to_shape(labels, (4, 4))
    array([[1, 1, 0, 0],
           [1, 1, 0, 0],
           [0, 0, 2, 2],
           [0, 0, 2, 2]], dtype=int32)
    >>> int(labels_to_shape(labels, (4, 4), min_size=5).max())
    0
    """
    labels = check_label_image(labels)
    check_int(min_size, "min_size", minimum=0)
    rows = _nearest(labels.shape[0], int(shape[0]))
    columns = _nearest(labels.shape[1], int(shape[1]))
    resized = labels[rows[:, None], columns[None, :]].astype(np.int64, copy=False)
    sizes = np.bincount(resized.ravel())
    kept = sizes >= max(min_size, 1)
    kept[0] = False
    numbers = np.zeros(sizes.size, np.int32)
    numbers[kept] = np.arange(1, np.count_nonzero(kept) + 1, dtype=np.int32)
    return numbers[resized]


def _nearest(source: int, target: int) -> np.ndarray:
    """Index of the source pixel whose centre is nearest each target pixel's centre."""
    centres = (np.arange(target) + 0.5) * (source / target)
    return np.minimum(np.floor(centres).astype(np.intp), source - 1)
