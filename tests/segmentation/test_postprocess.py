"""Tests of nuclei_core.segmentation.postprocess on generated data only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries
from support import assert_consecutive_int32, disc

from nuclei_core.errors import InputError, InputTypeError
from nuclei_core.segmentation.postprocess import (
    keep_confident,
    labels_from_mask,
    labels_from_probabilities,
)

FOUR_CONNECTED = ndi.generate_binary_structure(2, 1)


# --------------------------------------------------------------------------------------------
# Generated data
# --------------------------------------------------------------------------------------------


def touching_discs(shape=(60, 80), radius=12, separation=22):
    """Label image of two discs whose overlap is given to the nearer centre (they touch)."""
    first_centre = (shape[0] // 2, 25)
    second_centre = (shape[0] // 2, 25 + separation)
    first = disc(shape, first_centre, radius)
    second = disc(shape, second_centre, radius)
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    nearer_first = (columns - first_centre[1]) ** 2 <= (columns - second_centre[1]) ** 2
    labels = np.zeros(shape, dtype=np.int32)
    labels[second] = 2
    labels[first & (nearer_first | ~second)] = 1
    return labels


def probabilities_from_labels(labels, blur=0.0):
    """Ideal network output for ``labels``: foreground and inner-rim boundary, float32."""
    foreground = (labels > 0).astype(np.float32)
    boundary = find_boundaries(labels, mode="inner").astype(np.float32)
    if blur:
        foreground = ndi.gaussian_filter(foreground, blur)
        boundary = np.clip(ndi.gaussian_filter(boundary, blur) * 2.0, 0.0, 1.0)
    return np.stack([foreground, boundary], axis=-1).astype(np.float32)


def best_iou(region, labels):
    """Highest intersection over union between a boolean region and any label."""
    best = 0.0
    for value in np.unique(labels[region]):
        if value == 0:
            continue
        candidate = labels == value
        best = max(best, (candidate & region).sum() / (candidate | region).sum())
    return best


# --------------------------------------------------------------------------------------------
# labels_from_probabilities
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("blur", [0.0, 1.0])
def test_touching_discs_from_probabilities_become_two_nuclei(blur):
    truth = touching_discs()
    labels = labels_from_probabilities(probabilities_from_labels(truth, blur=blur))
    assert labels.max() == 2
    assert best_iou(truth == 1, labels) > 0.9
    assert best_iou(truth == 2, labels) > 0.9
    assert_consecutive_int32(labels)


def test_touching_discs_without_boundary_are_split_by_distance_seeds():
    # Where the network drew no rim, the joined core is split by the distance transform;
    # with seeds required further apart than the two centres it stays one nucleus.
    truth = touching_discs()
    probabilities = probabilities_from_labels(truth)
    probabilities[..., 1] = 0.0
    assert labels_from_probabilities(probabilities).max() == 2
    assert labels_from_probabilities(probabilities, seed_distance=60).max() == 1


def with_distance(labels, probabilities):
    """Add the ideal third channel (the normalised distance map of ``labels``)."""
    from nuclei_core.training.data import normalised_distance

    return np.concatenate([probabilities, normalised_distance(labels)[..., None]], axis=-1)


def test_distance_map_seeds_split_touching_discs_the_boundary_missed():
    truth = touching_discs()
    probabilities = probabilities_from_labels(truth)
    probabilities[..., 1] = 0.0  # no rim between them
    labels = labels_from_probabilities(with_distance(truth, probabilities), seed_distance=60)
    assert labels.max() == 2  # the boundary path with these seeds gives 1 (test above)
    assert best_iou(truth == 1, labels) > 0.9
    assert best_iou(truth == 2, labels) > 0.9
    assert_consecutive_int32(labels)


def test_peak_height_decides_which_dips_split():
    truth = touching_discs()
    probabilities = with_distance(truth, probabilities_from_labels(truth))
    probabilities[..., 1] = 0.0
    # The second nucleus's peak at 0.95, the dip between the two filled up to 0.85: the
    # lower peak rises 0.1 above the pass to the higher one.
    probabilities[..., 2] *= np.where(truth == 2, 0.95, 1.0)
    row = truth.shape[0] // 2
    band = probabilities[row - 1 : row + 2, 25:48, 2]
    band[...] = np.maximum(band, 0.85)
    assert labels_from_probabilities(probabilities, peak_height=0.2).max() == 1
    assert labels_from_probabilities(probabilities, peak_height=0.05).max() == 2


def test_a_flat_distance_map_keeps_the_nucleus_whole():
    truth = disc((40, 40), (20, 20), 10).astype(np.int32)
    probabilities = with_distance(truth, probabilities_from_labels(truth))
    probabilities[..., 2] = 0.3 * (truth > 0)  # one plateau: one seed
    labels = labels_from_probabilities(probabilities)
    assert labels.max() == 1 and (labels > 0).sum() == (truth > 0).sum()


def test_split_follows_the_predicted_boundary():
    # Two touching rectangles of 7 and 23 columns; the shared rim is predicted as boundary.
    truth = np.zeros((20, 40), dtype=np.int32)
    truth[5:15, 5:12] = 1
    truth[5:15, 12:35] = 2
    labels = labels_from_probabilities(probabilities_from_labels(truth))
    assert labels.max() == 2
    assert best_iou(truth == 1, labels) > 0.9
    assert best_iou(truth == 2, labels) > 0.95


def test_faint_gap_in_a_wide_boundary_is_cut_by_the_marker_opening():
    probabilities = np.zeros((30, 50, 2), dtype=np.float32)
    probabilities[5:25, 5:45, 0] = 0.9
    probabilities[5:25, 23:27, 1] = 0.9
    probabilities[15, 23:27, 1] = 0.1  # 1-pixel-wide bridge between the two interiors
    labels = labels_from_probabilities(probabilities)
    assert labels.max() == 2
    assert np.all(labels[5:25, 5:23] == labels[10, 10])
    assert np.all(labels[5:25, 27:45] == labels[10, 40])


def test_lone_nucleus_stays_one():
    truth = disc((50, 50), (25, 25), 12).astype(np.int32)
    labels = labels_from_probabilities(probabilities_from_labels(truth, blur=1.0))
    assert labels.max() == 1
    assert best_iou(truth == 1, labels) > 0.9


def test_objects_below_min_size_are_removed():
    probabilities = np.zeros((40, 40, 2), dtype=np.float32)
    probabilities[5:25, 5:25, 0] = 1.0  # 400 pixels
    probabilities[30:33, 30:34, 0] = 1.0  # 12 pixels
    labels = labels_from_probabilities(probabilities, min_size=15)
    assert labels.max() == 1
    assert labels[31, 31] == 0
    assert (labels > 0).sum() == 400
    kept = labels_from_probabilities(probabilities, min_size=12)
    assert kept.max() == 2
    assert (kept > 0).sum() == 412


def test_nuclei_the_network_is_never_sure_of_are_dropped():
    probabilities = np.zeros((40, 40, 2), dtype=np.float32)
    probabilities[5:15, 5:15, 0] = 0.8
    probabilities[9, 9, 0] = 0.99  # one sure pixel keeps the whole nucleus
    probabilities[25:35, 25:35, 0] = 0.9  # sure of no pixel
    kept_all = labels_from_probabilities(probabilities)
    assert kept_all.max() == 2
    labels = labels_from_probabilities(probabilities, min_confidence=0.95)
    assert labels.max() == 1
    assert (labels == 1).sum() == 100
    assert labels[30, 30] == 0


def test_lowering_the_threshold_never_drops_a_confident_nucleus():
    probabilities = np.zeros((40, 40, 2), dtype=np.float32)
    probabilities[10:30, 10:30, 0] = 0.6  # a faint rim around a sure core
    probabilities[15:25, 15:25, 0] = 0.97
    counts = [
        labels_from_probabilities(probabilities, threshold=threshold, min_confidence=0.95).max()
        for threshold in (0.9, 0.5, 0.3)
    ]
    assert counts == [1, 1, 1]


def test_a_foreground_map_alone_drops_unsure_nuclei_too():
    foreground = np.zeros((30, 40), dtype=np.float32)
    foreground[5:15, 5:15] = 0.99
    foreground[5:15, 25:35] = 0.8
    assert labels_from_probabilities(foreground).max() == 2
    labels = labels_from_probabilities(foreground, min_confidence=0.9)
    assert labels.max() == 1 and (labels == 1).sum() == 100 and labels[10, 30] == 0


def test_keep_confident_keeps_numbers_and_refuses_other_shapes():
    labels = np.array([[1, 0, 2, 3]])
    foreground = np.array([[0.99, 0.0, 0.5, 0.96]])
    assert keep_confident(labels, foreground, 0.95).tolist() == [[1, 0, 0, 3]]
    assert keep_confident(labels, foreground, 0.0).tolist() == labels.tolist()
    with pytest.raises(InputError, match="foreground"):
        keep_confident(labels, foreground[:, :3], 0.5)
    with pytest.raises(InputError, match="min_confidence"):
        keep_confident(labels, foreground, 1.5)


def test_foreground_component_without_marker_is_kept():
    probabilities = np.zeros((40, 40, 2), dtype=np.float32)
    probabilities[5:25, 5:25, 0] = 1.0
    probabilities[30:35, 30:36, 0] = 1.0
    probabilities[30:35, 30:36, 1] = 1.0  # all boundary: no interior, so no marker
    labels = labels_from_probabilities(probabilities)
    assert labels.max() == 2
    assert np.all(labels[30:35, 30:36] == labels[32, 32])
    assert labels[32, 32] not in (0, labels[10, 10])


def test_small_markers_are_ignored():
    # One square nucleus with a separate 5-pixel interior island ringed by boundary.
    probabilities = np.zeros((30, 30, 2), dtype=np.float32)
    probabilities[2:28, 2:28, 0] = 1.0
    probabilities[2:28, 2:28, 1] = 1.0
    probabilities[5:25, 5:15, 1] = 0.0  # large interior
    probabilities[19:22, 20, 1] = 0.0  # plus-shaped island, survives the opening
    probabilities[20, 19:22, 1] = 0.0
    assert labels_from_probabilities(probabilities, min_marker_size=6).max() == 1
    assert labels_from_probabilities(probabilities, min_marker_size=5).max() == 2


def test_corner_touching_nuclei_stay_separate():
    probabilities = np.zeros((30, 30, 2), dtype=np.float32)
    probabilities[5:15, 5:15, 0] = 1.0
    probabilities[15:25, 15:25, 0] = 1.0
    labels = labels_from_probabilities(probabilities)
    assert labels.max() == 2
    assert labels[10, 10] != labels[20, 20]


def test_labels_are_consecutive_int32_after_removals():
    rng = np.random.default_rng(0)
    truth = np.zeros((200, 200), dtype=np.int32)
    for index in range(40):
        row, column = rng.integers(10, 190, size=2)
        size = 3 if index % 3 == 0 else 8  # every third is below min_size
        truth[row : row + size, column : column + size] = index + 1
    labels = labels_from_probabilities(probabilities_from_labels(truth))
    assert_consecutive_int32(labels)
    assert labels.max() > 5


def test_float64_input_gives_the_same_labels_and_input_is_untouched():
    probabilities = probabilities_from_labels(touching_discs(), blur=1.0)
    before = probabilities.copy()
    labels = labels_from_probabilities(probabilities)
    np.testing.assert_array_equal(probabilities, before)
    np.testing.assert_array_equal(
        labels_from_probabilities(probabilities.astype(np.float64)), labels
    )


def test_two_dimensional_input_uses_the_distance_watershed():
    truth = touching_discs()
    foreground = (truth > 0).astype(np.float32)
    labels = labels_from_probabilities(foreground)
    np.testing.assert_array_equal(labels, labels_from_mask(truth > 0))
    assert labels.max() == 2
    assert labels_from_probabilities(foreground * 0.4).max() == 0  # below threshold


probability_maps = arrays(
    np.float32,
    (14, 14, 2),
    elements=st.floats(0.0, 1.0, width=32),
)


@settings(max_examples=40, deadline=None, database=None)
@given(probabilities=probability_maps)
def test_property_every_foreground_pixel_is_in_exactly_one_connected_nucleus(probabilities):
    labels = labels_from_probabilities(probabilities, min_size=1)
    foreground = probabilities[..., 0] > 0.5
    np.testing.assert_array_equal(labels > 0, foreground)
    assert_consecutive_int32(labels)
    for value in range(1, int(labels.max()) + 1):
        assert ndi.label(labels == value, structure=FOUR_CONNECTED)[1] == 1


# --------------------------------------------------------------------------------------------
# labels_from_mask
# --------------------------------------------------------------------------------------------


def test_touching_discs_from_mask_become_two_nuclei():
    truth = touching_discs()
    labels = labels_from_mask(truth > 0)
    assert labels.max() == 2
    assert best_iou(truth == 1, labels) > 0.85
    assert best_iou(truth == 2, labels) > 0.85
    assert_consecutive_int32(labels)


@pytest.mark.parametrize("rotation", [0.0, 0.4, 1.0])
def test_elongated_nucleus_from_mask_stays_one(rotation):
    rows, columns = np.mgrid[:100, :100] - 50.0
    along = rows * np.cos(rotation) + columns * np.sin(rotation)
    across = -rows * np.sin(rotation) + columns * np.cos(rotation)
    mask = (along / 30.0) ** 2 + (across / 10.0) ** 2 <= 1.0
    labels = labels_from_mask(mask)
    assert labels.max() == 1
    np.testing.assert_array_equal(labels > 0, mask)


def test_rectangle_with_flat_ridge_from_mask_stays_one():
    mask = np.zeros((60, 100), dtype=bool)
    mask[20:40, 10:90] = True
    assert labels_from_mask(mask).max() == 1


def test_mask_edge_cases():
    assert labels_from_mask(np.zeros((20, 20), dtype=bool)).max() == 0
    full = labels_from_mask(np.ones((20, 20), dtype=bool))
    assert full.dtype == np.int32
    assert np.all(full == 1)
    small = np.zeros((20, 20), dtype=np.uint8)
    small[2:5, 2:5] = 7  # any non-zero value is foreground
    assert labels_from_mask(small, min_size=9).max() == 1
    assert labels_from_mask(small, min_size=10).max() == 0


@settings(max_examples=30, deadline=None, database=None)
@given(mask=arrays(bool, (16, 16)))
def test_property_mask_pixels_are_all_labelled(mask):
    labels = labels_from_mask(mask, min_size=1)
    np.testing.assert_array_equal(labels > 0, mask)
    assert_consecutive_int32(labels)
    for value in range(1, int(labels.max()) + 1):
        assert ndi.label(labels == value, structure=FOUR_CONNECTED)[1] == 1


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "argument"),
    [
        (lambda: labels_from_probabilities(np.zeros((4, 4, 4))), InputError, "probabilities"),
        (lambda: labels_from_probabilities(np.zeros((2, 4, 4, 2))), InputError, "probabilities"),
        (lambda: labels_from_probabilities(np.zeros(5)), InputError, "probabilities"),
        (lambda: labels_from_probabilities([[0.5]]), InputTypeError, "probabilities"),
        (lambda: labels_from_probabilities(np.zeros((0, 4, 2))), InputError, "probabilities"),
        (
            lambda: labels_from_probabilities(np.full((4, 4, 2), np.nan)),
            InputError,
            "probabilities",
        ),
        (lambda: labels_from_probabilities(np.zeros((4, 4, 2)), threshold=2), InputError, "thr"),
        (
            lambda: labels_from_probabilities(np.zeros((4, 4, 2)), min_size=-1),
            InputError,
            "min_size",
        ),
        (
            lambda: labels_from_probabilities(np.zeros((4, 4, 2)), min_marker_size=1.5),
            InputTypeError,
            "min_marker_size",
        ),
        (
            lambda: labels_from_probabilities(np.zeros((4, 4, 3)), peak_height=1.5),
            InputError,
            "peak_height",
        ),
        (lambda: labels_from_mask(np.zeros((4, 4, 1))), InputError, "mask"),
        (lambda: labels_from_mask(np.zeros((4, 4)), min_distance=0), InputError, "min_distance"),
    ],
)
def test_invalid_inputs_raise_errors_naming_the_argument(call, error, argument):
    with pytest.raises(error, match=argument):
        call()
