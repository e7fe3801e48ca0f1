"""Tests of nuclei_core.io.render: outlines, overlays and error overlays."""

from __future__ import annotations

import numpy as np
import pytest

from nuclei_core.errors import InputError, InputTypeError
from nuclei_core.io.render import ERROR_COLOURS, NUCLEUS_PALETTE, error_overlay, outlines, overlay

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
