"""Correcting a label image by hand: delete, add, split, merge, paint and erase nuclei, undo.

Every edit is a pure function: it takes a label image (integer ``(H, W)``, 0 = background)
and returns a new one of the same dtype, the input untouched, with the nuclei numbered
1..n without gaps.  The renumbering keeps every id that still fits and moves the ids above
n (new nuclei, or the highest ones) down into the ids that were freed, smallest first, so an
edit changes only the nuclei it touches and at most as many others as it freed ids.

Points are float arrays ``(N, 2)`` of ``(row, col)`` pixel coordinates; pixel ``(r, c)`` is
centred on the integer point, as in :mod:`skimage.draw`, so a point is rounded to the nearest
pixel.  Nuclei are 4-connected, as in :mod:`nuclei_core.postprocess`, so a one-pixel
(8-connected) line cuts a nucleus.  The work happens in the bounding box of the stroke or of
the touched nuclei; what covers the whole image (counting ids, renumbering) is vectorised, so
an edit of a 2048 x 2048 image with 1,000 nuclei takes some tens of milliseconds.

:class:`EditHistory` holds the edits of one image for undo and redo, keeping only the pixels
each step changed.

Examples
--------
>>> labels = np.array([[1, 1, 0, 2, 2]], np.uint16)
>>> history = EditHistory(labels)
>>> history.apply(delete_nuclei(history.labels, [1]), "delete nucleus 1")
array([[0, 0, 0, 1, 1]], dtype=uint16)
>>> history.undo()
array([[1, 1, 0, 2, 2]], dtype=uint16)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.draw import line as draw_line
from skimage.draw import polygon as draw_polygon
from skimage.morphology import disk
from skimage.segmentation import relabel_sequential

from nuclei_core.checks import (
    check_finite,
    check_int,
    check_label_image,
    check_name,
    check_optional_int,
    check_same_shape,
)
from nuclei_core.errors import EditError, InputError, InputTypeError

__all__ = [
    "EditHistory",
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

_Box = tuple[slice, slice]


# --------------------------------------------------------------------------- checks


def _label_image(labels: Any) -> np.ndarray:
    """``labels`` checked, with ids small enough to count in a table (renumbered if not)."""
    check_label_image(labels, "labels")
    if labels.max() > labels.size:
        return relabel_sequential(labels)[0].astype(labels.dtype, copy=False)
    return labels


def _points(value: Any, name: str, minimum: int, shape: tuple[int, ...]) -> np.ndarray:
    """``(N, 2)`` finite float points, at least ``minimum``, none far outside the image."""
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


def _radius(radius: Any, shape: tuple[int, ...]) -> int:
    """A brush radius in pixels: an integer from 0 to the image's longer side."""
    radius = check_int(radius, "radius", minimum=0)
    if radius > max(shape):
        raise InputError(
            f"radius must be at most {max(shape)}, the image's longer side, got {radius}"
        )
    return radius


def _ids(ids: Any, name: str) -> np.ndarray:
    """Distinct nucleus ids as an ``intp`` array, 0 left out."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InputTypeError(
            f"{name} must be a collection of nucleus ids, got {type(ids).__name__}"
        )
    values = {check_int(value, f"every id in {name}", minimum=0) for value in ids}
    return np.array(sorted(values - {0}), dtype=np.intp)


# --------------------------------------------------------------------------- ids and renumbering


def _counts(labels: np.ndarray, size: int = 0) -> np.ndarray:
    """Pixels per id, at least ``size`` entries."""
    return np.bincount(labels.ravel().astype(np.intp, copy=False), minlength=size)


def _free_ids(counts: np.ndarray, number: int, dtype: np.dtype) -> np.ndarray:
    """The ``number`` smallest ids not in use, refused if ``dtype`` cannot hold them."""
    unused = np.flatnonzero(counts[1:] == 0) + 1
    ids = np.concatenate([unused, np.arange(counts.size, counts.size + number)])[:number]
    largest = np.iinfo(dtype).max
    if number and ids[-1] > largest:
        raise EditError(f"labels of dtype {dtype} cannot hold more than {largest} nuclei")
    return ids


def _put(out: np.ndarray, counts: np.ndarray, box: _Box, patch: np.ndarray) -> np.ndarray:
    """Write ``patch`` into ``out[box]``; return the pixels per id afterwards."""
    size = max(counts.size, int(patch.max(initial=0)) + 1)
    counts = np.pad(counts, (0, size - counts.size))
    counts += _counts(patch, size) - _counts(out[box], size)
    out[box] = patch
    return counts


def _renumbered(out: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``out`` (changed in place) with ids 1..n: the ids above n move into the free ones."""
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


def _edited(labels: np.ndarray, counts: np.ndarray, box: _Box, patch: np.ndarray) -> np.ndarray:
    """A renumbered copy of ``labels`` with ``patch`` in ``box``."""
    out = labels.copy()
    return _renumbered(out, _put(out, counts, box, patch))


# --------------------------------------------------------------------------- drawing


def _pixels(points: np.ndarray) -> np.ndarray:
    """Points rounded to the nearest pixel (half up)."""
    return np.floor(points + 0.5).astype(np.intp)


def _polyline(pixels: np.ndarray, shape: tuple[int, int], closed: bool = False) -> np.ndarray:
    """Boolean mask of ``shape``: the 8-connected pixels of the polyline (outside dropped)."""
    ends = np.vstack([pixels, pixels[:1]]) if closed or len(pixels) == 1 else pixels
    drawn = [draw_line(*start, *end) for start, end in zip(ends[:-1], ends[1:], strict=True)]
    rows = np.concatenate([rows for rows, _ in drawn])
    cols = np.concatenate([cols for _, cols in drawn])
    inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    mask = np.zeros(shape, dtype=bool)
    mask[rows[inside], cols[inside]] = True
    return mask


def _box(low: np.ndarray, high: np.ndarray, shape: tuple[int, ...]) -> _Box | None:
    """Slices of the rectangle ``low`` to ``high`` (exclusive) clipped to ``shape``."""
    low = np.maximum(low, 0)
    high = np.minimum(high, shape)
    if np.any(high <= low):
        return None
    return slice(int(low[0]), int(high[0])), slice(int(low[1]), int(high[1]))


def _brush(stroke: np.ndarray, radius: int, shape: tuple[int, ...]) -> tuple[_Box | None, Any]:
    """The box of the image a round brush along ``stroke`` covers, and its mask there."""
    pixels = _pixels(stroke)
    low = pixels.min(axis=0) - radius
    high = pixels.max(axis=0) + radius + 1
    box = _box(low, high, shape)
    if box is None:
        return None, None
    path = _polyline(pixels - low, tuple(high - low)).astype(np.uint8)
    covered = cv2.dilate(path, disk(radius).astype(np.uint8)).astype(bool)
    rows, cols = box
    return box, covered[
        rows.start - low[0] : rows.stop - low[0], cols.start - low[1] : cols.stop - low[1]
    ]


def _bounding_box(
    boxes: list[_Box | None], ids: np.ndarray, margin: int, shape: tuple[int, ...]
) -> _Box | None:
    """The box around the nuclei ``ids`` (their ``find_objects`` boxes), widened by ``margin``."""
    chosen = [boxes[i - 1] for i in ids]
    low = np.min([[rows.start, cols.start] for rows, cols in chosen], axis=0) - margin
    high = np.max([[rows.stop, cols.stop] for rows, cols in chosen], axis=0) + margin
    return _box(low, high, shape)


# --------------------------------------------------------------------------- edits


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
    row, col = _pixels(check_finite(coordinates, "point"))
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
    labels = _label_image(labels)
    ids = _ids(ids, "ids")
    counts = _counts(labels)
    deleted = np.zeros(counts.size, dtype=bool)
    deleted[ids[ids < counts.size]] = True
    out = labels.copy()
    out[deleted[labels]] = 0
    counts[deleted] = 0
    return _renumbered(out, counts)


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
    labels = _label_image(labels)
    pixels = _pixels(_points(outline, "outline", 3, labels.shape))
    box = _box(pixels.min(axis=0), pixels.max(axis=0) + 1, labels.shape)
    if box is None:
        raise EditError("outline lies outside the image")
    crop = labels[box]
    origin = np.array([box[0].start, box[1].start])
    inside = _polyline(pixels - origin, crop.shape, closed=True)
    inside[draw_polygon(*(pixels - origin).T, shape=crop.shape)] = True
    new = inside & (crop == 0)
    if not new.any():
        raise EditError("outline covers no background pixel: draw it around free pixels")
    counts = _counts(labels)
    patch = crop.copy()
    patch[new] = _free_ids(counts, 1, labels.dtype)[0]
    return _edited(labels, counts, box, patch)


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
    labels = _label_image(labels)
    on_line = _polyline(_pixels(_points(line, "line", 2, labels.shape)), labels.shape)
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
    counts = _counts(labels)
    new_ids = _free_ids(counts, sum(int(parts.max()) - 1 for _, parts in cuts), labels.dtype)
    out = labels.copy()
    for box, parts in cuts:
        patch = out[box].copy()
        later = parts > 1
        patch[later] = new_ids[parts[later] - 2]
        new_ids = new_ids[int(parts.max()) - 1 :]
        counts = _put(out, counts, box, patch)
    return _renumbered(out, counts)


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
    labels = _label_image(labels)
    ids = _ids(ids, "ids")
    counts = _counts(labels)
    ids = ids[ids < counts.size]
    ids = ids[counts[ids] > 0]
    if ids.size < 2:
        return _renumbered(labels.copy(), counts)
    box = _bounding_box(ndi.find_objects(labels), ids, _GAP_RADIUS + 1, labels.shape)
    crop = labels[box]
    footprint = disk(_GAP_RADIUS).astype(np.uint8)
    reach = np.zeros(crop.shape, dtype=np.intp)  # how many of the nuclei are near each pixel
    for nucleus in ids:
        reach += cv2.dilate((crop == nucleus).astype(np.uint8), footprint)
    patch = crop.copy()
    patch[np.isin(crop, ids) | ((reach >= 2) & (crop == 0))] = ids[0]
    return _edited(labels, counts, box, patch)


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
    labels = _label_image(labels)
    stroke = _points(stroke, "stroke", 1, labels.shape)
    radius = _radius(radius, labels.shape)
    label_id = check_int(label_id, "label_id", minimum=0)
    counts = _counts(labels)
    if label_id and (label_id >= counts.size or counts[label_id] == 0):
        raise EditError(f"label_id {label_id} is not a nucleus of labels")
    box, brush = _brush(stroke, radius, labels.shape)
    if box is None:
        raise EditError("stroke lies outside the image")
    target = label_id or _free_ids(counts, 1, labels.dtype)[0]
    painted = brush & ((labels[box] == 0) | (labels[box] == target))
    if not painted.any():
        raise EditError("the brush covers no background pixel to paint")
    patch = labels[box].copy()
    patch[painted] = target
    return _edited(labels, counts, box, patch)


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
    labels = _label_image(labels)
    stroke = _points(stroke, "stroke", 1, labels.shape)
    radius = _radius(radius, labels.shape)
    label_id = check_optional_int(label_id, "label_id", minimum=1)
    counts = _counts(labels)
    box, brush = _brush(stroke, radius, labels.shape)
    if box is None:
        return _renumbered(labels.copy(), counts)
    crop = labels[box]
    erased = brush & ((crop != 0) if label_id is None else (crop == label_id))
    return _edited(labels, counts, box, np.where(erased, 0, crop).astype(labels.dtype))


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class _Step:
    """One edit: where pixels changed (flat indices) and their values before and after."""

    description: str
    index: np.ndarray
    before: np.ndarray
    after: np.ndarray

    @classmethod
    def between(cls, old: np.ndarray, new: np.ndarray, description: str) -> _Step:
        index = np.flatnonzero(old != new)
        return cls(description, index, old.ravel()[index], new.ravel()[index])


def _frozen(labels: np.ndarray) -> np.ndarray:
    """``labels`` made read-only (the history's arrays are never changed in place)."""
    labels.flags.writeable = False
    return labels


def _patched(labels: np.ndarray, index: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A read-only copy of ``labels`` with ``values`` at the flat ``index``."""
    out = labels.copy()
    np.put(out, index, values)
    return _frozen(out)


def _nucleus_count(labels: np.ndarray) -> int:
    """Number of distinct nuclei."""
    if labels.max() > labels.size:
        return int(np.count_nonzero(np.unique(labels)))
    return int(np.count_nonzero(_counts(labels)[1:]))


class EditHistory:
    """The edits of one label image, for undo and redo.

    Each step keeps only the pixels it changed (their flat positions, values before and
    after), so a 2048 x 2048 image with 1,000 nuclei and 200 steps of edits stays small.
    :attr:`labels` is read-only; edit functions return new arrays for :meth:`apply`.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        The label image before any edit (copied).
    max_steps : int, default 200
        Most steps kept for undo; the oldest is dropped beyond.

    Examples
    --------
    >>> history = EditHistory(np.array([[1, 0, 2]]), max_steps=10)
    >>> history.apply(merge_nuclei(history.labels, [1, 2]), "merge 1 and 2")
    array([[1, 1, 1]])
    >>> history.count, history.steps, history.can_undo, history.can_redo
    (1, ['merge 1 and 2'], True, False)
    >>> history.undo()
    array([[1, 0, 2]])
    >>> history.redo()
    array([[1, 1, 1]])
    """

    def __init__(self, labels: np.ndarray, max_steps: int = 200) -> None:
        check_label_image(labels, "labels")
        self._done: deque[_Step] = deque(maxlen=check_int(max_steps, "max_steps", minimum=1))
        self._undone: list[_Step] = []
        self._set(_frozen(labels.copy()))

    def _set(self, labels: np.ndarray) -> np.ndarray:
        self._labels = labels
        self._count = _nucleus_count(labels)
        return labels

    @property
    def labels(self) -> np.ndarray:
        """The current label image (read-only)."""
        return self._labels

    @property
    def count(self) -> int:
        """Number of nuclei in :attr:`labels`."""
        return self._count

    @property
    def steps(self) -> list[str]:
        """Descriptions of the steps that can be undone, oldest first."""
        return [step.description for step in self._done]

    @property
    def can_undo(self) -> bool:
        """Whether there is a step to undo."""
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone step to redo."""
        return bool(self._undone)

    def apply(self, new_labels: np.ndarray, description: str) -> np.ndarray:
        """Make ``new_labels`` (copied) current, as a step that can be undone.

        A new step drops the steps undone before it; one that changes nothing adds no step.
        """
        check_label_image(new_labels, "new_labels")
        check_same_shape(new_labels, "new_labels", self._labels.shape)
        if new_labels.dtype != self._labels.dtype:
            raise InputError(
                f"new_labels has dtype {new_labels.dtype}, the history {self._labels.dtype}"
            )
        step = _Step.between(self._labels, new_labels, check_name(description, "description"))
        if step.index.size == 0:
            return self._labels
        self._done.append(step)
        self._undone.clear()
        return self._set(_frozen(new_labels.copy()))

    def undo(self) -> np.ndarray:
        """Go back one step and return the labels then; nothing to undo: the labels as they are."""
        if not self._done:
            return self._labels
        step = self._done.pop()
        self._undone.append(step)
        return self._set(_patched(self._labels, step.index, step.before))

    def redo(self) -> np.ndarray:
        """Do the last undone step again; nothing to redo: the labels as they are."""
        if not self._undone:
            return self._labels
        step = self._undone.pop()
        self._done.append(step)
        return self._set(_patched(self._labels, step.index, step.after))
