"""Scoring segmentations against ground truth: one image, a dataset split, a folder to browse.

* :func:`compare_labels`: the scores and error map of one prediction;
* :func:`evaluate_samples`: segment and score every sample of a dataset split
  (what the CLI and the benchmark use), :func:`summarize_by_kind` its mean scores
  over all images and per image kind;
* :func:`evaluate_folder`: the same for a folder the app browses, with a
  thumbnail of each prediction; :func:`results_frame`, :func:`kind_summary_frame`,
  :func:`order_results` and :func:`sample_views` present its results;
* :func:`check_dataset_folder` resolves and checks a folder typed by the user;
  :func:`sample_images` lists the bundled sample images, whose ground truth
  ``datasets.flat_mask`` finds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nuclei_core.datasets.folders import discover_dataset, flat_images, load_sample, select_split
from nuclei_core.errors import DatasetError, InputTypeError, NucleiError
from nuclei_core.evaluation import metrics
from nuclei_core.io.render import error_overlay, overlay, thumbnail
from nuclei_core.locations import PROJECT_ROOT, sample_folder
from nuclei_core.segmentation.options import SegmentOptions
from nuclei_core.segmentation.preprocess import IMAGE_KINDS, image_kind, to_display_rgb
from nuclei_core.segmentation.segment import segment_image

__all__ = [
    "FolderResult",
    "SampleResult",
    "check_dataset_folder",
    "compare_labels",
    "evaluate_folder",
    "evaluate_samples",
    "kind_summary_frame",
    "order_results",
    "results_frame",
    "sample_images",
    "sample_views",
    "summarize_by_kind",
]

SAMPLE_SUBFOLDERS = ("inputs", "images", "test/inputs", "test/images", ".")
"""Where :func:`sample_images` looks for images, in order; the first that holds any wins."""


# --------------------------------------------------------------------------- folders


def check_dataset_folder(text, base=None) -> Path:
    """Resolve a folder typed by the user and check it can be browsed.

    ``~`` is expanded; relative paths are taken from ``base`` (default: the
    project folder).

    Raises
    ------
    DatasetError
        Empty, missing, not a folder, or not readable.

    Examples
    --------
    >>> import tempfile
    >>> check_dataset_folder(tempfile.gettempdir()).is_dir()
    True
    >>> check_dataset_folder("  ")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.DatasetError: dataset folder: no folder given
    """
    if not isinstance(text, (str, os.PathLike)):
        raise InputTypeError(f"folder must be text, got {type(text).__name__}")
    cleaned = os.fspath(text).strip()
    if not cleaned:
        raise DatasetError("dataset folder: no folder given")
    path = Path(cleaned).expanduser()
    if not path.is_absolute():
        path = Path(base if base is not None else PROJECT_ROOT) / path
    path = path.resolve()
    if not path.exists():
        raise DatasetError(f"{path}: dataset folder does not exist")
    if not path.is_dir():
        raise DatasetError(f"{path}: not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DatasetError(f"{path}: folder is not readable (permission denied)")
    return path


def sample_images(folder=None) -> list[Path]:
    """The sample images of a flat-layout folder (default: the bundled samples).

    The images of the first of :data:`SAMPLE_SUBFOLDERS` that holds any; a
    missing folder gives ``[]``.

    Examples
    --------
    >>> [path.parent.name for path in sample_images(PROJECT_ROOT / "sample_images")][:1]
    ['inputs']
    >>> sample_images(PROJECT_ROOT / "no such folder")
    []
    """
    root = Path(folder) if folder is not None else sample_folder()
    for name in SAMPLE_SUBFOLDERS:
        if (root / name).is_dir() and (found := flat_images(root / name)):
            return found
    return []


# --------------------------------------------------------------------------- one image


def compare_labels(true_labels: np.ndarray, labels: np.ndarray):
    """Scores and error map (1 TP, 2 FP, 3 FN) of a prediction against ground truth.

    Returns
    -------
    scores : metrics.ImageScores
    errors : ndarray of uint8, shape (H, W)

    Examples
    --------
    >>> truth = np.array([[1, 0], [0, 2]])
    >>> scores, errors = compare_labels(truth, np.array([[1, 0], [0, 0]]))
    >>> scores.n_true, scores.n_pred, errors.tolist()
    (2, 1, [[1, 0], [0, 3]])
    """
    return metrics.evaluate_labels(true_labels, labels), metrics.error_map(true_labels, labels)


# --------------------------------------------------------------------------- dataset splits


@dataclass
class SampleResult:
    """Scores of one dataset image, and the labels they compare."""

    id: str
    kind: str
    scores: metrics.ImageScores
    labels: np.ndarray
    true_labels: np.ndarray
    seconds: float

    def row(self) -> dict:
        """``id``, ``kind``, every score and ``seconds``: one row of a table."""
        return {"id": self.id, "kind": self.kind, **self.scores.as_dict(), "seconds": self.seconds}


def evaluate_samples(
    model_or_segmenter,
    samples,
    options: SegmentOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
):
    """Segment and score every sample; bad files are skipped and listed.

    Parameters
    ----------
    model_or_segmenter : keras.Model or callable
        A network (segmented with :func:`nuclei_core.segmentation.segment.segment_image`), or
        a function ``image -> labels`` (for baselines without a network).
    samples : iterable of datasets.Sample
    options : SegmentOptions, optional
        Used with a network (default: ``SegmentOptions()``).
    progress : callable, optional
        ``progress(done, total)`` after each scored image.

    Returns
    -------
    results : list of SampleResult
    problems : list of str
        One line per sample that could not be read.

    Examples
    --------
    >>> from nuclei_core.datasets.folders import discover_dataset
    >>> samples = discover_dataset(PROJECT_ROOT / "sample_images").samples[:2]
    >>> results, problems = evaluate_samples(lambda image: np.zeros(image.shape[:2], int), samples)
    >>> len(results), results[0].scores.n_pred, problems
    (2, 0, [])
    """
    options = options or SegmentOptions()
    results, problems = [], []
    for index, sample in enumerate(samples, start=1):
        try:
            image, true_labels = load_sample(sample)
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
            SampleResult(sample.id, image_kind(image), scores, labels, true_labels, seconds)
        )
        if progress:
            progress(index, len(samples))
    return results, problems


def summarize_by_kind(results) -> dict:
    """Mean scores over all images and per image kind (``{"all": {...}, "stained": {...}}``).

    Groups: ``all``, each image kind found, and ``brightfield+stained`` when
    there are both fluorescence and colour images. No results give ``{}``.

    Examples
    --------
    >>> labels = np.array([[1, 0], [0, 2]])
    >>> scores = metrics.evaluate_labels(labels, labels)
    >>> result = SampleResult("a", "stained", scores, labels, labels, 0.1)
    >>> sorted(summarize_by_kind([result])), summarize_by_kind([result])["all"]["n_images"]
    (['all', 'stained'], 1)
    """
    if not results:
        return {}
    summary = {"all": metrics.summarize([result.scores for result in results])}
    for kind in IMAGE_KINDS:
        chosen = [result.scores for result in results if result.kind == kind]
        if chosen:
            summary[kind] = metrics.summarize(chosen)
    colour = [result.scores for result in results if result.kind != "fluorescence"]
    if colour and len(colour) != len(results):
        summary["brightfield+stained"] = metrics.summarize(colour)
    return summary


# --------------------------------------------------------------------------- browsing a folder


@dataclass
class FolderResult:
    """Scores of every image of a dataset folder and a thumbnail of each prediction."""

    folder: Path
    split: str
    results: list
    problems: list[str]
    samples: dict = field(default_factory=dict)  # id -> datasets.Sample
    thumbnails: dict = field(default_factory=dict)  # id -> uint8 (h, w, 3)
    seconds: float = 0.0

    def result(self, sample_id: str):
        """The :class:`SampleResult` of one image, or ``None``."""
        return next((item for item in self.results if item.id == sample_id), None)


def evaluate_folder(
    model,
    folder,
    split: str = "all",
    options: SegmentOptions | None = None,
    progress=None,
    thumbnail_side: int = 256,
) -> FolderResult:
    """Segment and score the images of one split of a dataset folder.

    ``progress(done, total)`` is called after each image; each prediction is
    kept as an overlay thumbnail of at most ``thumbnail_side`` pixels.

    Raises
    ------
    DatasetError
        The folder holds no image/mask pairs, or the split is empty.

    Examples
    --------
    >>> import tempfile
    >>> evaluate_folder(None, tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nuclei_core.errors.DatasetError: ...: no image/mask pairs found...
    """
    options = options or SegmentOptions()
    dataset = discover_dataset(folder)
    samples = select_split(dataset, split)
    if not samples:
        raise DatasetError(f"{dataset.root}: the {split} split has no images")
    thumbnails: list[np.ndarray] = []

    def segmenter(image):
        labels = segment_image(model, image, options).labels
        thumbnails.append(thumbnail(overlay(to_display_rgb(image), labels), thumbnail_side))
        return labels

    started = time.perf_counter()
    results, problems = evaluate_samples(segmenter, samples, options, progress)
    return FolderResult(
        folder=dataset.root,
        split=split,
        results=results,
        problems=list(dataset.problems) + problems,
        samples={sample.id: sample for sample in samples},
        thumbnails={result.id: thumb for result, thumb in zip(results, thumbnails, strict=True)},
        seconds=time.perf_counter() - started,
    )


def results_frame(results) -> pd.DataFrame:
    """One row of scores per image (:meth:`SampleResult.row`).

    Examples
    --------
    >>> labels = np.array([[1, 0], [0, 2]])
    >>> result = SampleResult("a", "stained", metrics.evaluate_labels(labels, labels),
    ...                       labels, labels, 0.1)
    >>> results_frame([result])[["id", "dsb_score"]].values.tolist()
    [['a', 1.0]]
    """
    return pd.DataFrame([result.row() for result in results])


def kind_summary_frame(results) -> pd.DataFrame:
    """Mean scores of :func:`summarize_by_kind` as a table, one row per group of images.

    Examples
    --------
    >>> labels = np.array([[1, 0], [0, 2]])
    >>> result = SampleResult("a", "stained", metrics.evaluate_labels(labels, labels),
    ...                       labels, labels, 0.1)
    >>> kind_summary_frame([result])["images"].tolist()
    ['all', 'stained']
    """
    summary = summarize_by_kind(results)
    rows = [{"images": group, **values} for group, values in summary.items()]
    return pd.DataFrame(rows)


def order_results(results, worst_first: bool = True, kinds=None, key: str = "dsb_score"):
    """Results of the chosen image ``kinds`` (all when empty), sorted by a score, worst first.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> results = [SimpleNamespace(id=name, kind="stained", scores=SimpleNamespace(dsb_score=dsb))
    ...            for name, dsb in (("a", 0.9), ("b", 0.2))]
    >>> [result.id for result in order_results(results)]
    ['b', 'a']
    """
    chosen = [result for result in results if not kinds or result.kind in kinds]
    return sorted(
        chosen, key=lambda result: (getattr(result.scores, key), result.id), reverse=not worst_first
    )


def sample_views(sample, result) -> dict[str, np.ndarray]:
    """Display image, ground-truth overlay, prediction overlay and error overlay of a sample.

    Returns
    -------
    dict
        ``image``, ``truth``, ``prediction``, ``errors``: ``uint8 (H, W, 3)`` pictures.

    Raises
    ------
    ImageReadError, GroundTruthError
        The image or its mask can no longer be read.

    Examples
    --------
    >>> from nuclei_core.datasets.folders import discover_dataset
    >>> sample = discover_dataset(PROJECT_ROOT / "sample_images").samples[0]
    >>> results, _ = evaluate_samples(lambda image: np.zeros(image.shape[:2], int), [sample])
    >>> sorted(sample_views(sample, results[0]))
    ['errors', 'image', 'prediction', 'truth']
    """
    image, true_labels = load_sample(sample)
    rgb = to_display_rgb(image)
    errors = metrics.error_map(true_labels, result.labels)
    return {
        "image": rgb,
        "truth": overlay(rgb, true_labels),
        "prediction": overlay(rgb, result.labels),
        "errors": error_overlay(rgb, errors),
    }
