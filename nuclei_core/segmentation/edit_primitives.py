"""The building blocks of the hand edits of :mod:`nuclei_core.segmentation.edits`.

Checks of the edits' arguments (label image, points, brush radius, nucleus ids), the
counting and renumbering of ids that keeps a label image numbered 1..n without gaps, and
the drawing of strokes (polylines, round brushes) in the bounding box they cover.

Points are float arrays ``(N, 2)`` of ``(row, col)`` pixel coordinates, rounded to the
nearest pixel (:func:`nearest_pixels`).  A box is a pair of slices ``(rows, cols)``.

Examples
--------
>>> labels = np.array([[1, 0, 3, 3]], np.uint8)
>>> renumbered(labels.copy(), label_counts(labels))
array([[1, 0, 2, 2]], dtype=uint8)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import cv2
import numpy as np
from skimage.draw import line as draw_line
from skimage.morphology import disk
from skimage.segmentation import relabel_sequential

from nuclei_core.checks import check_finite, check_int, check_label_image
from nuclei_core.errors import EditError, InputError, InputTypeError

__all__ = [
    "Box",
    "bounding_box",
    "brush_mask",
    "checked_ids",
    "checked_labels",
    "checked_points",
    "checked_radius",
    "clipped_box",
    "edited",
    "free_ids",
    "label_counts",
    "nearest_pixels",
    "polyline_mask",
    "put_patch",
    "renumbered",
]

Box = tuple[slice, slice]
"""Slices ``(rows, cols)`` of a rectangle of the image."""


# --------------------------------------------------------------------------- checks


def checked_labels(labels: Any) -> np.ndarray:
    """``labels`` checked, with ids small enough to count in a table (renumbered if not).

    Examples
    --------
    >>> checked_labels(np.array([[0, 10**6]]))
    array([[0, 1]])
    """
    check_label_image(labels, "labels")
    if labels.max() > labels.size:
        return relabel_sequential(labels)[0].astype(labels.dtype, copy=False)
    return labels


def checked_points(value: Any, name: str, minimum: int, shape: tuple[int, ...]) -> np.ndarray:
    """``(N, 2)`` finite float points, at least ``minimum``, none far outside the image.

    Examples
    --------
    >>> checked_points([[1, 2]], "stroke", 1, (4, 4))
    array([[1., 2.]])
    """
    try:
        points = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputTypeError(
            f"{name} must be (row, col) points, got {type(value).__name__}"
        ) from None
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < minimum:
        raise InputError(f"{name} must be at least {minimum} (row, col) points, shape (N, 2)")
    check_finite(points, name)
    height, width = shape
    if np.any(np.abs(points - [height / 2, width / 2]) > [1.5 * height, 1.5 * width]):
        raise InputError(f"{name} has points far outside the {height} x {width} image")
    return points


def checked_radius(radius: Any, shape: tuple[int, ...]) -> int:
    """A brush radius in pixels: an integer from 0 to the image's longer side.

    Examples
    --------
    >>> checked_radius(3, (10, 20))
    3
    """
    radius = check_int(radius, "radius", minimum=0)
    if radius > max(shape):
        raise InputError(
            f"radius must be at most {max(shape)}, the image's longer side, got {radius}"
        )
    return radius


def checked_ids(ids: Any, name: str) -> np.ndarray:
    """Distinct nucleus ids as a sorted ``intp`` array, 0 left out.

    Examples
    --------
    >>> checked_ids([3, 0, 1, 3], "ids").tolist()
    [1, 3]
    """
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InputTypeError(
            f"{name} must be a collection of nucleus ids, got {type(ids).__name__}"
        )
    values = {check_int(value, f"every id in {name}", minimum=0) for value in ids}
    return np.array(sorted(values - {0}), dtype=np.intp)


# --------------------------------------------------------------------------- ids and renumbering


def label_counts(labels: np.ndarray, size: int = 0) -> np.ndarray:
    """Pixels per id (index 0: background), at least ``size`` entries.

    Examples
    --------
    >>> label_counts(np.array([[0, 2, 2]])).tolist()
    [1, 0, 2]
    """
    return np.bincount(labels.ravel().astype(np.intp, copy=False), minlength=size)


def free_ids(counts: np.ndarray, number: int, dtype: np.dtype) -> np.ndarray:
    """The ``number`` smallest ids not in use, refused if ``dtype`` cannot hold them.

    Examples
    --------
    >>> free_ids(np.array([5, 1, 0, 1]), 2, np.dtype(np.uint8)).tolist()
    [2, 4]
    """
    unused = np.flatnonzero(counts[1:] == 0) + 1
    ids = np.concatenate([unused, np.arange(counts.size, counts.size + number)])[:number]
    largest = np.iinfo(dtype).max
    if number and ids[-1] > largest:
        raise EditError(f"labels of dtype {dtype} cannot hold more than {largest} nuclei")
    return ids


def put_patch(out: np.ndarray, counts: np.ndarray, box: Box, patch: np.ndarray) -> np.ndarray:
    """Write ``patch`` into ``out[box]``; return the pixels per id afterwards.

    Examples
    --------
    >>> out = np.array([[1, 1, 0]])
    >>> put_patch(out, label_counts(out), np.s_[:, 1:], np.array([[2, 2]])).tolist(), out
    ([0, 1, 2], array([[1, 2, 2]]))
    """
    size = max(counts.size, int(patch.max(initial=0)) + 1)
    counts = np.pad(counts, (0, size - counts.size))
    counts += label_counts(patch, size) - label_counts(out[box], size)
    out[box] = patch
    return counts


def renumbered(out: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``out`` (changed in place) with ids 1..n: the ids above n move into the free ones.

    ``counts`` are the pixels per id of ``out`` (:func:`label_counts`).

    Examples
    --------
    >>> labels = np.array([[4, 0, 2]])
    >>> renumbered(labels, label_counts(labels))
    array([[1, 0, 2]])
    """
    present = counts > 0
    present[0] = False
    number = np.count_nonzero(present)
    high = np.flatnonzero(present[number + 1 :]) + number + 1
    if high.size:
        table = np.arange(counts.size).astype(out.dtype)
        table[high] = np.flatnonzero(~present[1 : number + 1]) + 1
        moved = out > number
        out[moved] = table[out[moved]]
    return out


def edited(labels: np.ndarray, counts: np.ndarray, box: Box, patch: np.ndarray) -> np.ndarray:
    """A renumbered copy of ``labels`` with ``patch`` in ``box``.

    Examples
    --------
    >>> labels = np.array([[1, 2, 3]])
    >>> edited(labels, label_counts(labels), np.s_[:, :1], np.array([[0]]))
    array([[0, 2, 1]])
    """
    out = labels.copy()
    return renumbered(out, put_patch(out, counts, box, patch))


# --------------------------------------------------------------------------- drawing


def nearest_pixels(points: np.ndarray) -> np.ndarray:
    """Points rounded to the nearest pixel (half up), as ``intp``.

    Examples
    --------
    >>> nearest_pixels(np.array([[0.5, 1.4]])).tolist()
    [[1, 1]]
    """
    return np.floor(points + 0.5).astype(np.intp)


def polyline_mask(pixels: np.ndarray, shape: tuple[int, int], closed: bool = False) -> np.ndarray:
    """Boolean mask of ``shape``: the 8-connected pixels of the polyline (outside dropped).

    Examples
    --------
    >>> polyline_mask(np.array([[0, 0], [1, 1]]), (2, 3)).astype(int)
    array([[1, 0, 0],
           [0, 1, 0]])
    """
    ends = np.vstack([pixels, pixels[:1]]) if closed or len(pixels) == 1 else pixels
    drawn = [draw_line(*start, *end) for start, end in zip(ends[:-1], ends[1:], strict=True)]
    rows = np.concatenate([rows for rows, _ in drawn])
    cols = np.concatenate([cols for _, cols in drawn])
    inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    mask = np.zeros(shape, dtype=bool)
    mask[rows[inside], cols[inside]] = True
    return mask


def clipped_box(low: np.ndarray, high: np.ndarray, shape: tuple[int, ...]) -> Box | None:
    """Slices of the rectangle ``low`` to ``high`` (exclusive) clipped to ``shape``; None if empty.

    Examples
    --------
    >>> clipped_box(np.array([-2, 1]), np.array([3, 9]), (5, 5))
    (slice(0, 3, None), slice(1, 5, None))
    """
    low = np.maximum(low, 0)
    high = np.minimum(high, shape)
    if np.any(high <= low):
        return None
    return slice(int(low[0]), int(high[0])), slice(int(low[1]), int(high[1]))


def brush_mask(stroke: np.ndarray, radius: int, shape: tuple[int, ...]) -> tuple[Box | None, Any]:
    """The box of the image a round brush along ``stroke`` covers, and its mask there.

    Examples
    --------
    >>> box, mask = brush_mask(np.array([[0.0, 0.0]]), 1, (4, 4))
    >>> box, mask.astype(int)
    ((slice(0, 2, None), slice(0, 2, None)), array([[1, 1],
           [1, 0]]))
    """
    pixels = nearest_pixels(stroke)
    low = pixels.min(axis=0) - radius
    high = pixels.max(axis=0) + radius + 1
    box = clipped_box(low, high, shape)
    if box is None:
        return None, None
    path = polyline_mask(pixels - low, tuple(high - low)).astype(np.uint8)
    covered = cv2.dilate(path, disk(radius).astype(np.uint8)).astype(bool)
    rows, cols = box
    return box, covered[
        rows.start - low[0] : rows.stop - low[0], cols.start - low[1] : cols.stop - low[1]
    ]


def bounding_box(
    boxes: list[Box | None], ids: np.ndarray, margin: int, shape: tuple[int, ...]
) -> Box | None:
    """The box around the nuclei ``ids`` (their ``find_objects`` boxes), widened by ``margin``.

    Examples
    --------
    >>> from scipy import ndimage as ndi
    >>> labels = np.array([[1, 0, 0, 2]])
    >>> bounding_box(ndi.find_objects(labels), np.array([2]), 1, labels.shape)
    (slice(0, 1, None), slice(2, 4, None))
    """
    chosen = [boxes[i - 1] for i in ids]
    low = np.min([[rows.start, cols.start] for rows, cols in chosen], axis=0) - margin
    high = np.max([[rows.stop, cols.stop] for rows, cols in chosen], axis=0) + margin
    return clipped_box(low, high, shape)
