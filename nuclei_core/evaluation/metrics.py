"""Scores that compare a predicted label image with a ground-truth label image.

The dashboard and the CLI use this module to tell how good a segmentation is:

* object-level scores: the IoU of every (true, predicted) pair of nuclei
  (:func:`iou_matrix`), a one-to-one matching of nuclei at an IoU threshold with
  precision, recall and F1 (:func:`match_labels`), and the 2018 Data Science Bowl
  score (:func:`dsb_score`);
* pixel-level scores on the foreground masks (``labels > 0``):
  :func:`pixel_accuracy`, :func:`foreground_iou`, :func:`dice`;
* the nuclei count error (:func:`count_error`);
* everything for one image at once (:func:`evaluate_labels`) and means over many
  images (:func:`summarize`);
* an image of error categories to colour an overlay (:func:`error_map`, from
  :mod:`nuclei_core.evaluation.error_map`); drawing itself is left to the caller.

The object-level scores live in :mod:`nuclei_core.evaluation.matching` (on the overlap
tables of :mod:`nuclei_core.evaluation.overlaps`); this module hands their names on, so
``from nuclei_core.evaluation.metrics import dsb_score`` works as before.

All functions are pure and take label images: integer arrays ``(H, W)`` where 0 is
background and every other value is one nucleus.  Label ids need not be
consecutive.  A bool array is read as a label image with at most one nucleus.
Float arrays are accepted when they hold only whole numbers.

Matching rule, used everywhere in this module: a predicted nucleus matches a true
nucleus when their IoU is **strictly greater** than the threshold (``IoU > t``), as
in the Data Science Bowl metric (StarDist uses ``>=``).  For thresholds >= 0.5 a
nucleus can have at most one partner with ``IoU > t``, so taking every such pair is
already the best one-to-one matching.  For thresholds below 0.5 the matching is an
optimal assignment (:func:`scipy.optimize.linear_sum_assignment`) that first
maximises the number of matched pairs, then their total IoU.

Empty images: when both images have no nuclei, precision, recall, F1, the DSB
score, the mean matched IoU, the foreground IoU and the Dice coefficient are all
1.0 (nothing to find, nothing found).  When only one of them is empty, a ratio
whose denominator is zero is 0.0 (for example the precision of an empty prediction
against a non-empty ground truth is 0.0, not 1.0), so that predicting nothing is
never rewarded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from nuclei_core.errors import InputError, InputTypeError
from nuclei_core.evaluation.error_map import (
    ERROR_BACKGROUND,
    ERROR_FN,
    ERROR_FP,
    ERROR_TP,
    error_map,
)
from nuclei_core.evaluation.matching import (
    DSB_THRESHOLDS,
    Matching,
    count_error,
    dsb_from_overlaps,
    dsb_score,
    iou_matrix,
    match_labels,
    matching_from_overlaps,
)
from nuclei_core.evaluation.overlaps import as_label_pair, label_overlaps, ratio

__all__ = [
    "DSB_THRESHOLDS",
    "ERROR_BACKGROUND",
    "ERROR_FN",
    "ERROR_FP",
    "ERROR_TP",
    "ImageScores",
    "Matching",
    "count_error",
    "dice",
    "dsb_score",
    "error_map",
    "evaluate_labels",
    "foreground_iou",
    "iou_matrix",
    "match_labels",
    "pixel_accuracy",
    "summarize",
]


@dataclass(frozen=True)
class ImageScores:
    """All scores of one image, as returned by :func:`evaluate_labels`.

    Attributes
    ----------
    pixel_accuracy, foreground_iou, dice : float
        Pixel-level scores of the foreground masks.
    precision, recall, f1 : float
        Object-level scores at IoU threshold 0.5 (``IoU > 0.5``).
    dsb_score : float
        2018 Data Science Bowl score of the image.
    n_true, n_pred : int
        Number of true and of predicted nuclei.
    count_error : int
        ``n_pred - n_true``.
    abs_count_error : int
        ``abs(n_pred - n_true)``.

    Examples
    --------
    >>> labels = np.array([[1, 0], [0, 2]])
    >>> evaluate_labels(labels, labels).as_dict()["dsb_score"]
    1.0
    """

    pixel_accuracy: float
    foreground_iou: float
    dice: float
    precision: float
    recall: float
    f1: float
    dsb_score: float
    n_true: int
    n_pred: int
    count_error: int
    abs_count_error: int

    def as_dict(self) -> dict[str, float | int]:
        """Return the scores as a plain ``{field name: value}`` dict.

        Examples
        --------
        >>> labels = np.array([[1, 0], [0, 2]])
        >>> evaluate_labels(labels, labels).as_dict()["n_true"]
        2
        """
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------
# Pixel-level scores
# --------------------------------------------------------------------------------------


def _foreground_counts(true_array: np.ndarray, pred_array: np.ndarray) -> tuple[int, int, int]:
    """Return (pixels in both masks, pixels in the true mask, pixels in the predicted mask)."""
    true_mask = true_array > 0
    pred_mask = pred_array > 0
    both = int(np.count_nonzero(true_mask & pred_mask))
    return both, int(np.count_nonzero(true_mask)), int(np.count_nonzero(pred_mask))


def _pixel_scores(true_array: np.ndarray, pred_array: np.ndarray) -> tuple[float, float, float]:
    """Return (pixel accuracy, foreground IoU, Dice) of two checked label images."""
    both, true_area, pred_area = _foreground_counts(true_array, pred_array)
    disagreeing = true_area + pred_area - 2 * both
    accuracy = 1.0 - disagreeing / true_array.size
    both_empty = true_area == 0 and pred_area == 0
    union = true_area + pred_area - both
    iou = ratio(both, union, both_empty)
    dice_value = ratio(2 * both, true_area + pred_area, both_empty)
    return float(accuracy), iou, dice_value


def pixel_accuracy(true_labels: np.ndarray, pred_labels: np.ndarray) -> float:
    """Return the fraction of pixels whose foreground/background class agrees.

    Parameters
    ----------
    true_labels, pred_labels : array_like of int, shape (H, W)
        Label images; only ``labels > 0`` (foreground) matters.

    Returns
    -------
    float
        Score in [0, 1].

    Raises
    ------
    InputTypeError, InputError
        If a label image is invalid (see :func:`iou_matrix`).

    Examples
    --------
    >>> pixel_accuracy(np.array([[1, 1, 0, 0]]), np.array([[3, 0, 0, 0]]))
    0.75
    """
    return _pixel_scores(*as_label_pair(true_labels, pred_labels))[0]


def foreground_iou(true_labels: np.ndarray, pred_labels: np.ndarray) -> float:
    """Return the IoU (Jaccard index) of the two foreground masks.

    Parameters
    ----------
    true_labels, pred_labels : array_like of int, shape (H, W)
        Label images; only ``labels > 0`` (foreground) matters.

    Returns
    -------
    float
        Score in [0, 1]; 1.0 when both masks are empty.

    Raises
    ------
    InputTypeError, InputError
        If a label image is invalid (see :func:`iou_matrix`).

    Examples
    --------
    >>> foreground_iou(np.array([[1, 1, 0, 0]]), np.array([[3, 0, 0, 0]]))
    0.5
    """
    return _pixel_scores(*as_label_pair(true_labels, pred_labels))[1]


def dice(true_labels: np.ndarray, pred_labels: np.ndarray) -> float:
    """Return the Dice coefficient (F1 of pixels) of the two foreground masks.

    Parameters
    ----------
    true_labels, pred_labels : array_like of int, shape (H, W)
        Label images; only ``labels > 0`` (foreground) matters.

    Returns
    -------
    float
        ``2 |T & P| / (|T| + |P|)`` in [0, 1]; 1.0 when both masks are empty.

    Raises
    ------
    InputTypeError, InputError
        If a label image is invalid (see :func:`iou_matrix`).

    Examples
    --------
    >>> dice(np.array([[1, 1, 0, 0]]), np.array([[3, 0, 0, 0]]))  # 2 * 1 / (2 + 1)
    0.6666666666666666
    """
    return _pixel_scores(*as_label_pair(true_labels, pred_labels))[2]


# --------------------------------------------------------------------------------------
# Whole images and datasets
# --------------------------------------------------------------------------------------


def evaluate_labels(true_labels: np.ndarray, pred_labels: np.ndarray) -> ImageScores:
    """Compute every score of one image in one pass.

    Parameters
    ----------
    true_labels, pred_labels : array_like of int, shape (H, W)
        Label images: 0 is background, every other value is one nucleus.

    Returns
    -------
    ImageScores
        Pixel accuracy, foreground IoU, Dice, precision, recall and F1 at
        ``IoU > 0.5``, DSB score, nuclei counts and count errors.

    Raises
    ------
    InputTypeError, InputError
        If a label image is invalid (see :func:`iou_matrix`).

    Examples
    --------
    >>> scores = evaluate_labels(np.array([[1, 1, 0, 2]]), np.array([[1, 1, 0, 0]]))
    >>> scores.recall, scores.count_error, scores.abs_count_error
    (0.5, -1, 1)
    """
    true_array, pred_array = as_label_pair(true_labels, pred_labels)
    accuracy, iou, dice_value = _pixel_scores(true_array, pred_array)
    overlaps = label_overlaps(true_array, pred_array)
    matching = matching_from_overlaps(overlaps, 0.5)
    signed_error = matching.n_pred - matching.n_true
    return ImageScores(
        pixel_accuracy=accuracy,
        foreground_iou=iou,
        dice=dice_value,
        precision=matching.precision,
        recall=matching.recall,
        f1=matching.f1,
        dsb_score=dsb_from_overlaps(overlaps),
        n_true=matching.n_true,
        n_pred=matching.n_pred,
        count_error=signed_error,
        abs_count_error=abs(signed_error),
    )


_MEAN_FIELDS = (
    "pixel_accuracy",
    "foreground_iou",
    "dice",
    "precision",
    "recall",
    "f1",
    "dsb_score",
)


def summarize(scores: Iterable[ImageScores]) -> dict[str, float | int]:
    """Average the scores of many images.

    Parameters
    ----------
    scores : iterable of ImageScores
        One entry per image, from :func:`evaluate_labels`.

    Returns
    -------
    dict
        ``n_images``; ``mean_<score>`` for pixel_accuracy, foreground_iou, dice,
        precision, recall, f1 and dsb_score (unweighted means over images);
        ``total_true`` and ``total_pred`` (nuclei summed over images);
        ``mean_count_error`` (signed), ``mean_abs_count_error`` and
        ``mean_relative_count_error``: the mean of ``abs_count_error / max(n_true, 1)``
        (an image without true nuclei is divided by 1).

    Raises
    ------
    InputTypeError
        If an entry is not an :class:`ImageScores`.
    InputError
        If there are no entries.

    Examples
    --------
    >>> perfect = evaluate_labels(np.array([[1, 0, 2]]), np.array([[1, 0, 2]]))
    >>> empty = evaluate_labels(np.array([[1, 0, 2]]), np.array([[0, 0, 0]]))
    >>> summary = summarize([perfect, empty])
    >>> summary["mean_f1"], summary["total_pred"], summary["mean_relative_count_error"]
    (0.5, 2, 0.5)
    """
    if isinstance(scores, (str, bytes)) or not isinstance(scores, Iterable):
        raise InputTypeError(f"scores must be a list of ImageScores, got {type(scores).__name__}")
    try:
        entries = list(scores)
    except TypeError:  # iterable in name only, e.g. a 0-d numpy array
        raise InputTypeError(
            f"scores must be a list of ImageScores, got {type(scores).__name__}"
        ) from None
    if not entries:
        raise InputError("scores is empty; need the scores of at least one image")
    for position, entry in enumerate(entries):
        if not isinstance(entry, ImageScores):
            raise InputTypeError(
                f"scores[{position}] must be an ImageScores, got {type(entry).__name__}"
            )
    summary: dict[str, float | int] = {"n_images": len(entries)}
    for field in _MEAN_FIELDS:
        summary[f"mean_{field}"] = float(np.mean([getattr(entry, field) for entry in entries]))
    summary["total_true"] = sum(entry.n_true for entry in entries)
    summary["total_pred"] = sum(entry.n_pred for entry in entries)
    summary["mean_count_error"] = float(np.mean([entry.count_error for entry in entries]))
    summary["mean_abs_count_error"] = float(np.mean([entry.abs_count_error for entry in entries]))
    relative_errors = [entry.abs_count_error / max(entry.n_true, 1) for entry in entries]
    summary["mean_relative_count_error"] = float(np.mean(relative_errors))
    return summary
