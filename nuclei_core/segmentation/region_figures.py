"""Shape and intensity figures of every nucleus of a label image, at array speed.

:func:`region_figures` gives the numbers ``skimage.measure.regionprops_table`` gives for
``label``, ``centroid``, ``area``, ``perimeter``, ``equivalent_diameter_area``,
``eccentricity``, ``solidity``, ``intensity_mean`` and ``intensity_max``, with the same
keys, computed for all nuclei at once: sums per nucleus with ``np.bincount``, moments
from the pixels' offsets to their nucleus's centroid, the perimeter from the same pixel
patterns skimage weighs (``skimage.measure.perimeter``, 4-connected) found with shifted
copies of the image. Solidity needs each nucleus's convex hull: one ``cv2.convexHull``
call per nucleus on the few pixels that end a row, and the pixels inside the hull counted
row by row in exact integer arithmetic for all hulls at once (skimage's
``convex_hull_image`` builds the same hull with Qhull and fills it pixel by pixel).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["mean_intensities", "region_figures"]

# skimage.measure.perimeter: each border pixel's pattern is 1 + 2 per 4-neighbour and 10 per
# diagonal neighbour on the border; these are the lengths the patterns stand for.
_PATTERN_COUNT = 50
_PATTERN_LENGTHS = np.zeros(_PATTERN_COUNT, dtype=np.float64)
_PATTERN_LENGTHS[[5, 7, 15, 17, 25, 27]] = 1
_PATTERN_LENGTHS[[21, 33]] = math.sqrt(2)
_PATTERN_LENGTHS[[13, 23]] = (1 + math.sqrt(2)) / 2
_SIDES = ((-1, 0), (1, 0), (0, -1), (0, 1))
_CORNERS = ((-1, -1), (-1, 1), (1, -1), (1, 1))


def _neighbour(padded: np.ndarray, row_step: int, column_step: int) -> np.ndarray:
    """The value of each pixel's neighbour ``(row_step, column_step)`` away (0 off the image)."""
    height, width = padded.shape[0] - 2, padded.shape[1] - 2
    return padded[1 + row_step : 1 + row_step + height, 1 + column_step : 1 + column_step + width]


def _numbered(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, index)``: the label values present (ascending) and the image with them
    numbered 1..N (0 stays background)."""
    if int(labels.max(initial=0)) <= labels.size:
        present = np.flatnonzero(np.bincount(labels.ravel()))
        ids = present[present > 0]
        lookup = np.zeros(int(labels.max(initial=0)) + 1, dtype=np.int32)
        lookup[ids] = np.arange(1, ids.size + 1)
        return ids, lookup[labels]
    values, index = np.unique(labels, return_inverse=True)
    index = index.reshape(labels.shape).astype(np.int32)
    if values[0] != 0:
        return values, index + 1
    return values[1:], index


def _perimeters(index: np.ndarray, padded: np.ndarray, count: int) -> np.ndarray:
    """skimage's 4-connected perimeter of every nucleus (``padded``: ``index`` with a rim of 0)."""
    inner = index > 0
    for row_step, column_step in _SIDES:
        inner &= _neighbour(padded, row_step, column_step) == index
    rows, columns = np.nonzero((index > 0) & ~inner)
    owners = index[rows, columns]
    border = np.zeros_like(padded)
    border[rows + 1, columns + 1] = owners
    pattern = np.ones(owners.size, dtype=np.int64)
    for steps, weight in ((_SIDES, 2), (_CORNERS, 10)):
        for row_step, column_step in steps:
            pattern += weight * (border[rows + 1 + row_step, columns + 1 + column_step] == owners)
    histogram = np.bincount(
        owners.astype(np.int64) * _PATTERN_COUNT + pattern,
        minlength=(count + 1) * _PATTERN_COUNT,
    ).reshape(count + 1, _PATTERN_COUNT)
    return histogram[1:] @ _PATTERN_LENGTHS


def _hull_pixel_counts(index: np.ndarray, padded: np.ndarray, count: int) -> np.ndarray:
    """The number of pixel centres inside or on each nucleus's convex hull.

    The hull is that of the midpoints of the pixels' edges (skimage's ``convex_hull_image``
    with ``offset_coordinates=True``), in coordinates doubled so that every point is an
    integer; only pixels that end a run of their row can be hull points.
    """
    ends = (index > 0) & (
        (_neighbour(padded, 0, -1) != index) | (_neighbour(padded, 0, 1) != index)
    )
    rows, columns = np.nonzero(ends)
    owners = index[rows, columns]
    order = np.argsort(owners, kind="stable")
    rows, columns, owners = 2 * rows[order], 2 * columns[order], owners[order]
    # (x, y) points for OpenCV: the four edge midpoints of every run-ending pixel.
    points = np.stack(
        [
            np.concatenate([columns, columns, columns - 1, columns + 1]),
            np.concatenate([rows - 1, rows + 1, rows, rows]),
        ],
        axis=1,
    ).astype(np.int32)
    points = points.reshape(4, -1, 2).transpose(1, 0, 2).reshape(-1, 2)
    bounds = np.searchsorted(owners, np.arange(1, count + 2)) * 4
    hulls = [cv2.convexHull(points[bounds[k] : bounds[k + 1]]).reshape(-1, 2) for k in range(count)]
    sizes = np.array([hull.shape[0] for hull in hulls])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    vertices = np.concatenate(hulls).astype(np.int64)
    following = np.arange(vertices.shape[0]) + 1
    following[starts + sizes - 1] = starts  # each hull's last vertex joins its first
    owner = np.repeat(np.arange(count), sizes)
    x1, y1 = vertices[:, 0], vertices[:, 1]
    x2, y2 = vertices[following, 0], vertices[following, 1]
    sloped = y1 != y2
    x1, y1, x2, y2, owner = x1[sloped], y1[sloped], x2[sloped], y2[sloped], owner[sloped]
    # Pixel centres sit on even rows: each edge meets the even rows between its ends.
    low = np.minimum(y1, y2)
    first_row = -((-low) // 2)  # ceil(low / 2), in pixel rows
    spans = np.maximum(np.maximum(y1, y2) // 2 - first_row + 1, 0)
    edge = np.repeat(np.arange(owner.size), spans)
    row = first_row[edge] + np.arange(edge.size) - np.repeat(np.cumsum(spans) - spans, spans)
    # Crossing at x = numerator / denominator in doubled units; in pixel columns, / 2 more.
    rise = y2[edge] - y1[edge]
    numerator = x1[edge] * rise + (x2[edge] - x1[edge]) * (2 * row - y1[edge])
    denominator = 2 * rise
    numerator, denominator = np.where(rise < 0, -numerator, numerator), np.abs(denominator)
    left = -((-numerator) // denominator)
    right = numerator // denominator
    keys, key_of = np.unique(owner[edge] * (index.shape[0] + 1) + row, return_inverse=True)
    lefts = np.full(keys.size, np.iinfo(np.int64).max)
    rights = np.full(keys.size, np.iinfo(np.int64).min)
    np.minimum.at(lefts, key_of, left)
    np.maximum.at(rights, key_of, right)
    per_row = np.maximum(rights - lefts + 1, 0)
    return np.bincount(keys // (index.shape[0] + 1), weights=per_row, minlength=count)


def region_figures(labels: np.ndarray, intensity: np.ndarray | None = None) -> dict:
    """Shape (and intensity) figures of every nucleus, as ``regionprops_table`` names them.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image, 0 = background (checked by the caller).
    intensity : ndarray of float, shape (H, W), optional
        Adds ``intensity_mean`` and ``intensity_max``.

    Returns
    -------
    dict of str to ndarray
        One value per label present, in ascending label order: ``label``, ``centroid-0``,
        ``centroid-1``, ``area``, ``perimeter``, ``equivalent_diameter_area``,
        ``eccentricity``, ``solidity`` (and the intensities).

    Examples
    --------
    >>> labels = np.zeros((6, 8), dtype=np.int32)
    >>> labels[1:4, 1:6] = 3
    >>> figures = region_figures(labels)
    >>> int(figures["label"][0]), float(figures["area"][0]), float(figures["solidity"][0])
    (3, 15.0, 1.0)
    >>> round(float(figures["eccentricity"][0]), 3), float(figures["perimeter"][0])
    (0.816, 12.0)
    """
    ids, index = _numbered(labels)
    count = ids.size
    figures = {"label": ids}
    pixels = np.flatnonzero(index)
    owners = index.ravel()[pixels]
    rows, columns = np.divmod(pixels, labels.shape[1])
    area = np.bincount(owners, minlength=count + 1)[1:].astype(np.float64)
    safe_area = np.where(area > 0, area, 1.0)
    centre_row = np.bincount(owners, weights=rows, minlength=count + 1)[1:] / safe_area
    centre_column = np.bincount(owners, weights=columns, minlength=count + 1)[1:] / safe_area
    figures["centroid-0"], figures["centroid-1"], figures["area"] = (
        centre_row,
        centre_column,
        area,
    )
    padded = np.pad(index, 1)
    figures["perimeter"] = _perimeters(index, padded, count)
    figures["equivalent_diameter_area"] = np.sqrt(4 * area / math.pi)

    row_offset = rows - np.concatenate([[0.0], centre_row])[owners]
    column_offset = columns - np.concatenate([[0.0], centre_column])[owners]

    def spread(values):
        return np.bincount(owners, weights=values, minlength=count + 1)[1:] / safe_area

    rows_rows, columns_columns = spread(row_offset**2), spread(column_offset**2)
    rows_columns = spread(row_offset * column_offset)
    middle = (rows_rows + columns_columns) / 2
    half_gap = np.sqrt(((rows_rows - columns_columns) / 2) ** 2 + rows_columns**2)
    largest, smallest = middle + half_gap, np.maximum(middle - half_gap, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        figures["eccentricity"] = np.where(
            largest > 0, np.sqrt(np.clip(1 - smallest / largest, 0.0, 1.0)), 0.0
        )
    figures["solidity"] = area / _hull_pixel_counts(index, padded, count) if count else area
    if intensity is not None:
        values = intensity.ravel()[pixels]
        figures["intensity_mean"] = (
            np.bincount(owners, weights=values, minlength=count + 1)[1:] / safe_area
        )
        largest_value = np.full(count + 1, -np.inf)
        np.maximum.at(largest_value, owners, values)
        figures["intensity_max"] = largest_value[1:]
    return figures


def mean_intensities(labels: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """The mean of ``intensity`` over every nucleus of ``labels``, in ascending label order.

    Examples
    --------
    >>> mean_intensities(np.array([[0, 2, 2, 5]]), np.array([[9.0, 1.0, 2.0, 4.0]]))
    array([1.5, 4. ])
    """
    ids, index = _numbered(labels)
    sums = np.bincount(index.ravel(), weights=intensity.ravel(), minlength=ids.size + 1)[1:]
    areas = np.bincount(index.ravel(), minlength=ids.size + 1)[1:]
    return sums / np.maximum(areas, 1)
