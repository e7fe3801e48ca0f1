"""One call from an image to counted, measured nuclei; and scoring against ground truth.

This is what the app, the CLI and the benchmark use:

* :func:`predict_image` runs the network (the expensive part);
* :func:`nuclei_from_probabilities` thresholds, splits and measures (cheap,
  re-run alone when only the threshold or minimum size changes);
* :func:`segment_image` does both; :func:`evaluate_samples` scores a whole
  dataset split, per image and per image kind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nuclei_core import instances, io, metrics
from nuclei_core.errors import ConfigError, NucleiError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = PROJECT_ROOT / "models" / "default.keras"


@dataclass(frozen=True)
class SegmentOptions:
    """Settings of the segmentation after the network."""

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
    """Everything found in one image."""

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
    """Probabilities ``(H, W, 2)`` for a raw image (as :func:`io.read_image` returns)."""
    from nuclei_core.predict import predict_probabilities

    return predict_probabilities(
        model,
        io.to_model_input(image),
        tile_size=options.tile_size,
        tta=options.tta,
        progress=progress,
    )


def nuclei_from_probabilities(probabilities, image, options: SegmentOptions = SegmentOptions()):
    """Label image and measurement table from probabilities; no network pass.

    Examples
    --------
    >>> probabilities = np.zeros((20, 20, 2), np.float32); probabilities[5:12, 5:12, 0] = 0.9
    >>> labels, table = nuclei_from_probabilities(probabilities, np.ones((20, 20)))
    >>> int(labels.max()), int(table["area"][0])
    (1, 49)
    """
    labels = instances.labels_from_probabilities(
        probabilities, threshold=options.threshold, min_size=options.min_size
    )
    return labels, instances.measure_nuclei(labels, intensity_image=image)


def segment_image(model, image, options: SegmentOptions = SegmentOptions(), progress=None):
    """Find, count and measure the nuclei of one raw image."""
    started = time.perf_counter()
    probabilities = predict_image(model, image, options, progress)
    predicted = time.perf_counter()
    labels, table = nuclei_from_probabilities(probabilities, image, options)
    finished = time.perf_counter()
    return Segmentation(
        probabilities=probabilities,
        labels=labels,
        table=table,
        kind=io.image_kind(image),
        seconds={"predict": predicted - started, "instances": finished - predicted},
    )


@dataclass
class SampleResult:
    """Scores of one dataset image."""

    id: str
    kind: str
    scores: metrics.ImageScores
    labels: np.ndarray
    true_labels: np.ndarray
    seconds: float

    def row(self) -> dict:
        return {"id": self.id, "kind": self.kind, **self.scores.as_dict(), "seconds": self.seconds}


def evaluate_samples(
    model_or_segmenter,
    samples,
    options: SegmentOptions = SegmentOptions(),
    progress: Callable[[int, int], None] | None = None,
):
    """Segment and score every sample; bad files are skipped and listed.

    ``model_or_segmenter`` is a Keras model, or a function ``image -> labels``
    (for baselines without a network).

    Returns
    -------
    results : list of SampleResult
    problems : list of str
    """
    results, problems = [], []
    for index, sample in enumerate(samples, start=1):
        try:
            image, true_labels = io.load_sample(sample)
        except NucleiError as error:
            problems.append(str(error))
            continue
        started = time.perf_counter()
        if callable(model_or_segmenter) and not hasattr(model_or_segmenter, "layers"):
            labels = model_or_segmenter(image)
        else:
            labels = segment_image(model_or_segmenter, image, options).labels
        seconds = time.perf_counter() - started
        scores = metrics.evaluate_labels(true_labels, labels)
        results.append(
            SampleResult(sample.id, io.image_kind(image), scores, labels, true_labels, seconds)
        )
        if progress:
            progress(index, len(samples))
    return results, problems


def summarize_by_kind(results) -> dict:
    """Mean scores over all images and per image kind (``{"all": {...}, "stained": {...}}``)."""
    if not results:
        return {}
    summary = {"all": metrics.summarize([result.scores for result in results])}
    for kind in io.IMAGE_KINDS:
        chosen = [result.scores for result in results if result.kind == kind]
        if chosen:
            summary[kind] = metrics.summarize(chosen)
    colour = [result.scores for result in results if result.kind != "fluorescence"]
    if colour and len(colour) != len(results):
        summary["brightfield+stained"] = metrics.summarize(colour)
    return summary
