"""One normalisation for a whole slide (``nuclei_core.slides.normalise``): sampled from a
smaller pyramid level, equal to the whole-image one for small images, applied to each tile."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from support import write_tiled

from nuclei_core.segmentation.preprocess import to_model_input
from nuclei_core.slides.normalise import Normalisation, model_input, slide_normalisation
from nuclei_core.slides.reader import open_slide


def test_a_pyramid_is_read_at_level_0_and_normalised_from_a_smaller_level(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (2560, 2048), dtype=np.uint8)
    smaller = image[::2, ::2] // 2  # a darker level 1 tells which level was sampled
    source = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(source, bigtiff=True) as writer:
        writer.write(image, tile=(256, 256), subifds=1, metadata={"axes": "YX"})
        writer.write(smaller, tile=(256, 256), subfiletype=1)
    with open_slide(source) as slide:
        assert slide.shape == (2560, 2048) and slide.levels == [(2560, 2048), (1280, 1024)]
        assert not slide.colour
        np.testing.assert_array_equal(slide.read(300, 0, 364, 70), image[300:364, :70])
        limits = slide_normalisation(slide)
    assert limits.high == pytest.approx(np.percentile(smaller.astype(np.float32), 99.8))


def test_global_normalisation_equals_the_whole_image_one_for_small_images(crowded, tmp_path):
    image, _ = crowded
    inverted = 255 - image  # a bright background is inverted
    source = write_tiled(tmp_path / "bright.tif", inverted)
    with open_slide(source) as slide:
        limits = slide_normalisation(slide)
    assert limits.invert
    np.testing.assert_allclose(model_input(inverted, limits), to_model_input(inverted), atol=1e-6)
    # One tile of the slide is scaled as the whole image is, not by its own percentiles.
    part = inverted[:100, :100]
    expected = to_model_input(inverted)[:100, :100]
    np.testing.assert_allclose(model_input(part, limits), expected, atol=1e-6)


def test_model_input_of_a_flat_slide_is_zero():
    assert model_input(np.full((4, 4), 9, np.uint8), Normalisation(9.0, 9.0, False)).max() == 0
