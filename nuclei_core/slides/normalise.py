"""One intensity normalisation for a whole slide, applied to each of its tiles.

:func:`slide_normalisation` finds the slide's percentile limits and whether it is
inverted (bright background) on a sample of the slide (a downsampled pyramid level, or a
regular grid of level 0), with the rules of
:func:`nuclei_core.segmentation.preprocess.to_model_input`; :func:`model_input` scales a
tile with them (:func:`~nuclei_core.segmentation.preprocess.to_model_input` given the
limits and the inversion), so that all tiles look alike to the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nuclei_core.io.imread import fill_non_finite
from nuclei_core.segmentation.preprocess import (
    inverts_for_model,
    percentile_limits,
    to_model_input,
)
from nuclei_core.slides.reader import SlideReader

__all__ = ["Normalisation", "model_input", "slide_normalisation"]

SAMPLE_PIXELS = 1_000_000
"""About this many pixels are sampled for the slide's intensity percentiles."""


@dataclass(frozen=True)
class Normalisation:
    """The slide's intensity limits and whether it is inverted (bright background).

    :func:`model_input` scales every region between ``low`` and ``high`` as
    :func:`nuclei_core.segmentation.preprocess.to_model_input` scales a whole image, and inverts it
    when ``invert`` is set.
    """

    low: float
    high: float
    invert: bool


def _sample(slide: SlideReader) -> np.ndarray:
    """About :data:`SAMPLE_PIXELS` pixels of the slide on a regular grid.

    The smallest pyramid level with at least that many pixels when there is one; else
    every ``step``-th row and column of level 0 (the grid
    :func:`nuclei_core.segmentation.preprocess.percentile_limits` samples), read in bands
    of rows.
    """
    for index in range(len(slide.levels) - 1, 0, -1):
        height, width = slide.levels[index]
        if height * width >= SAMPLE_PIXELS:
            return slide.read(0, 0, height, width, level=index)
    height, width = slide.shape
    step = max(1, int(np.sqrt(height * width / SAMPLE_PIXELS)))
    band = step * max(1, 1024 // step)
    parts = [
        slide.read(top, 0, min(top + band, height), width)[::step, ::step]
        for top in range(0, height, band)
    ]
    return np.concatenate(parts)


def slide_normalisation(slide: SlideReader) -> Normalisation:
    """Intensity limits (1st and 99.8th percentiles) and inversion for the whole slide.

    Estimated on a sample (a downsampled pyramid level, or a regular grid of level 0),
    with the rules of :func:`nuclei_core.segmentation.preprocess.to_model_input`: the slide is
    inverted when the median of its normalised grey is above 0.5 (grey) or above
    :data:`~nuclei_core.segmentation.preprocess.COLOUR_INVERT_MEDIAN` (colour).  For an image of up
    to :data:`SAMPLE_PIXELS` pixels the sample is the whole image, and the limits are
    exactly those of the whole-image path.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import tifffile
    >>> from nuclei_core.slides.reader import open_slide
    >>> target = Path(tempfile.mkdtemp()) / "dark.tif"
    >>> tifffile.imwrite(target, np.tile(np.arange(100, dtype=np.uint8), (50, 1)))
    >>> with open_slide(target) as slide:
    ...     limits = slide_normalisation(slide)
    >>> round(limits.low, 2), round(limits.high, 2), limits.invert
    (0.99, 99.0, False)
    """
    sample, _ = fill_non_finite(_sample(slide))
    low, high = percentile_limits(sample)
    return Normalisation(low, high, inverts_for_model(sample))


def model_input(region: np.ndarray, normalisation: Normalisation) -> np.ndarray:
    """A region of a slide as the model's input: float32 ``(h, w, 3)`` in [0, 1], nuclei bright.

    Examples
    --------
    >>> x = model_input(np.array([[0, 50, 100]], np.uint8), Normalisation(0.0, 100.0, True))
    >>> x.shape, x[0, :, 0].tolist()
    ((1, 3, 3), [1.0, 0.5, 0.0])
    """
    limits = (normalisation.low, normalisation.high)
    return to_model_input(region, limits=limits, invert=normalisation.invert)
