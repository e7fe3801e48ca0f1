"""One call from an image to counted, measured nuclei.

This is what the app, the CLI and the benchmark use:

* :func:`predict_image` runs the network (the expensive part);
* :func:`nuclei_from_probabilities` thresholds, splits and measures (cheap,
  re-run alone when only the threshold or minimum size changes);
* :func:`segment_image` does both.

Scoring against ground truth is in :mod:`nuclei_core.evaluate`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nuclei_core.errors import ConfigError
from nuclei_core.measure import measure_nuclei
from nuclei_core.postprocess import labels_from_probabilities
from nuclei_core.preprocess import image_kind, to_model_input

__all__ = [
    "SegmentOptions",
    "Segmentation",
    "nuclei_from_probabilities",
    "predict_image",
    "segment_image",
]


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

    Raises
    ------
    ConfigError
        ``threshold`` not between 0 and 1, or ``min_size`` negative.

    Examples
    --------
    >>> SegmentOptions(threshold=0.3).min_size
    15
    >>> SegmentOptions(threshold=1.5)
    Traceback (most recent call last):
    ...
    nuclei_core.errors.ConfigError: threshold must be between 0 and 1, got 1.5
    """

    threshold: float = 0.5
    min_size: int = 15
    tta: bool = False
    tile_size: int = 1024

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.min_size < 0:
            raise ConfigError(f"minimum nucleus size must be >= 0, got {self.min_size}")


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

    @property
    def count(self) -> int:
        return int(self.labels.max()) if self.labels.size else 0

    @property
    def mask(self) -> np.ndarray:
        """The semantic foreground mask (what the original project showed)."""
        return self.labels > 0


def predict_image(model, image, options: SegmentOptions = SegmentOptions(), progress=None):
    """The network's probabilities for a raw image: ``float32 (H, W, 2)``, foreground and boundary.

    Parameters
    ----------
    model : keras.Model
        A segmentation network (:func:`nuclei_core.model.load_model`).
    image : ndarray
        As :func:`nuclei_core.imread.read_image` returns it; normalised here.
    options : SegmentOptions
        Test-time flips and tile size.
    progress : callable, optional
        ``progress(done, total)`` after each tile.

    Examples
    --------
    >>> from nuclei_core.model import ModelConfig, build_unet
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> predict_image(model, np.zeros((20, 30), np.uint8)).shape
    (20, 30, 2)
    """
    from nuclei_core.predict import predict_probabilities

    return predict_probabilities(
        model,
        to_model_input(image),
        tile_size=options.tile_size,
        tta=options.tta,
        progress=progress,
    )


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
    (see :func:`nuclei_core.measure.measure_nuclei`).

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
    labels = labels_from_probabilities(
        probabilities, threshold=options.threshold, min_size=options.min_size
    )
    table = measure_nuclei(
        labels, intensity_image=image, pixel_size=pixel_size, channel_images=channel_images
    )
    return labels, table


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
    (:func:`nuclei_from_probabilities`).

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
    probabilities = predict_image(model, image, options, progress)
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
    )
