"""Tests of nuclei_core.segmentation.classical (the baselines without learning) on generated
data."""

from __future__ import annotations

import numpy as np
import pytest
from support import assert_consecutive_int32, disc

from nuclei_core.errors import InputError, InputTypeError
from nuclei_core.segmentation.classical import hematoxylin_labels, otsu_labels

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
# hematoxylin_labels
# --------------------------------------------------------------------------------------------


def h_and_e_tile(seed=0):
    """uint8 H&E-like tile: pale pink background, a darker pink stroma block, purple nuclei
    (four apart, two touching); returns the tile and the nucleus centres."""
    rng = np.random.default_rng(seed)
    shape = (120, 160)
    image = np.empty((*shape, 3))
    image[:] = (236, 190, 214)  # eosin-pale background
    image[10:110, 60:150] = (214, 128, 176)  # stroma: more eosin, no hematoxylin
    centres = [(25, 25), (30, 90), (60, 125), (90, 40), (95, 92), (95, 108)]
    for centre in centres:
        image[disc(shape, centre, 8)] = (92, 60, 150)  # hematoxylin-rich nuclei
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), centres


@pytest.mark.parametrize("seed", [0, 1])
def test_hematoxylin_finds_the_nuclei_of_an_h_and_e_tile(seed):
    image, centres = h_and_e_tile(seed)
    labels = hematoxylin_labels(image)
    assert_consecutive_int32(labels)
    assert labels.max() == len(centres)
    assert sorted(int(labels[centre]) for centre in centres) == list(range(1, len(centres) + 1))
    assert labels[60, 100] == 0  # stroma is not a nucleus
    # The grey-level baseline merges nuclei with the stroma; the stain channel does not.
    assert otsu_labels(255 - image.mean(axis=-1)).max() < len(centres)


def test_hematoxylin_constant_image_gives_empty_labels():
    labels = hematoxylin_labels(np.full((30, 40, 3), 200, np.uint8))
    assert labels.shape == (30, 40) and labels.dtype == np.int32 and labels.max() == 0


def test_hematoxylin_refuses_greyscale_naming_image():
    with pytest.raises(InputError, match=r"image must be an RGB image \(H, W, 3\)") as raised:
        hematoxylin_labels(np.zeros((30, 40), np.uint8))
    assert "(30, 40)" in str(raised.value)


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "argument"),
    [
        (lambda: otsu_labels(np.zeros((4, 4, 2))), InputError, "image"),
        (lambda: otsu_labels(np.zeros((4, 4), dtype=complex)), InputTypeError, "image"),
        (lambda: hematoxylin_labels(np.zeros((4, 4, 2))), InputError, "image"),
        (lambda: hematoxylin_labels(np.full((4, 4, 3), np.nan)), InputError, "image"),
        (
            lambda: hematoxylin_labels(np.zeros((4, 4, 3)), min_distance=0),
            InputError,
            "min_distance",
        ),
    ],
)
def test_invalid_inputs_raise_errors_naming_the_argument(call, error, argument):
    with pytest.raises(error, match=argument):
        call()
