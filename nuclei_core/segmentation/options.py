"""The settings of a segmentation: :class:`SegmentOptions`, and the ones a model's card sets.

:class:`SegmentOptions` holds the settings of the network pass (test-time flips, tile size,
the expected nucleus diameter) and of the nuclei found after it (threshold, minimum size,
minimum confidence); :func:`model_settings` reads a model's card for the fields it sets,
and :meth:`SegmentOptions.for_model` is what the app and the CLI run a model with.  The
segmentation itself is in :mod:`nuclei_core.segmentation.segment`.

Examples
--------
>>> options = SegmentOptions(diameter_um=5.0, model_diameter=10.0).in_pixels(0.25)
>>> options.diameter, options.scale
(20.0, 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from nuclei_core.checks import check_fraction, check_positive
from nuclei_core.errors import ConfigError, NucleiError
from nuclei_core.registry.cards import card_path, read_card
from nuclei_core.segmentation.diameter import (
    DEFAULT_MODEL_DIAMETER_PX,
    diameter_in_pixels,
    largest_scale,
    model_diameter,
    scale_factor,
)

__all__ = ["AUTO", "SegmentOptions", "model_settings"]

AUTO = "auto"
"""``SegmentOptions(diameter=AUTO)``: estimate the nucleus diameter from the image."""


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
        ``"auto"`` estimates it from the image
        (:func:`~nuclei_core.segmentation.segment.estimate_diameter`).
    diameter_um : float or None
        The same in micrometres (instead of ``diameter``): turned into pixels with the
        image's pixel size (:meth:`in_pixels`).
    model_diameter : float
        The nucleus diameter the model was trained on
        (:func:`nuclei_core.segmentation.diameter.model_diameter` of its card).
    min_confidence : float
        A nucleus is kept only where its foreground probability reaches this somewhere
        (:func:`nuclei_core.segmentation.postprocess.keep_confident`; 0 keeps all). Chosen per model
        on its validation images and kept in its card (:func:`model_settings`).
    peak_height : float
        For a model with a distance output: how far a peak of the distance map must rise
        above the pass to a higher one to seed a nucleus of its own
        (:func:`nuclei_core.segmentation.postprocess.labels_from_probabilities`).

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
    peak_height: float = 0.2

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {self.threshold}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must be between 0 and 1, got {self.min_confidence}")
        if not 0.0 < self.peak_height < 1.0:
            raise ConfigError(f"peak_height must be between 0 and 1, got {self.peak_height}")
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

    def within(self, shape) -> SegmentOptions:
        """These options for an image of ``shape``: a diameter (pixels) that would enlarge it
        beyond :func:`~nuclei_core.segmentation.diameter.largest_scale` becomes the smallest
        that does not.

        Examples
        --------
        >>> SegmentOptions(diameter=5.0, model_diameter=20.0).within((2048, 2048)).diameter
        10.0
        """
        if self.diameter in (None, AUTO) or self.scale <= largest_scale(shape):
            return self
        return replace(self, diameter=self.model_diameter / largest_scale(shape))

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
    """The :class:`SegmentOptions` fields a model's card sets: ``model_diameter``,
    ``min_confidence`` and ``peak_height`` (the card's ``postprocess``, chosen on the model's
    validation images; 0 and 0.2 where the card says nothing). ``model_path`` None gives the
    defaults.

    Examples
    --------
    >>> model_settings(None)
    {'model_diameter': 20.6, 'min_confidence': 0.0, 'peak_height': 0.2}
    """
    defaults = SegmentOptions()
    if model_path is None:
        return {
            "model_diameter": DEFAULT_MODEL_DIAMETER_PX,
            "min_confidence": defaults.min_confidence,
            "peak_height": defaults.peak_height,
        }
    card = read_card(model_path)
    postprocess = card.get("postprocess") or {}
    where = f"postprocess.%s of {card_path(model_path)}"
    confidence = check_fraction(postprocess.get("min_confidence", 0.0), where % "min_confidence")
    height = check_fraction(
        postprocess.get("peak_height", defaults.peak_height), where % "peak_height"
    )
    return {
        "model_diameter": model_diameter(card),
        "min_confidence": confidence,
        "peak_height": height,
    }
