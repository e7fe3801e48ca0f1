"""One call from an image to counted, measured nuclei.

This is what the app, the CLI and the benchmark use:

* :func:`predict_image` runs the network (the expensive part);
* :func:`nuclei_from_probabilities` thresholds, splits and measures (cheap,
  re-run alone when only the threshold or minimum size changes);
* :func:`segment_image` does both.

With an expected nucleus diameter (``SegmentOptions.diameter``), the network sees the
image rescaled so that its nuclei have the model's training size
(:mod:`nuclei_core.rescale`); the probabilities come back at the image's size, the
nuclei are found at the model's size and mapped back (:func:`labels_at_model_scale`),
so measurements are always in the image's own pixels.  ``diameter="auto"`` estimates
it from the image (:func:`estimate_diameter`): a first pass at the image's size, the
median diameter of the nuclei it found, and a second pass at that size when it differs
from the model's by more than :data:`AUTO_TOLERANCE`.

Scoring against ground truth is in :mod:`nuclei_core.evaluate`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from nuclei_core.cards import card_path, read_card
from nuclei_core.checks import check_fraction, check_positive
from nuclei_core.errors import ConfigError, NucleiError
from nuclei_core.measure import measure_nuclei
from nuclei_core.postprocess import keep_confident, labels_from_probabilities
from nuclei_core.preprocess import image_kind, to_model_input
from nuclei_core.rescale import (
    DEFAULT_MODEL_DIAMETER_PX,
    SCALE_RANGE,
    diameter_in_pixels,
    labels_to_shape,
    median_diameter,
    model_diameter,
    resize_image,
    resize_to,
    scale_factor,
)

__all__ = [
    "AUTO",
    "SegmentOptions",
    "Segmentation",
    "estimate_diameter",
    "model_settings",
    "nuclei_from_probabilities",
    "predict_image",
    "predict_with_size",
    "segment_image",
]

AUTO = "auto"
"""``SegmentOptions(diameter=AUTO)``: estimate the nucleus diameter from the image."""
AUTO_TOLERANCE = 0.1
"""An estimated diameter within this fraction of the model's is segmented as it is."""
AUTO_MIN_NUCLEI = 5
"""With fewer nuclei found in the first pass, the image is segmented as it is."""
AUTO_MAX_GROWTH = 3.0
"""A second pass that finds more than this many times the first's nuclei is not used: the
first pass had cut huge nuclei into small fragments of texture, and enlarging the image
for those only multiplies the fragments (seen on DSB images shown at 2x, nuclei of 85 px)."""


@dataclass(frozen=True)
class SegmentOptions:
    """Settings of a segmentation: the network pass and the instances after it.

    Attributes
    ----------
    threshold : float
        A pixel belongs to a nucleus when its foreground probability is above this.
    min_size : int
        Nuclei smaller than this many pixels are dropped.
    tta : bool
        Average the prediction over 4 flipped copies (test-time augmentation).
    tile_size : int
        Larger images are predicted in overlapping tiles of this size.
    diameter : float, "auto" or None
        Expected nucleus diameter in pixels; None segments the image as it is;
        ``"auto"`` estimates it from the image (:func:`estimate_diameter`).
    diameter_um : float or None
        The same in micrometres (instead of ``diameter``): turned into pixels with the
        image's pixel size (:meth:`in_pixels`).
    model_diameter : float
        The nucleus diameter the model was trained on
        (:func:`nuclei_core.rescale.model_diameter` of its card).
    min_confidence : float
        A nucleus is kept only where its foreground probability reaches this somewhere
        (:func:`nuclei_core.postprocess.keep_confident`; 0 keeps all). Chosen per model
        on its validation images and kept in its card (:func:`model_settings`).

    Raises
    ------
    ConfigError
        ``threshold`` not between 0 and 1, ``min_size`` negative, ``diameter``
        neither a number nor ``"auto"``, or more than 4 times smaller or larger
        than ``model_diameter``, or both
        ``diameter`` and ``diameter_um`` given.

    Examples
    --------
    >>> SegmentOptions(threshold=0.3).min_size
    15
    >>> SegmentOptions(threshold=1.5)
    Traceback (most recent call last):
    ...
    nuclei_core.errors.ConfigError: threshold must be between 0 and 1, got 1.5
    >>> SegmentOptions(diameter=8.0, model_diameter=16.0).scale
    2.0
    """

    threshold: float = 0.5
    min_size: int = 15
    tta: bool = False
    tile_size: int = 1024
    diameter: float | str | None = None
    diameter_um: float | None = None
    model_diameter: float = DEFAULT_MODEL_DIAMETER_PX
    min_confidence: float = 0.0

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {self.threshold}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must be between 0 and 1, got {self.min_confidence}")
        if self.min_size < 0:
            raise ConfigError(f"minimum nucleus size must be >= 0, got {self.min_size}")
        try:
            if self.diameter is not None and self.diameter_um is not None:
                raise ConfigError("give diameter (pixels) or diameter_um, not both")
            if isinstance(self.diameter, str) and self.diameter != AUTO:
                raise ConfigError(f"diameter must be a number or {AUTO!r}, got {self.diameter!r}")
            if self.diameter is not None and self.diameter != AUTO:
                scale_factor(self.diameter, self.model_diameter)
            if self.diameter_um is not None:
                check_positive(self.diameter_um, "diameter_um")
        except NucleiError as error:
            raise ConfigError(str(error)) from None

    @classmethod
    def for_model(cls, model_path, **settings) -> SegmentOptions:
        """The options the app and the CLI run the model at ``model_path`` with.

        The nucleus diameter is estimated from each image (``diameter="auto"``) against
        the training diameter of the model's card, and the card's settings
        (:func:`model_settings`) apply; ``settings`` change any field.

        Examples
        --------
        >>> from nuclei_core.locations import DEFAULT_MODEL
        >>> options = SegmentOptions.for_model(DEFAULT_MODEL, tta=True)
        >>> options.diameter, options.model_diameter, options.tta
        ('auto', 20.6, True)
        """
        return cls(**{"diameter": AUTO, **model_settings(model_path), **settings})

    def in_pixels(self, pixel_size: float | None) -> SegmentOptions:
        """These options with ``diameter_um`` turned into ``diameter`` for ``pixel_size`` µm.

        Raises
        ------
        ConfigError
            ``diameter_um`` without a pixel size, or too far from the model's diameter.

        Examples
        --------
        >>> SegmentOptions(diameter_um=5.0).in_pixels(0.25).diameter
        20.0
        """
        if self.diameter_um is None:
            return self
        try:
            diameter = diameter_in_pixels(self.diameter_um, pixel_size)
            name = f"diameter_um ({self.diameter_um:g} µm at {pixel_size:g} µm per pixel)"
            scale_factor(diameter, self.model_diameter, name)
        except NucleiError as error:
            raise ConfigError(str(error)) from None
        return replace(self, diameter=diameter, diameter_um=None)

    @property
    def scale(self) -> float:
        """Factor by which the image is enlarged for the network (1.0 without a diameter)."""
        if self.diameter_um is not None:
            raise ConfigError("diameter_um needs the image's pixel size: use in_pixels first")
        if self.diameter == AUTO:
            raise ConfigError(
                "diameter='auto' is estimated from an image: use predict_with_size or segment_image"
            )
        if self.diameter is None:
            return 1.0
        return scale_factor(self.diameter, self.model_diameter)


def model_settings(model_path) -> dict:
    """The :class:`SegmentOptions` fields a model's card sets: ``model_diameter`` and
    ``min_confidence`` (the card's ``postprocess``, chosen on the model's validation
    images; 0 where the card says nothing). ``model_path`` None gives the defaults.

    Examples
    --------
    >>> model_settings(None)
    {'model_diameter': 20.6, 'min_confidence': 0.0}
    """
    if model_path is None:
        return {"model_diameter": DEFAULT_MODEL_DIAMETER_PX, "min_confidence": 0.0}
    card = read_card(model_path)
    confidence = (card.get("postprocess") or {}).get("min_confidence", 0.0)
    where = f"postprocess.min_confidence of {card_path(model_path)}"
    confidence = check_fraction(confidence, where)
    return {"model_diameter": model_diameter(card), "min_confidence": confidence}


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
    options: SegmentOptions = SegmentOptions(),
    progress=None,
    *,
    pixel_size: float | None = None,
):
    """The network's probabilities for a raw image: ``float32 (H, W, 2)``, foreground and boundary.

    Parameters
    ----------
    model : keras.Model
        A segmentation network (:func:`nuclei_core.model.load_model`).
    image : ndarray
        As :func:`nuclei_core.imread.read_image` returns it; normalised here.
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
    >>> from nuclei_core.model import ModelConfig, build_unet
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> predict_image(model, np.zeros((20, 30), np.uint8)).shape
    (20, 30, 2)
    >>> predict_image(model, np.zeros((20, 30), np.uint8), SegmentOptions(diameter=8.0)).shape
    (20, 30, 2)
    """
    from nuclei_core.predict import predict_probabilities

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
    minimum size (:func:`~nuclei_core.rescale.median_diameter`), kept within the sizes
    a model trained at ``model_diameter`` takes. None means "segment the image as it
    is": fewer than :data:`AUTO_MIN_NUCLEI` nuclei, or a diameter within about
    :data:`AUTO_TOLERANCE` (10 %) of the model's.

    On the 89 DSB 2018 validation images of the default model, shown at 0.5x, 1x and 2x,
    segmenting at the estimated diameter raised the mean DSB score from 0.463, 0.565 and
    0.493 to 0.498, 0.577 and 0.540; the true diameter gives 0.505, 0.579 and 0.552
    (``python bench/diameter.py --split val``).

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
    """:func:`estimate_diameter` from the nuclei already found at the image's size."""
    if labels.max() < AUTO_MIN_NUCLEI:
        return None
    low, high = model_diameter / SCALE_RANGE[1], model_diameter / SCALE_RANGE[0]
    diameter = float(np.clip(median_diameter(labels), low, high))
    if abs(math.log(diameter / model_diameter)) <= AUTO_TOLERANCE:
        return None
    return diameter


def predict_with_size(
    model,
    image,
    options: SegmentOptions = SegmentOptions(),
    progress=None,
    *,
    pixel_size: float | None = None,
):
    """:func:`predict_image`, resolving ``diameter="auto"`` on the way.

    Returns
    -------
    probabilities : ndarray of float32, shape (H, W, 2)
    options : SegmentOptions
        ``options`` with the diameter used: the estimated one (:func:`estimate_diameter`,
        which costs a second network pass at that size), or None for ``"auto"`` when
        there is no estimate or the second pass found more than :data:`AUTO_MAX_GROWTH`
        times the first's nuclei (then the first pass is the result); given diameters
        (pixels or µm) as they were, in pixels.

    Examples
    --------
    >>> from nuclei_core.model import ModelConfig, build_unet
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> probabilities, used = predict_with_size(model, np.zeros((32, 32), np.uint8),
    ...                                         SegmentOptions(diameter="auto"))
    >>> probabilities.shape, used.diameter
    ((32, 32, 2), None)
    """
    options = options.in_pixels(pixel_size)
    if options.diameter != AUTO:
        return predict_image(model, image, options, progress), options
    as_it_is = replace(options, diameter=None)
    first = predict_image(model, image, as_it_is, progress)
    first_labels = labels_from_probabilities(first)  # default threshold and minimum size
    diameter = _diameter_of(first_labels, options.model_diameter)
    if diameter is None:
        return first, as_it_is
    sized = replace(options, diameter=diameter)
    second = predict_image(model, image, sized, progress)
    defaults = replace(sized, threshold=SegmentOptions.threshold, min_size=SegmentOptions.min_size)
    second_count = labels_at_model_scale(second, defaults).max()
    if second_count > AUTO_MAX_GROWTH * max(first_labels.max(), 1):
        return first, as_it_is
    return second, sized


def nuclei_from_probabilities(
    probabilities,
    image,
    options: SegmentOptions = SegmentOptions(),
    *,
    pixel_size: float | None = None,
    channel_images=None,
):
    """Label image and measurement table from probabilities; no network pass.

    ``options.threshold`` and ``options.min_size`` decide the nuclei; ``image``
    gives their intensities in the table.  ``pixel_size`` (µm per pixel) puts sizes
    in micrometres; ``channel_images`` ``(H, W, C)`` adds one mean intensity per channel
    (see :func:`nuclei_core.measure.measure_nuclei`).  With an expected diameter
    (``options.diameter``) the nuclei are found at the model's scale (see
    :func:`labels_at_model_scale`).

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
    options = options.in_pixels(pixel_size)
    if options.scale == 1.0:
        labels = labels_from_probabilities(
            probabilities,
            threshold=options.threshold,
            min_size=options.min_size,
            min_confidence=options.min_confidence,
        )
    else:
        labels = labels_at_model_scale(probabilities, options)
    table = measure_nuclei(
        labels, intensity_image=image, pixel_size=pixel_size, channel_images=channel_images
    )
    return labels, table


def labels_at_model_scale(probabilities, options: SegmentOptions) -> np.ndarray:
    """Nuclei of an image's probabilities, found at the size the model was trained on.

    1. The probabilities (at the image's size) are rescaled by ``options.scale`` and
       turned into nuclei there (:func:`~nuclei_core.postprocess.labels_from_probabilities`,
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
    options: SegmentOptions = SegmentOptions(),
    progress=None,
    *,
    pixel_size: float | None = None,
    channel_images=None,
):
    """Find, count and measure the nuclei of one raw image (see :func:`predict_image`).

    ``pixel_size`` and ``channel_images`` go to the measurements
    (:func:`nuclei_from_probabilities`); ``pixel_size`` also turns
    ``options.diameter_um`` into pixels.

    Returns
    -------
    Segmentation

    Examples
    --------
    >>> from nuclei_core.model import ModelConfig, build_unet
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> found = segment_image(model, np.zeros((32, 32), np.uint8))
    >>> found.labels.shape, found.kind
    ((32, 32), 'fluorescence')
    """
    started = time.perf_counter()
    probabilities, options = predict_with_size(
        model, image, options, progress, pixel_size=pixel_size
    )
    predicted = time.perf_counter()
    labels, table = nuclei_from_probabilities(
        probabilities, image, options, pixel_size=pixel_size, channel_images=channel_images
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
