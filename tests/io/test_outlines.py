"""Tests of nuclei_core.io.outlines: polygons that give the nuclei back, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import polygon2mask
from synthetic import make_nuclei

from nuclei_core.errors import InputTypeError
from nuclei_core.io.outlines import label_outlines, polygon_area


def awkward_labels() -> np.ndarray:
    """Small, thin, diagonal, touching and concave nuclei on a 30 x 40 image."""
    labels = np.zeros((30, 40), np.int32)
    labels[1, 1] = 1  # one pixel
    labels[1, 4:6] = 2  # two pixels
    labels[4, 4] = labels[5, 5] = labels[6, 6] = 3  # a diagonal line, 8-connected
    labels[10:20, 2:8] = 4
    labels[10:20, 8:14] = 5  # touches 4 along a whole edge
    labels[3:12, 20:30] = 6
    labels[5:12, 23:27] = 0  # a U: concave
    labels[0:3, 37:40] = 7  # at the image's corner
    labels[25:30, 0:40] = 8  # along the bottom edge
    return labels


def rasterised(outline: np.ndarray, shape) -> np.ndarray:
    """Pixels whose centre lies inside the polygon (ImageJ and QuPath fill this way)."""
    return polygon2mask(shape, outline[:, ::-1] - 0.5)  # (x, y) corners -> (row, col) centres


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_gives_every_nucleus_back(seed):
    labels = awkward_labels() if seed == 0 else make_nuclei((96, 96), 12, (3, 9), 3, seed)[1]
    outlines = label_outlines(labels)
    assert sorted(outlines) == sorted(set(np.unique(labels)) - {0})  # none lost
    back = np.zeros_like(labels)
    for label, outline in outlines.items():
        assert np.array_equal(outline[0], outline[-1])  # closed
        mask = rasterised(outline, labels.shape)
        assert iou(mask, labels == label) >= 0.95, label
        back[mask & (back == 0)] = label
    assert len(np.unique(back)) == len(np.unique(labels))  # none merged


def test_outlines_follow_pixel_edges_between_touching_nuclei():
    labels = awkward_labels()
    outlines = label_outlines(labels)
    np.testing.assert_array_equal(rasterised(outlines[4], labels.shape), labels == 4)
    np.testing.assert_array_equal(rasterised(outlines[5], labels.shape), labels == 5)
    assert outlines[4][:, 0].max() == pytest.approx(8.0)  # the shared edge x = 8
    assert outlines[5][:, 0].min() == pytest.approx(8.0)
    assert outlines[8][:, 1].max() == pytest.approx(30.0)  # the image's bottom edge
    assert polygon_area(outlines[4]) == pytest.approx(60 - 4 * 0.125)


def test_no_nuclei_no_outlines_and_bad_input_is_refused():
    assert label_outlines(np.zeros((5, 5), np.int32)) == {}
    with pytest.raises(InputTypeError, match="labels"):
        label_outlines(np.zeros((5, 5), np.float32))
