"""The seeds of a predicted distance map: its h-maxima, every nucleus at once.

:func:`h_maxima_tops` gives, for every 4-connected foreground component, the pixels that
``skimage.morphology.h_maxima`` marks in that component's bounding box with the rest of
the box at 0 (the peaks that rise at least ``h`` above the pass to any higher peak, with
their plateaus), pixel for pixel the same. skimage does it with a morphological
reconstruction by dilation; called once per component that cost 0.4 ms each (3.9 s for
the 8,812 components of a 65-image folder), and once on the whole image more still. Here
the same reconstruction (Vincent's hybrid raster-scan and queue algorithm, 8-connected)
runs for all components in one compiled loop (Numba, compiled once and cached on disk).
The reconstruction's values are the seed's and mask's own values, never sums, so any
correct algorithm gives the same result as skimage's.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy import ndimage as ndi

from nuclei_core.errors import InputError

__all__ = ["h_maxima_tops"]

_FOUR_CONNECTED = ndi.generate_binary_structure(2, 1)
_ROW_STEPS = np.array([-1, -1, -1, 0, 0, 1, 1, 1])
_COLUMN_STEPS = np.array([-1, 0, 1, -1, 1, -1, 0, 1])


@numba.njit(cache=True, nogil=True)
def _reconstruct(seed: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Grey reconstruction by dilation of ``seed`` under ``mask`` (float64, 8-connected)."""
    height, width = seed.shape
    rec = seed.copy()
    for row in range(height):  # raster scan: neighbours above and to the left
        for column in range(width):
            value = rec[row, column]
            for step in range(4):
                above, beside = row + _ROW_STEPS[step], column + _COLUMN_STEPS[step]
                if 0 <= above < height and 0 <= beside < width:
                    value = max(value, rec[above, beside])
            rec[row, column] = min(value, mask[row, column])
    queue = np.empty(max(16, height * width), dtype=np.int64)
    head = tail = 0
    for row in range(height - 1, -1, -1):  # anti-raster scan: below and to the right
        for column in range(width - 1, -1, -1):
            value = rec[row, column]
            for step in range(4, 8):
                below, beside = row + _ROW_STEPS[step], column + _COLUMN_STEPS[step]
                if 0 <= below < height and 0 <= beside < width:
                    value = max(value, rec[below, beside])
            value = min(value, mask[row, column])
            rec[row, column] = value
            for step in range(4, 8):
                below, beside = row + _ROW_STEPS[step], column + _COLUMN_STEPS[step]
                if 0 <= below < height and 0 <= beside < width:
                    if rec[below, beside] < value and rec[below, beside] < mask[below, beside]:
                        queue[tail % queue.size] = row * width + column
                        tail += 1
                        break
    while head < tail:  # first in, first out: what the scans left to raise
        pixel = queue[head % queue.size]
        head += 1
        row, column = pixel // width, pixel % width
        value = rec[row, column]
        for step in range(8):
            near, beside = row + _ROW_STEPS[step], column + _COLUMN_STEPS[step]
            if 0 <= near < height and 0 <= beside < width:
                current = rec[near, beside]
                if current < value and current != mask[near, beside]:
                    rec[near, beside] = min(value, mask[near, beside])
                    if tail - head == queue.size:  # full: grow, keeping the order
                        grown = np.empty(2 * queue.size, dtype=np.int64)
                        for index in range(tail - head):
                            grown[index] = queue[(head + index) % queue.size]
                        queue, tail, head = grown, tail - head, 0
                    queue[tail % queue.size] = near * width + beside
                    tail += 1
    return rec


@numba.njit(cache=True, nogil=True)
def _tops(components, local, shifted, shifted_outside, boxes, height_32, height_64, tops):
    """skimage's h-maxima of every component in its box (the rest of the box at 0)."""
    for index in range(boxes.shape[0]):
        top, bottom, left, right = boxes[index]
        component = index + 1
        mask = np.empty((bottom - top, right - left), dtype=np.float64)
        seed = np.empty_like(mask)
        largest, smallest = np.float32(-np.inf), np.float32(np.inf)
        for row in range(top, bottom):
            for column in range(left, right):
                if components[row, column] == component:
                    value, lowered = local[row, column], shifted[row, column]
                else:
                    value, lowered = np.float32(0.0), shifted_outside
                largest, smallest = max(largest, value), min(smallest, value)
                mask[row - top, column - left], seed[row - top, column - left] = value, lowered
        if height_32 > largest - smallest:  # skimage: no h-maxima higher than the range
            continue
        rec = _reconstruct(seed, mask)
        for row in range(top, bottom):
            for column in range(left, right):
                if components[row, column] == component:
                    if mask[row - top, column - left] - rec[row - top, column - left] >= height_64:
                        tops[row, column] = True


def _boxes(components: np.ndarray, count: int) -> np.ndarray:
    """``(count, 4)`` int64: each component's top, bottom, left, right (ends exclusive)."""
    boxes = np.zeros((count, 4), dtype=np.int64)
    for index, box in enumerate(ndi.find_objects(components)):
        boxes[index] = box[0].start, box[0].stop, box[1].start, box[1].stop
    return boxes


def h_maxima_tops(foreground: np.ndarray, distance: np.ndarray, height: float) -> np.ndarray:
    """The h-maxima of ``distance`` in each 4-connected component of ``foreground``.

    Parameters
    ----------
    foreground : ndarray of bool, shape (H, W)
    distance : ndarray of float, shape (H, W)
        The predicted distance map.
    height : float
        How far a peak must rise above the pass to any higher peak (``h``); above 0.

    Returns
    -------
    tops : ndarray of bool, shape (H, W)
        What ``skimage.morphology.h_maxima(local, height)`` marks inside each component,
        ``local`` being ``distance`` on the component's bounding box, 0 off the component.

    Examples
    --------
    Two peaks joined by a pass 0.5 lower, and a third one only 0.1 above its pass:

    >>> distance = np.array([[0.2, 1.0, 0.5, 0.9, 0.85, 0.8]], dtype=np.float32)
    >>> h_maxima_tops(distance > 0, distance, 0.3).astype(int)
    array([[0, 1, 0, 1, 0, 0]])
    """
    if not height > 0:
        raise InputError(f"height must be above 0, got {height}")
    components, count = ndi.label(foreground, structure=_FOUR_CONNECTED)
    tops = np.zeros(foreground.shape, dtype=bool)
    if count == 0:
        return tops
    local = np.where(components > 0, distance, 0).astype(np.float32)
    # skimage.morphology.h_maxima's seed, in the same float32 arithmetic.
    resolution = 2 * np.finfo(np.float32).resolution
    shifted = local - height - resolution * np.abs(local)
    shifted_outside = np.float32(0.0) - height  # a pixel at 0 has no resolution term
    _tops(
        components,
        local,
        shifted,
        shifted_outside,
        _boxes(components, count),
        np.float32(height),
        float(height),
        tops,
    )
    return tops
