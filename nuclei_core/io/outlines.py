"""Nucleus outlines as polygons, in the coordinates of ImageJ/Fiji, QuPath and napari shapes.

:func:`label_outlines` gives one closed polygon per nucleus of a label image: the
marching-squares contour (``skimage.measure.find_contours`` at 0.5, diagonal pixels
joined) of each nucleus alone, on a crop padded by one pixel, so that touching nuclei get
separate outlines along their shared edge.  Vertices are ``(x, y)`` with ``(0, 0)`` the
top-left corner of the image: pixel ``(row, col)`` covers ``[col, col + 1) x [row, row + 1)``,
as in ImageJ and QuPath, so filling a polygon by pixel centres (as those tools do) gives the
nucleus back.  Collinear vertices are dropped; a nucleus made of several pieces is
outlined by its largest piece, and holes are filled.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.measure import approximate_polygon, find_contours

from nuclei_core.checks import check_label_image

__all__ = ["label_outlines", "polygon_area"]


def polygon_area(points: np.ndarray) -> float:
    """Area enclosed by a polygon ``(N, 2)`` (shoelace formula, absolute value).

    Examples
    --------
    >>> polygon_area(np.array([[0, 0], [2, 0], [2, 3], [0, 3]]))
    6.0
    """
    x, y = np.asarray(points, dtype=np.float64).T
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _outline(mask: np.ndarray) -> np.ndarray:
    """``(N, 2)`` (row, col) contour of the largest piece of a padded crop."""
    contours = find_contours(mask.astype(np.float32), 0.5, fully_connected="high")
    largest = max(contours, key=polygon_area)
    return approximate_polygon(largest, tolerance=0)


def label_outlines(labels: np.ndarray) -> dict[int, np.ndarray]:
    """One closed polygon per nucleus: ``{label: (N, 2) float array of (x, y)}``.

    The last vertex repeats the first.  See the module's docstring for the coordinates.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image, 0 = background.

    Examples
    --------
    >>> labels = np.zeros((5, 6), np.int32)
    >>> labels[1:3, 2:5] = 4
    >>> outline = label_outlines(labels)[4]
    >>> outline.min(axis=0).tolist(), outline.max(axis=0).tolist()
    ([2.0, 1.0], [5.0, 3.0])
    >>> polygon_area(outline)  # the corners are cut by half a pixel: 6 - 4 / 8
    5.5
    """
    check_label_image(labels)
    outlines = {}
    for index, found in enumerate(ndimage.find_objects(labels)):
        if found is None:
            continue
        label = index + 1
        crop = np.pad(labels[found] == label, 1)
        rows, cols = _outline(crop).T
        # crop index -> image index (-1 for the padding) -> corner coordinates (+0.5)
        x = cols - 1 + found[1].start + 0.5
        y = rows - 1 + found[0].start + 0.5
        outlines[label] = np.column_stack([x, y])
    return outlines
