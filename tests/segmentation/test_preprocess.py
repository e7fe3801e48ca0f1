"""Tests of nuclei_core.segmentation.preprocess: normalisation, model input, display, image
kinds."""

from __future__ import annotations

import numpy as np
import pytest

from nuclei_core.errors import InputError
from nuclei_core.segmentation import preprocess

# ============================================================================== intensities


def test_16bit_with_one_hot_pixel_is_not_black():
    image = np.full((64, 64), 100, np.uint16)
    image[16:40, 16:40] = 1000  # the nucleus
    image[2, 2] = 65535  # one hot pixel
    model_input = preprocess.to_model_input(image)
    nucleus, background = model_input[20:36, 20:36], model_input[50:, 50:]
    assert float(np.median(nucleus)) > 0.9  # min-max scaling would give 0.014
    assert float(background.max()) < 0.05


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8),
        np.random.default_rng(0).integers(0, 4096, (20, 30), dtype=np.uint16),
        np.random.default_rng(0).normal(0, 50, (20, 30)).astype(np.float32),
        np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8),
        np.full((20, 30), 7, np.uint8),
    ],
    ids=["uint8", "uint16", "float32", "rgb", "constant"],
)
def test_to_model_input_shape_dtype_range(image):
    model_input = preprocess.to_model_input(image)
    assert model_input.shape == (20, 30, 3)
    assert model_input.dtype == np.float32
    assert np.isfinite(model_input).all()
    assert model_input.min() >= 0.0 and model_input.max() <= 1.0
    if image.ndim == 2:  # grey is repeated over the three channels
        np.testing.assert_array_equal(model_input[..., 0], model_input[..., 2])
    if image.min() != image.max():
        assert model_input.max() - model_input.min() > 0.9  # stretched to [0, 1]


def test_bright_background_is_inverted(make_sample):
    dark_image, labels = make_sample((64, 64), seed=3)
    bright_image, _ = make_sample((64, 64), seed=3, bright_background=True)
    inside, outside = labels > 0, labels == 0
    for image in (dark_image, bright_image):
        grey = preprocess.to_model_input(image)[..., 0]
        assert grey[inside].mean() > 0.6 and grey[outside].mean() < 0.2
    np.testing.assert_allclose(
        preprocess.to_model_input(bright_image), preprocess.to_model_input(dark_image), atol=0.05
    )


def test_dense_stained_tissue_is_inverted_like_sparse_tissue():
    # A dense H&E tile: purple nuclei on 40 % of it, pink tissue on the rest, white only
    # in a gap, so its median grey is below 0.5; nuclei must still come out bright.
    rng = np.random.default_rng(0)
    nuclei = rng.random((64, 64)) < 0.4
    image = np.empty((64, 64, 3), np.uint8)
    image[nuclei] = (70, 30, 120)
    image[~nuclei] = (150, 80, 130)
    nuclei[:2] = False
    image[:2] = 255
    assert np.median(preprocess.normalise(image).mean(axis=-1)) < 0.5
    grey = preprocess.to_model_input(image).mean(axis=-1)
    assert grey[nuclei].mean() > grey[~nuclei].mean() + 0.2


def test_colour_fluorescence_is_not_inverted():
    image = np.zeros((64, 64, 3), np.uint8)
    image[20:40, 20:40] = (30, 60, 250)  # a blue nucleus on black
    grey = preprocess.to_model_input(image).mean(axis=-1)
    assert grey[20:40, 20:40].mean() > grey[:10].mean() + 0.3


def test_image_kind(make_sample):
    dark, _ = make_sample((64, 64), seed=5)
    bright, _ = make_sample((64, 64), seed=5, bright_background=True)
    assert preprocess.image_kind(dark) == "fluorescence"
    assert preprocess.image_kind(bright) == "brightfield"
    assert preprocess.image_kind(np.dstack([dark] * 3)) == "fluorescence"  # grey stored as RGB
    stained = np.dstack([bright, (bright * 0.6).astype(np.uint8), (bright * 0.85).astype(np.uint8)])
    assert preprocess.image_kind(stained) == "stained"
    assert preprocess.image_kind(dark.astype(np.uint16) * 250) == "fluorescence"


def test_to_display_rgb(make_sample):
    image, _ = make_sample((32, 48), seed=2)
    display = preprocess.to_display_rgb(image.astype(np.uint16) * 200)
    assert display.shape == (32, 48, 3) and display.dtype == np.uint8
    assert display.max() == 255 and display.min() == 0


def test_to_model_input_refuses_wrong_shapes():
    with pytest.raises(InputError, match="shape"):
        preprocess.to_model_input(np.zeros((4, 4, 2)))
    with pytest.raises(InputError, match="shape"):
        preprocess.to_model_input(np.zeros((2, 4, 4, 3)))
