"""Tests of nuclei_core.instances on generated data only."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from nuclei_core.errors import InputError, InputTypeError, StorageError
from nuclei_core.instances import (
    ERROR_COLOURS,
    MEASUREMENT_COLUMNS,
    NUCLEUS_PALETTE,
    error_overlay,
    labels_from_mask,
    labels_from_probabilities,
    measure_nuclei,
    otsu_labels,
    outlines,
    overlay,
    write_measurements_csv,
)

FOUR_CONNECTED = ndi.generate_binary_structure(2, 1)


# --------------------------------------------------------------------------------------------
# Generated data
# --------------------------------------------------------------------------------------------


def disc(shape, centre, radius):
    """Boolean disc of ``radius`` around ``centre``."""
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 <= radius**2


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


def assert_consecutive_int32(labels):
    """The label image is int32 and its nuclei are numbered 1..N without gaps."""
    assert labels.dtype == np.int32
    values = np.unique(labels)
    nuclei = values[values > 0]
    assert nuclei.tolist() == list(range(1, nuclei.size + 1))
    assert values.min() >= 0


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
# otsu_labels
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [None, 3])
def test_otsu_finds_separated_blobs_on_noise(channels):
    rng = np.random.default_rng(1)
    shape = (120, 160)
    centres = [(20, 20), (20, 80), (30, 135), (80, 40), (95, 110)]
    image = rng.normal(0.1, 0.03, size=shape)
    for centre in centres:
        image[disc(shape, centre, 9)] = rng.normal(0.8, 0.03, size=disc(shape, centre, 9).sum())
    image = np.clip(image, 0.0, 1.0)
    if channels:
        image = np.stack([image] * channels, axis=-1)
    labels = otsu_labels(image)
    assert_consecutive_int32(labels)
    assert labels.max() == len(centres)
    for centre in centres:
        assert labels[centre] > 0


def test_otsu_constant_image_gives_empty_labels():
    for image in (np.full((30, 40), 0.3), np.zeros((30, 40, 3), dtype=np.uint8)):
        labels = otsu_labels(image)
        assert labels.shape == (30, 40)
        assert labels.dtype == np.int32
        assert labels.max() == 0


def test_otsu_fills_holes():
    image = np.zeros((40, 40))
    image[disc(image.shape, (20, 20), 12)] = 1.0
    image[disc(image.shape, (20, 20), 3)] = 0.0  # dark hole in the nucleus
    labels = otsu_labels(image)
    assert labels.max() == 1
    assert labels[20, 20] == 1


# --------------------------------------------------------------------------------------------
# measure_nuclei and CSV
# --------------------------------------------------------------------------------------------


def hand_made_labels():
    labels = np.zeros((40, 40), dtype=np.int32)
    labels[2:6, 3:9] = 1  # 4 x 6 rectangle
    labels[disc(labels.shape, (25, 20), 6)] = 2  # disc centred on a pixel
    return labels


def test_measurements_of_hand_made_shapes():
    labels = hand_made_labels()
    columns = np.tile(np.arange(40, dtype=np.float64), (40, 1))
    table = measure_nuclei(labels, intensity_image=columns)
    assert list(table.columns) == [*MEASUREMENT_COLUMNS, "mean_intensity", "max_intensity"]
    rectangle, circle = table.iloc[0], table.iloc[1]
    assert table["label"].tolist() == [1, 2]
    assert rectangle["area"] == 24
    assert (rectangle["centroid_y"], rectangle["centroid_x"]) == (3.5, 5.5)
    assert rectangle["mean_intensity"] == 5.5  # mean column index 3..8
    assert rectangle["max_intensity"] == 8.0
    assert rectangle["solidity"] == 1.0
    assert rectangle["equivalent_diameter"] == pytest.approx(np.sqrt(4 * 24 / np.pi))
    disc_area = disc(labels.shape, (25, 20), 6).sum()
    assert circle["area"] == disc_area
    assert (circle["centroid_y"], circle["centroid_x"]) == (25.0, 20.0)
    assert circle["mean_intensity"] == 20.0
    assert circle["eccentricity"] == pytest.approx(0.0, abs=1e-6)
    assert circle["perimeter"] == pytest.approx(2 * np.pi * 6, rel=0.15)


def test_measurements_use_the_mean_of_the_channels_and_pixel_size():
    labels = hand_made_labels()
    rgb = np.zeros((40, 40, 3), dtype=np.uint8)
    rgb[..., 0] = 30
    rgb[..., 1] = 60
    rgb[..., 2] = 90
    table = measure_nuclei(labels, intensity_image=rgb, pixel_size=0.5)
    assert table["mean_intensity"].tolist() == [60.0, 60.0]
    np.testing.assert_allclose(table["area_um2"], table["area"] * 0.25)
    np.testing.assert_allclose(table["equivalent_diameter_um"], table["equivalent_diameter"] * 0.5)
    assert "mean_intensity" not in measure_nuclei(labels).columns
    assert "area_um2" not in measure_nuclei(labels).columns


@pytest.mark.parametrize("with_extras", [False, True])
def test_empty_labels_give_an_empty_table_with_columns(with_extras):
    labels = np.zeros((10, 10), dtype=np.int32)
    if with_extras:
        table = measure_nuclei(labels, intensity_image=np.ones((10, 10)), pixel_size=1.0)
        expected = [*MEASUREMENT_COLUMNS, "mean_intensity", "max_intensity"]
        expected += ["area_um2", "equivalent_diameter_um"]
    else:
        table = measure_nuclei(labels)
        expected = list(MEASUREMENT_COLUMNS)
    assert isinstance(table, pd.DataFrame)
    assert len(table) == 0
    assert list(table.columns) == expected


def test_csv_round_trip(tmp_path):
    table = measure_nuclei(hand_made_labels(), intensity_image=np.ones((40, 40)), pixel_size=0.3)
    target = tmp_path / "measurements.csv"
    target.write_text("old content")
    written = write_measurements_csv(table, target)
    assert written == target
    pd.testing.assert_frame_equal(pd.read_csv(target), table)
    assert os.listdir(tmp_path) == ["measurements.csv"]  # no temporary file left
    write_measurements_csv(table, str(tmp_path / "again.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "again.csv"), table)


def test_csv_write_failure_raises_storage_error_naming_the_path(tmp_path):
    table = pd.DataFrame({"label": [1]})
    missing = tmp_path / "no such folder" / "m.csv"
    with pytest.raises(StorageError, match="no such folder"):
        write_measurements_csv(table, missing)
    folder_in_the_way = tmp_path / "taken.csv"
    folder_in_the_way.mkdir()
    with pytest.raises(StorageError, match="taken.csv"):
        write_measurements_csv(table, folder_in_the_way)
    assert os.listdir(tmp_path) == ["taken.csv"]  # the temporary file was removed


def test_csv_rejects_wrong_types(tmp_path):
    with pytest.raises(InputTypeError, match="table"):
        write_measurements_csv({"label": [1]}, tmp_path / "m.csv")
    with pytest.raises(InputTypeError, match="path"):
        write_measurements_csv(pd.DataFrame(), 3)


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------


def test_outlines_are_the_inner_rim():
    labels = np.zeros((8, 12), dtype=np.int32)
    labels[2:6, 2:6] = 1
    labels[2:6, 6:10] = 2
    rim = outlines(labels)
    assert rim.dtype == bool
    assert rim[2, 2] and rim[3, 5] and rim[3, 6]  # outer edge and the shared edge
    assert not rim[3, 3] and not rim[0, 0]
    assert rim.sum() == 2 * 12


def test_overlay_fills_and_outlines_in_palette_colours():
    image = np.full((20, 30, 3), 100, dtype=np.uint8)
    labels = np.zeros((20, 30), dtype=np.int32)
    labels[2:10, 2:10] = 1
    labels[2:10, 10:18] = 2
    labels[12:18, 2:8] = 8  # wraps around the 7 colours, back to the first
    before = image.copy()
    drawn = overlay(image, labels, alpha=0.5)
    np.testing.assert_array_equal(image, before)
    assert drawn.shape == (20, 30, 3)
    assert drawn.dtype == np.uint8
    assert drawn[2, 2].tolist() == list(NUCLEUS_PALETTE[0])  # outline: opaque
    assert drawn[5, 9].tolist() == list(NUCLEUS_PALETTE[0])  # shared edge, first nucleus
    assert drawn[5, 10].tolist() == list(NUCLEUS_PALETTE[1])  # shared edge, second nucleus
    assert drawn[12, 2].tolist() == list(NUCLEUS_PALETTE[0])
    expected_fill = np.rint(0.5 * 100 + 0.5 * np.array(NUCLEUS_PALETTE[0])).tolist()
    assert drawn[5, 5].tolist() == expected_fill
    assert drawn[0, 0].tolist() == [100, 100, 100]  # background untouched
    assert drawn[19, 29].tolist() == [100, 100, 100]


def test_overlay_single_colour_and_grey_image():
    grey = np.full((10, 10), 50, dtype=np.uint8)
    labels = np.zeros((10, 10), dtype=np.int32)
    labels[2:8, 2:8] = 3
    drawn = overlay(grey, labels, colour=(255, 0, 255), alpha=0.0)
    assert drawn.shape == (10, 10, 3)
    assert np.all(drawn[outlines(labels)] == (255, 0, 255))
    assert drawn[4, 4].tolist() == [50, 50, 50]  # alpha 0: fill invisible
    opaque = overlay(grey, labels, colour=(255, 0, 255), alpha=1.0)
    assert opaque[4, 4].tolist() == [255, 0, 255]


def test_error_overlay_uses_the_legend_colours():
    image = np.zeros((12, 30, 3), dtype=np.uint8)
    error_map = np.zeros((12, 30), dtype=np.uint8)
    error_map[2:10, 1:9] = 1
    error_map[2:10, 11:19] = 2
    error_map[2:10, 21:29] = 3
    drawn = error_overlay(image, error_map, alpha=0.5)
    assert drawn.shape == (12, 30, 3)
    assert drawn.dtype == np.uint8
    for code, column in ((1, 1), (2, 11), (3, 21)):
        colour = np.array(ERROR_COLOURS[code][1])
        assert drawn[2, column].tolist() == colour.tolist()  # outline
        assert drawn[5, column + 3].tolist() == np.rint(0.5 * colour).tolist()  # fill
    assert drawn[0, 0].tolist() == [0, 0, 0]
    assert [ERROR_COLOURS[code][0] for code in (1, 2, 3)] == [
        "true positive",
        "false positive",
        "false negative",
    ]
    assert len({rgb for _, rgb in ERROR_COLOURS.values()}) == 3


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "argument"),
    [
        (lambda: labels_from_probabilities(np.zeros((4, 4, 3))), InputError, "probabilities"),
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
        (lambda: labels_from_mask(np.zeros((4, 4, 1))), InputError, "mask"),
        (lambda: labels_from_mask(np.zeros((4, 4)), min_distance=0), InputError, "min_distance"),
        (lambda: otsu_labels(np.zeros((4, 4, 2))), InputError, "image"),
        (lambda: otsu_labels(np.zeros((4, 4), dtype=complex)), InputTypeError, "image"),
        (lambda: measure_nuclei(np.zeros((4, 4))), InputTypeError, "labels"),
        (lambda: measure_nuclei(np.zeros((4, 4, 1), dtype=int)), InputError, "labels"),
        (lambda: measure_nuclei(np.full((4, 4), -1)), InputError, "labels"),
        (
            lambda: measure_nuclei(np.zeros((4, 4), dtype=int), intensity_image=np.zeros((4, 5))),
            InputError,
            "intensity_image",
        ),
        (
            lambda: measure_nuclei(np.zeros((4, 4), dtype=int), pixel_size=0),
            InputError,
            "pixel_size",
        ),
        (lambda: outlines(np.zeros((4, 4), dtype=bool)), InputTypeError, "labels"),
        (
            lambda: overlay(np.zeros((4, 4, 3)), np.zeros((4, 4), dtype=int)),
            InputTypeError,
            "image_rgb_uint8",
        ),
        (
            lambda: overlay(np.zeros((4, 4, 4), dtype=np.uint8), np.zeros((4, 4), dtype=int)),
            InputError,
            "image_rgb_uint8",
        ),
        (
            lambda: overlay(np.zeros((4, 5, 3), dtype=np.uint8), np.zeros((4, 4), dtype=int)),
            InputError,
            "image_rgb_uint8",
        ),
        (
            lambda: overlay(
                np.zeros((4, 4, 3), dtype=np.uint8), np.zeros((4, 4), dtype=int), colour=(1, 2)
            ),
            InputTypeError,
            "colour",
        ),
        (
            lambda: overlay(np.zeros((4, 4, 3), dtype=np.uint8), np.zeros((4, 4), int), alpha=2),
            InputError,
            "alpha",
        ),
        (
            lambda: error_overlay(np.zeros((4, 4, 3), dtype=np.uint8), np.full((4, 4), 4)),
            InputError,
            "error_map",
        ),
    ],
)
def test_invalid_inputs_raise_errors_naming_the_argument(call, error, argument):
    with pytest.raises(error, match=argument):
        call()


def test_error_types_are_builtin_compatible():
    with pytest.raises(ValueError):
        labels_from_probabilities(np.zeros((4, 4, 3)))
    with pytest.raises(TypeError):
        measure_nuclei(np.zeros((4, 4)))
