"""One call from an image to counted, measured nuclei.

This is what the app, the CLI and the benchmark use:

* :func:`predict_image` runs the network (the expensive part);
* :func:`nuclei_from_probabilities` thresholds, splits and measures (cheap,
  re-run alone when only the threshold or minimum size changes);
* :func:`segment_image` does both.

With an expected nucleus diameter (``SegmentOptions.diameter``), the network sees the
image rescaled so that its nuclei have the model's training size
(:mod:`nuclei_core.segmentation.diameter`); the probabilities come back at the image's size, the
nuclei are found at the model's size and mapped back (:func:`labels_at_model_scale`),
so measurements are always in the image's own pixels.  ``diameter="auto"`` estimates
it from the image (:func:`estimate_diameter`): a first pass at the image's size, the
median diameter of the nuclei it found, and a second pass at that size when it differs
from the model's by more than :data:`AUTO_TOLERANCE`.

Scoring against ground truth is in :mod:`nuclei_core.evaluation.evaluate`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from nuclei_core.segmentation.diameter import (
    SCALE_RANGE,
    labels_to_shape,
    largest_scale,
    median_diameter,
    resize_image,
    resize_to,
)
from nuclei_core.segmentation.measure import measure_nuclei
from nuclei_core.segmentation.options import AUTO, SegmentOptions
from nuclei_core.segmentation.postprocess import keep_confident, labels_from_probabilities
from nuclei_core.segmentation.preprocess import image_kind, to_model_input

__all__ = [
    "Segmentation",
    "SizedPrediction",
    "estimate_diameter",
    "find_nuclei",
    "nuclei_from_probabilities",
    "predict_image",
    "predict_with_size",
    "segment_image",
]

AUTO_TOLERANCE = 0.1
"""An estimated diameter within this fraction of the model's is segmented as it is."""
AUTO_MIN_NUCLEI = 5
"""With fewer nuclei found in the first pass, the image is segmented as it is."""
AUTO_MAX_GROWTH = 3.0
"""A second pass that finds more than this many times the first's nuclei is not used: the
first pass had cut huge nuclei into small fragments of texture, and enlarging the image
for those only multiplies the fragments (seen on DSB images shown at 2x, nuclei of 85 px)."""

_DEFAULTS = SegmentOptions()  # frozen, so one instance serves as every argument default
# The levels at which the size estimate finds its nuclei (``found``), reused where they apply:
_FOUND_AT = {name: getattr(_DEFAULTS, name) for name in ("threshold", "min_size", "peak_height")}


@dataclass
class Segmentation:
    """Everything found in one image, as :func:`segment_image` returns it.

    ``seconds`` holds the time of the network pass (``"predict"``) and of the
    instances and measurements (``"instances"``).
    """

    probabilities: np.ndarray  # float32 (H, W, 2): foreground, boundary
    labels: np.ndarray  # int32 (H, W): 0 background, 1..N nuclei
    table: pd.DataFrame  # one row per nucleus
    kind: str  # fluorescence, brightfield or stained
    seconds: dict = field(default_factory=dict)
    diameter: float | None = None  # the expected diameter used (given or estimated), pixels

    @property
    def count(self) -> int:
        return int(self.labels.max()) if self.labels.size else 0

    @property
    def mask(self) -> np.ndarray:
        """The semantic foreground mask (what the original project showed)."""
        return self.labels > 0


def predict_image(
    model,
    image,
    options: SegmentOptions = _DEFAULTS,
    progress=None,
    *,
    pixel_size: float | None = None,
):
    """The network's probabilities for a raw image: ``float32 (H, W, 2)``, foreground and boundary.

    Parameters
    ----------
    model : keras.Model
        A segmentation network (:func:`nuclei_core.network.model.load_model`).
    image : ndarray
        As :func:`nuclei_core.io.imread.read_image` returns it; normalised here.
    options : SegmentOptions
        Test-time flips, tile size and the expected nucleus diameter: with one, the
        network sees the image rescaled by ``options.scale`` and its probabilities
        come back at the image's size.
    progress : callable, optional
        ``progress(done, total)`` after each tile.
    pixel_size : float, optional
        µm per pixel, for ``options.diameter_um``.

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig, build_unet
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> predict_image(model, np.zeros((20, 30), np.uint8)).shape
    (20, 30, 2)
    >>> predict_image(model, np.zeros((20, 30), np.uint8), SegmentOptions(diameter=8.0)).shape
    (20, 30, 2)
    """
    from nuclei_core.network.predict import predict_probabilities

    options = options.in_pixels(pixel_size)
    model_input = to_model_input(image)
    shape = model_input.shape[:2]
    if options.scale != 1.0:
        model_input = resize_image(model_input, options.scale)
    probabilities = predict_probabilities(
        model,
        model_input,
        tile_size=options.tile_size,
        tta=options.tta,
        progress=progress,
    )
    return resize_to(probabilities, shape)


def estimate_diameter(probabilities, model_diameter: float) -> float | None:
    """The nucleus diameter (pixels) of an image, from its probabilities at its own size.

    The median equivalent diameter of the nuclei found with the default threshold and
    minimum size (:func:`~nuclei_core.segmentation.diameter.median_diameter`), kept within the sizes
    a model trained at ``model_diameter`` takes. None means "segment the image as it
    is": fewer than :data:`AUTO_MIN_NUCLEI` nuclei, or a diameter within about
    :data:`AUTO_TOLERANCE` (10 %) of the model's.

    On the 89 DSB 2018 validation images of the default model, shown at 0.5x, 1x and 2x,
    segmenting at the estimated diameter raised the mean DSB score from 0.463, 0.565 and
    0.493 to 0.498, 0.577 and 0.540; the true diameter gives 0.505, 0.579 and 0.552
    (``python -m bench.diameter --split val``).

    Examples
    --------
    >>> probabilities = np.zeros((64, 64, 2), np.float32)
    >>> for top in range(4, 60, 15):
    ...     for left in range(4, 60, 15):
    ...         probabilities[top : top + 10, left : left + 10, 0] = 0.9
    >>> round(estimate_diameter(probabilities, 20.0), 1)
    11.3
    >>> estimate_diameter(probabilities, 11.0) is None
    True
    """
    return _diameter_of(labels_from_probabilities(probabilities), model_diameter)


def _diameter_of(labels: np.ndarray, model_diameter: float) -> float | None:
    """:func:`estimate_diameter` from the nuclei already found at the image's size (never one
    that enlarges the image beyond :func:`largest_scale`)."""
    if labels.max() < AUTO_MIN_NUCLEI:
        return None
    low, high = model_diameter / largest_scale(labels.shape), model_diameter / SCALE_RANGE[0]
    diameter = float(np.clip(median_diameter(labels), low, high))
    if abs(math.log(diameter / model_diameter)) <= AUTO_TOLERANCE:
        return None
    return diameter


class SizedPrediction(NamedTuple):
    """What :func:`predict_with_size` returns."""

    probabilities: np.ndarray  # float32 (H, W, 2), at the image's size
    options: SegmentOptions  # with the diameter used
    found: np.ndarray | None  # the size estimate's nuclei (None: a given diameter)


def predict_with_size(
    model,
    image,
    options: SegmentOptions = _DEFAULTS,
    progress=None,
    *,
    pixel_size: float | None = None,
) -> SizedPrediction:
    """:func:`predict_image`, resolving ``diameter="auto"`` on the way.

    Returns
    -------
    SizedPrediction
        ``probabilities`` ``float32 (H, W, 2)``; ``options`` with the diameter used: the
        estimated one (:func:`estimate_diameter`, which costs a second network pass at that
        size), or None for ``"auto"`` when there is no estimate or the second pass found
        more than :data:`AUTO_MAX_GROWTH` times the first's nuclei (then the first pass is
        the result); given diameters (pixels or µm) as they were, in pixels; ``found``, the
        nuclei the estimate found, which :func:`nuclei_from_probabilities` reuses at the
        default threshold and minimum size instead of finding them again.

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig, build_unet
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> probabilities, used, found = predict_with_size(model, np.zeros((32, 32), np.uint8),
    ...                                                SegmentOptions(diameter="auto"))
    >>> probabilities.shape, used.diameter, found.shape
    ((32, 32, 2), None, (32, 32))
    """
    return SizedPrediction(
        *_predict_with_size(model, image, options.in_pixels(pixel_size), progress)
    )


def _predict_with_size(model, image, options: SegmentOptions, progress):
    """:func:`predict_with_size` for ``options`` in pixels, and the nuclei the size estimate
    found in the probabilities returned, at the default threshold and minimum size (before or
    after the confidence filter), or None where it found none there."""
    if options.diameter != AUTO:
        options = options.within(np.shape(image))
        return predict_image(model, image, options, progress), options, None
    as_it_is = replace(options, diameter=None)
    first = predict_image(model, image, as_it_is, progress)
    first_labels = labels_from_probabilities(first)  # default threshold and minimum size
    diameter = _diameter_of(first_labels, options.model_diameter)
    if diameter is None:
        return first, as_it_is, first_labels
    sized = replace(options, diameter=diameter)
    second = predict_image(model, image, sized, progress)
    defaults = replace(sized, **_FOUND_AT)
    second_labels = labels_at_model_scale(second, defaults)
    if second_labels.max() > AUTO_MAX_GROWTH * max(first_labels.max(), 1):
        return first, as_it_is, first_labels
    return second, sized, second_labels


def nuclei_from_probabilities(
    probabilities,
    image,
    options: SegmentOptions = _DEFAULTS,
    *,
    pixel_size: float | None = None,
    channel_images=None,
    found=None,
):
    """Label image and measurement table from probabilities; no network pass.

    ``options.threshold`` and ``options.min_size`` decide the nuclei; ``image``
    gives their intensities in the table.  ``pixel_size`` (µm per pixel) puts sizes
    in micrometres; ``channel_images`` ``(H, W, C)`` adds one mean intensity per channel
    (see :func:`nuclei_core.segmentation.measure.measure_nuclei`).  With an expected diameter
    (``options.diameter``) the nuclei are found at the model's scale (see
    :func:`labels_at_model_scale`).  ``found`` are the nuclei :func:`predict_with_size` found
    in ``probabilities`` (:attr:`SizedPrediction.found`): at the default threshold and minimum
    size they are used as they are (the same nuclei, found once), at others found again.

    Examples
    --------
    >>> probabilities = np.zeros((20, 20, 2), np.float32); probabilities[5:12, 5:12, 0] = 0.9
    >>> labels, table = nuclei_from_probabilities(probabilities, np.ones((20, 20)))
    >>> int(labels.max()), int(table["area_px"][0])
    (1, 49)
    >>> _, table = nuclei_from_probabilities(probabilities, np.ones((20, 20)), pixel_size=0.5)
    >>> float(table["area_um2"][0])
    12.25
    """
    labels = find_nuclei(probabilities, options.in_pixels(pixel_size), found)
    table = measure_nuclei(
        labels, intensity_image=image, pixel_size=pixel_size, channel_images=channel_images
    )
    return labels, table


def find_nuclei(probabilities, options: SegmentOptions, found=None) -> np.ndarray:
    """The labels of :func:`nuclei_from_probabilities` without the measurements (``options``
    in pixels); ``found`` as there: at the levels it was found at, only the confidence filter
    and the renumbering are left to do, with the same result."""
    if found is not None and all(getattr(options, name) == _FOUND_AT[name] for name in _FOUND_AT):
        confident = keep_confident(found, probabilities[..., 0], options.min_confidence)
        return labels_to_shape(confident, found.shape, options.min_size)
    if options.scale != 1.0:
        return labels_at_model_scale(probabilities, options)
    return labels_from_probabilities(
        probabilities,
        threshold=options.threshold,
        min_size=options.min_size,
        peak_height=options.peak_height,
        min_confidence=options.min_confidence,
    )


def labels_at_model_scale(probabilities, options: SegmentOptions) -> np.ndarray:
    """Nuclei of an image's probabilities, found at the size the model was trained on.

    1. The probabilities (at the image's size) are rescaled by ``options.scale`` and
       turned into nuclei there
       (:func:`~nuclei_core.segmentation.postprocess.labels_from_probabilities`,
       minimum size rescaled too), where the seed distances and the 1-pixel boundary
       rims are what the post-processing was tuned for.
    2. The label image comes back to the image's size by nearest neighbour, and its
       outlines are redrawn from the image-size foreground: the nuclei, kept only on
       ``foreground > threshold``, flood the rest of it along the boundary probability
       (``skimage.segmentation.watershed``), so a nucleus's edge is not a staircase
       of the model's pixels.
    3. Nuclei under ``options.min_size`` pixels are dropped and the rest numbered 1..N.

    On the default model with DSB and MoNuSeg test images shown at 0.5x and 2x, this
    found as many nuclei as the instances found directly at the model's scale (DSB score
    and F1 within 0.01) and as splitting at the image's scale with rescaled seed
    distances; on synthetic images at 0.4x and 0.5x it gave the highest per-nucleus IoU
    of the three (0.94 to 0.97, against 0.92 to 0.95).

    Examples
    --------
    >>> probabilities = np.zeros((40, 40, 2), np.float32); probabilities[5:15, 5:15, 0] = 0.9
    >>> labels = labels_at_model_scale(probabilities, SegmentOptions(diameter=8.0))
    >>> labels.shape, int(labels.max()), int((labels == 1).sum())
    ((40, 40), 1, 100)
    """
    from skimage.segmentation import watershed

    scaled = resize_image(probabilities, options.scale)
    labels = labels_from_probabilities(
        scaled,
        threshold=options.threshold,
        min_size=int(options.min_size * options.scale**2),
        peak_height=options.peak_height,
    )
    shape = probabilities.shape[:2]
    foreground = probabilities[..., 0] > options.threshold
    seeds = np.where(foreground, labels_to_shape(labels, shape), 0)
    redrawn = watershed(probabilities[..., 1], seeds, mask=foreground, connectivity=1)
    confident = keep_confident(redrawn, probabilities[..., 0], options.min_confidence)
    return labels_to_shape(confident, shape, options.min_size)


def segment_image(
    model,
    image,
    options: SegmentOptions = _DEFAULTS,
    progress=None,
    *,
    pixel_size: float | None = None,
    channel_images=None,
):
    """Find, count and measure the nuclei of one raw image (see :func:`predict_image`).

    ``pixel_size`` and ``channel_images`` go to the measurements
    (:func:`nuclei_from_probabilities`); ``pixel_size`` also turns
    ``options.diameter_um`` into pixels.
    With ``diameter="auto"`` at the default threshold and minimum size, the nuclei the
    size estimate found are used, not found again (the same as
    :func:`nuclei_from_probabilities` finds: on a 2048 x 2048 image with 900 nuclei this
    saved 0.4 s, or 3 s where the image was rescaled).

    Returns
    -------
    Segmentation

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig, build_unet
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> found = segment_image(model, np.zeros((32, 32), np.uint8))
    >>> found.labels.shape, found.kind
    ((32, 32), 'fluorescence')
    """
    started = time.perf_counter()
    probabilities, options, found = _predict_with_size(
        model, image, options.in_pixels(pixel_size), progress
    )
    predicted = time.perf_counter()
    labels = find_nuclei(probabilities, options, found)
    table = measure_nuclei(
        labels, intensity_image=image, pixel_size=pixel_size, channel_images=channel_images
    )
    finished = time.perf_counter()
    return Segmentation(
        probabilities=probabilities,
        labels=labels,
        table=table,
        kind=image_kind(image),
        seconds={"predict": predicted - started, "instances": finished - predicted},
        diameter=options.diameter,
    )
