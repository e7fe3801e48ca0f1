"""Correcting a label image by hand: delete, add, split, merge, paint and erase nuclei.

Every edit is a pure function: it takes a label image (integer ``(H, W)``, 0 = background)
and returns a new one of the same dtype, the input untouched, with the nuclei numbered
1..n without gaps.  The renumbering keeps every id that still fits and moves the ids above
n (new nuclei, or the highest ones) down into the ids that were freed, smallest first, so an
edit changes only the nuclei it touches and at most as many others as it freed ids.

Points are float arrays ``(N, 2)`` of ``(row, col)`` pixel coordinates; pixel ``(r, c)`` is
centred on the integer point, as in :mod:`skimage.draw`, so a point is rounded to the nearest
pixel.  Nuclei are 4-connected, as in :mod:`nuclei_core.segmentation.postprocess`, so a one-pixel
(8-connected) line cuts a nucleus.  The work happens in the bounding box of the stroke or of
the touched nuclei; what covers the whole image (counting ids, renumbering) is vectorised, so
an edit of a 2048 x 2048 image with 1,000 nuclei takes some tens of milliseconds.  The shared
checks, renumbering and drawing are in :mod:`nuclei_core.segmentation.edit_primitives`;
:class:`~nuclei_core.segmentation.edit_history.EditHistory` keeps the edits of one image for
undo and redo.

Examples
--------
>>> labels = np.array([[1, 1, 0, 2, 2]], np.uint16)
>>> delete_nuclei(labels, [label_at(labels, (0, 0.4))])
array([[0, 0, 0, 1, 1]], dtype=uint16)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.draw import polygon as draw_polygon
from skimage.morphology import disk

from nuclei_core.checks import check_finite, check_int, check_label_image, check_optional_int
from nuclei_core.errors import EditError, InputError, InputTypeError
from nuclei_core.segmentation.edit_primitives import (
    bounding_box,
    brush_mask,
    checked_ids,
    checked_labels,
    checked_points,
    checked_radius,
    clipped_box,
    edited,
    free_ids,
    label_counts,
    nearest_pixels,
    polyline_mask,
    put_patch,
    renumbered,
)

__all__ = [
    "add_nucleus",
    "delete_nuclei",
    "erase",
    "label_at",
    "merge_nuclei",
    "paint",
    "split_nucleus",
]

_FOUR_CONNECTED = ndi.generate_binary_structure(2, 1)
_GAP_RADIUS = 2  # merging fills background gaps up to this wide
_MIN_PART = 5  # a split part smaller than this (a corner the line grazed) stays with its nucleus


def label_at(labels: np.ndarray, point: Any) -> int:
    """The id of the nucleus at ``point``.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image, 0 = background.
    point : array-like of float, shape (2,)
        ``(row, col)`` in pixel coordinates; rounded to the nearest pixel.

    Returns
    -------
    int
        The nucleus id there; 0 on background or outside the image.

    Examples
    --------
    >>> labels = np.array([[0, 3], [0, 3]])
    >>> label_at(labels, (0.8, 1.2)), label_at(labels, (0, 5))
    (3, 0)
    """
    check_label_image(labels, "labels")
    try:
        coordinates = np.asarray(point, dtype=float)
    except (TypeError, ValueError):
        raise InputTypeError(f"point must be (row, col), got {type(point).__name__}") from None
    if coordinates.shape != (2,):
        raise InputError(f"point must be one (row, col) pair, got shape {coordinates.shape}")
    row, col = nearest_pixels(check_finite(coordinates, "point"))
    if 0 <= row < labels.shape[0] and 0 <= col < labels.shape[1]:
        return int(labels[row, col])
    return 0


def delete_nuclei(labels: np.ndarray, ids: Iterable[int]) -> np.ndarray:
    """Remove the nuclei ``ids`` (their pixels become background).

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image, 0 = background.
    ids : iterable of int
        Nuclei to remove; 0 and ids not in ``labels`` are ignored.

    Returns
    -------
    ndarray
        New label image, same dtype, nuclei numbered 1..n.

    Examples
    --------
    >>> delete_nuclei(np.array([[1, 1, 0, 2, 3]]), [1])
    array([[0, 0, 0, 2, 1]])
    """
    labels = checked_labels(labels)
    ids = checked_ids(ids, "ids")
    counts = label_counts(labels)
    deleted = np.zeros(counts.size, dtype=bool)
    deleted[ids[ids < counts.size]] = True
    out = labels.copy()
    out[deleted[labels]] = 0
    counts[deleted] = 0
    return renumbered(out, counts)


def add_nucleus(labels: np.ndarray, outline: Any) -> np.ndarray:
    """A new nucleus of the background pixels inside or on a closed outline.

    Existing nuclei keep their pixels; the outline is clipped to the image.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image, 0 = background.
    outline : array-like of float, shape (N, 2)
        At least 3 ``(row, col)`` points of a polygon or a freehand outline (closed for you).

    Returns
    -------
    ndarray
        New label image, same dtype, nuclei numbered 1..n; the new nucleus takes the
        smallest free id (n + 1 when ``labels`` was numbered 1..n).

    Raises
    ------
    EditError
        The outline covers no background pixel of the image.

    Examples
    --------
    >>> labels = np.zeros((4, 5), np.uint8)
    >>> labels[:, 4] = 1
    >>> add_nucleus(labels, [[1, 1], [1, 4], [2, 4], [2, 1]])
    array([[0, 0, 0, 0, 1],
           [0, 2, 2, 2, 1],
           [0, 2, 2, 2, 1],
           [0, 0, 0, 0, 1]], dtype=uint8)
    """
    labels = checked_labels(labels)
    pixels = nearest_pixels(checked_points(outline, "outline", 3, labels.shape))
    box = clipped_box(pixels.min(axis=0), pixels.max(axis=0) + 1, labels.shape)
    if box is None:
        raise EditError("outline lies outside the image")
    crop = labels[box]
    origin = np.array([box[0].start, box[1].start])
    inside = polyline_mask(pixels - origin, crop.shape, closed=True)
    inside[draw_polygon(*(pixels - origin).T, shape=crop.shape)] = True
    new = inside & (crop == 0)
    if not new.any():
        raise EditError("outline covers no background pixel: draw it around free pixels")
    counts = label_counts(labels)
    patch = crop.copy()
    patch[new] = free_ids(counts, 1, labels.dtype)[0]
    return edited(labels, counts, box, patch)


def _cut(region: np.ndarray, on_line: np.ndarray) -> tuple[np.ndarray, int]:
    """Parts 1..k of ``region`` cut by ``on_line`` (pixels of the line and of small parts go
    to the nearest part; part 1 first in raster order), and k."""
    parts, number = ndi.label(region & ~on_line, _FOUR_CONNECTED)
    large = np.bincount(parts.ravel(), minlength=number + 1) >= _MIN_PART
    large[0] = False
    if np.count_nonzero(large) < 2:
        return parts, min(number, 1)
    table = np.zeros(number + 1, dtype=np.intp)
    table[large] = np.arange(1, np.count_nonzero(large) + 1)
    seeds = table[parts]
    nearest = ndi.distance_transform_edt(seeds == 0, return_distances=False, return_indices=True)
    return np.where(region, seeds[tuple(nearest)], 0), int(table.max())


def split_nucleus(labels: np.ndarray, line: Any) -> np.ndarray:
    """Cut each nucleus a polyline crosses from edge to edge into its parts.

    The pixels of the line go to the nearest part; a part smaller than 5 pixels (a corner
    the line only grazed) stays with the nearest larger one.  Nuclei the line touches but
    does not cut in two are left as they are.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image, 0 = background.
    line : array-like of float, shape (N, 2)
        At least 2 ``(row, col)`` points.

    Returns
    -------
    ndarray
        New label image, same dtype, nuclei numbered 1..n; the first part (in raster order)
        keeps the nucleus' id, the others take new ids.

    Raises
    ------
    EditError
        The line cuts no nucleus in two.

    Examples
    --------
    >>> labels = np.zeros((3, 9), np.int32)
    >>> labels[:, 1:8] = 1
    >>> split_nucleus(labels, [[-1, 4], [3, 4]])
    array([[0, 1, 1, 1, 1, 2, 2, 2, 0],
           [0, 1, 1, 1, 1, 2, 2, 2, 0],
           [0, 1, 1, 1, 1, 2, 2, 2, 0]], dtype=int32)
    """
    labels = checked_labels(labels)
    pixels = nearest_pixels(checked_points(line, "line", 2, labels.shape))
    on_line = polyline_mask(pixels, labels.shape)
    crossed = np.unique(labels[on_line])
    crossed = crossed[crossed > 0]
    if crossed.size == 0:
        raise EditError("line crosses no nucleus: draw it across the nucleus to split")
    boxes = ndi.find_objects(labels)
    cuts = [
        (boxes[i - 1], *_cut(labels[boxes[i - 1]] == i, on_line[boxes[i - 1]])) for i in crossed
    ]
    cuts = [(box, parts) for box, parts, number in cuts if number > 1]
    if not cuts:
        raise EditError("line cuts no nucleus in two: draw it from edge to edge across one")
    counts = label_counts(labels)
    new_ids = free_ids(counts, sum(int(parts.max()) - 1 for _, parts in cuts), labels.dtype)
    out = labels.copy()
    for box, parts in cuts:
        patch = out[box].copy()
        later = parts > 1
        patch[later] = new_ids[parts[later] - 2]
        new_ids = new_ids[int(parts.max()) - 1 :]
        counts = put_patch(out, counts, box, patch)
    return renumbered(out, counts)


def merge_nuclei(labels: np.ndarray, ids: Iterable[int]) -> np.ndarray:
    """Join two or more nuclei into one, filling the narrow background gaps between them.

    A background pixel within 2 pixels of two of the nuclei (on a watershed line, in a gap
    up to 2 pixels wide) becomes part of the merged nucleus.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image, 0 = background.
    ids : iterable of int
        Nuclei to merge; 0 and ids not in ``labels`` are ignored.

    Returns
    -------
    ndarray
        New label image, same dtype, nuclei numbered 1..n; the merged nucleus keeps the
        smallest of ``ids``.  Fewer than two nuclei to merge: an unchanged copy.

    Examples
    --------
    >>> merge_nuclei(np.array([[1, 1, 0, 2, 2, 0, 3]]), [1, 2])
    array([[1, 1, 1, 1, 1, 0, 2]])
    """
    labels = checked_labels(labels)
    ids = checked_ids(ids, "ids")
    counts = label_counts(labels)
    ids = ids[ids < counts.size]
    ids = ids[counts[ids] > 0]
    if ids.size < 2:
        return renumbered(labels.copy(), counts)
    box = bounding_box(ndi.find_objects(labels), ids, _GAP_RADIUS + 1, labels.shape)
    crop = labels[box]
    footprint = disk(_GAP_RADIUS).astype(np.uint8)
    reach = np.zeros(crop.shape, dtype=np.intp)  # how many of the nuclei are near each pixel
    for nucleus in ids:
        reach += cv2.dilate((crop == nucleus).astype(np.uint8), footprint)
    patch = crop.copy()
    patch[np.isin(crop, ids) | ((reach >= 2) & (crop == 0))] = ids[0]
    return edited(labels, counts, box, patch)


def paint(labels: np.ndarray, stroke: Any, radius: int, label_id: int) -> np.ndarray:
    """Paint a nucleus with a round brush along a stroke, over background and itself only.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image, 0 = background.
    stroke : array-like of float, shape (N, 2)
        At least 1 ``(row, col)`` point (one point: a dab).
    radius : int
        Brush radius in pixels (0: one pixel wide), as :func:`skimage.morphology.disk`.
    label_id : int
        The nucleus to paint; 0 paints a new nucleus.

    Returns
    -------
    ndarray
        New label image, same dtype, nuclei numbered 1..n.

    Raises
    ------
    EditError
        ``label_id`` is not a nucleus of ``labels``, or a new nucleus would get no pixel.

    Examples
    --------
    >>> labels = np.array([[1, 1, 0, 0, 2]])
    >>> paint(labels, [[0, 2]], 1, 1)
    array([[1, 1, 1, 1, 2]])
    >>> paint(labels, [[0, 3]], 0, 0)
    array([[1, 1, 0, 3, 2]])
    """
    labels = checked_labels(labels)
    stroke = checked_points(stroke, "stroke", 1, labels.shape)
    radius = checked_radius(radius, labels.shape)
    label_id = check_int(label_id, "label_id", minimum=0)
    counts = label_counts(labels)
    if label_id and (label_id >= counts.size or counts[label_id] == 0):
        raise EditError(f"label_id {label_id} is not a nucleus of labels")
    box, brush = brush_mask(stroke, radius, labels.shape)
    if box is None:
        raise EditError("stroke lies outside the image")
    target = label_id or free_ids(counts, 1, labels.dtype)[0]
    painted = brush & ((labels[box] == 0) | (labels[box] == target))
    if not painted.any():
        raise EditError("the brush covers no background pixel to paint")
    patch = labels[box].copy()
    patch[painted] = target
    return edited(labels, counts, box, patch)


def erase(labels: np.ndarray, stroke: Any, radius: int, label_id: int | None = None) -> np.ndarray:
    """Set the pixels under a round brush along a stroke to background.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image, 0 = background.
    stroke : array-like of float, shape (N, 2)
        At least 1 ``(row, col)`` point.
    radius : int
        Brush radius in pixels (0: one pixel wide), as :func:`skimage.morphology.disk`.
    label_id : int, optional
        Erase only this nucleus' pixels; ``None`` erases every nucleus under the brush.

    Returns
    -------
    ndarray
        New label image, same dtype, nuclei numbered 1..n (a nucleus erased whole is gone).

    Examples
    --------
    >>> labels = np.array([[1, 1, 2, 2, 3]])
    >>> erase(labels, [[0, 1], [0, 2]], 0)
    array([[1, 0, 0, 2, 3]])
    >>> erase(labels, [[0, 1], [0, 2]], 0, label_id=2)
    array([[1, 1, 0, 2, 3]])
    """
    labels = checked_labels(labels)
    stroke = checked_points(stroke, "stroke", 1, labels.shape)
    radius = checked_radius(radius, labels.shape)
    label_id = check_optional_int(label_id, "label_id", minimum=1)
    counts = label_counts(labels)
    box, brush = brush_mask(stroke, radius, labels.shape)
    if box is None:
        return renumbered(labels.copy(), counts)
    crop = labels[box]
    erased = brush & ((crop != 0) if label_id is None else (crop == label_id))
    return edited(labels, counts, box, np.where(erased, 0, crop).astype(labels.dtype))
