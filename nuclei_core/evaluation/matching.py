"""Matching the nuclei of two label images: IoU table, matches at a threshold, DSB score.

:func:`iou_matrix` gives the IoU of every (true, predicted) pair,
:func:`match_labels` the one-to-one matches at an IoU threshold with precision,
recall and F1 (:class:`Matching`), :func:`dsb_score` the 2018 Data Science Bowl
score and :func:`count_error` the difference in counts. The matching rule and what
empty images score are those of :mod:`nuclei_core.evaluation.metrics`, which hands
these names on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nuclei_core.checks import check_fraction
from nuclei_core.evaluation.overlaps import (
    Overlaps,
    as_label_pair,
    compact_labels,
    label_overlaps,
    ratio,
    read_only,
    select_matches,
)

DSB_THRESHOLDS = (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95)
"""IoU thresholds of the 2018 Data Science Bowl score (a match needs ``IoU > t``)."""


# --------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Matching:
    """One-to-one matching of true and predicted nuclei at one IoU threshold.

    Attributes
    ----------
    threshold : float
        A pair matches when its IoU is strictly greater than this.
    n_true, n_pred : int
        Number of nuclei in the true and in the predicted label image.
    tp : int
        Matched pairs (true positives).
    fp : int
        Predicted nuclei without a match (false positives), ``n_pred - tp``.
    fn : int
        True nuclei without a match (false negatives), ``n_true - tp``.
    precision, recall, f1 : float
        ``tp / (tp + fp)``, ``tp / (tp + fn)`` and ``2 tp / (2 tp + fp + fn)``; 1.0
        when both images are empty, 0.0 when only the denominator is zero.
    mean_matched_iou : float
        Mean IoU of the matched pairs; 1.0 when both images are empty, 0.0 when there
        is no matched pair otherwise.
    true_ids, pred_ids : numpy.ndarray
        Sorted label ids of the true and of the predicted nuclei.
    matched_pairs : numpy.ndarray
        ``(tp, 2)`` int64 array of ``(true_id, pred_id)`` rows, sorted by true id.
    tp_pred_ids, fp_pred_ids : numpy.ndarray
        Sorted ids of the matched and of the unmatched predicted nuclei.
    fn_true_ids : numpy.ndarray
        Sorted ids of the unmatched true nuclei.

    Examples
    --------
    >>> labels = np.array([[1, 1, 0], [0, 0, 2]])
    >>> matching = match_labels(labels, labels)
    >>> matching.tp, matching.f1
    (2, 1.0)
    """

    threshold: float
    n_true: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    mean_matched_iou: float
    true_ids: np.ndarray
    pred_ids: np.ndarray
    matched_pairs: np.ndarray
    tp_pred_ids: np.ndarray
    fp_pred_ids: np.ndarray
    fn_true_ids: np.ndarray


def matching_from_overlaps(overlaps: Overlaps, threshold: float) -> Matching:
    rows, cols, ious = select_matches(overlaps, threshold)
    true_ids = overlaps.true.ids
    pred_ids = overlaps.pred.ids
    n_true = overlaps.true.count
    n_pred = overlaps.pred.count
    tp = int(rows.size)
    fp = n_pred - tp
    fn = n_true - tp
    both_empty = n_true == 0 and n_pred == 0
    pred_is_matched = np.zeros(n_pred, dtype=bool)
    pred_is_matched[cols] = True
    true_is_matched = np.zeros(n_true, dtype=bool)
    true_is_matched[rows] = True
    matched_pairs = np.stack([true_ids[rows], pred_ids[cols]], axis=1).reshape(tp, 2)
    return Matching(
        threshold=threshold,
        n_true=n_true,
        n_pred=n_pred,
        tp=tp,
        fp=fp,
        fn=fn,
        precision=ratio(tp, tp + fp, both_empty),
        recall=ratio(tp, tp + fn, both_empty),
        f1=ratio(2 * tp, 2 * tp + fp + fn, both_empty),
        mean_matched_iou=ratio(float(ious.sum()), tp, both_empty),
        true_ids=read_only(true_ids.copy()),
        pred_ids=read_only(pred_ids.copy()),
        matched_pairs=read_only(matched_pairs),
        tp_pred_ids=read_only(pred_ids[pred_is_matched]),
        fp_pred_ids=read_only(pred_ids[~pred_is_matched]),
        fn_true_ids=read_only(true_ids[~true_is_matched]),
    )


def dsb_from_overlaps(overlaps: Overlaps) -> float:
    n_true = overlaps.true.count
    n_pred = overlaps.pred.count
    if n_true == 0 and n_pred == 0:
        return 1.0
    scores = []
    for threshold in DSB_THRESHOLDS:
        # For thresholds >= 0.5 the pairs with IoU > threshold are already one-to-one.
        tp = int(np.count_nonzero(overlaps.ious > threshold))
        scores.append(tp / (n_true + n_pred - tp))
    return float(np.mean(scores))


# --------------------------------------------------------------------------------------
# Object-level scores
# --------------------------------------------------------------------------------------


def iou_matrix(true_labels: np.ndarray, pred_labels: np.ndarray) -> np.ndarray:
    """Return the IoU of every pair of true and predicted nuclei.

    Parameters
    ----------
    true_labels, pred_labels : array_like of int, shape (H, W)
        Label images: 0 is background, every other value is one nucleus.

    Returns
    -------
    numpy.ndarray of float64, shape (n_true, n_pred)
        Entry ``[i, j]`` is the IoU of the ``i``-th smallest true label id and the
        ``j``-th smallest predicted label id (the ``true_ids`` and ``pred_ids`` of
        :func:`match_labels`).  All intersections come from one table of pixel pairs,
        so the cost is about that of a pass over the image.

    Raises
    ------
    InputTypeError
        If an argument is not an integer, bool or float array (or convertible to one).
    InputError
        If an argument is not 2-D, is empty, has negative, NaN or non-integer labels,
        or if the shapes differ.

    Examples
    --------
    >>> true_labels = np.array([[1, 1, 0, 0],
    ...                         [0, 0, 0, 2]])
    >>> pred_labels = np.array([[5, 0, 0, 0],
    ...                         [0, 0, 0, 0]])
    >>> iou_matrix(true_labels, pred_labels)
    array([[0.5],
           [0. ]])
    """
    overlaps = label_overlaps(*as_label_pair(true_labels, pred_labels))
    matrix = np.zeros((overlaps.true.count, overlaps.pred.count))
    matrix[overlaps.rows, overlaps.cols] = overlaps.ious
    return matrix


def match_labels(
    true_labels: np.ndarray, pred_labels: np.ndarray, threshold: float = 0.5
) -> Matching:
    """Match true and predicted nuclei one-to-one and count hits and misses.

    A pair can match when its IoU is strictly greater than `threshold`.  For
    thresholds >= 0.5 such pairs never compete, so all of them match.  Below 0.5
    the pairs are chosen by an optimal assignment that maximises the number of
    matches, then their total IoU.

    Parameters
    ----------
    true_labels, pred_labels : array_like of int, shape (H, W)
        Label images: 0 is background, every other value is one nucleus.
    threshold : float, default 0.5
        IoU threshold in [0, 1]; a match needs ``IoU > threshold`` (so 1.0 matches
        nothing).

    Returns
    -------
    Matching
        Counts, precision, recall, F1, mean matched IoU and the ids of the matched,
        false-positive and false-negative nuclei.  When both images are empty,
        precision, recall and F1 are 1.0.

    Raises
    ------
    InputTypeError
        If a label image has the wrong type or `threshold` is not a number.
    InputError
        If a label image is invalid (see :func:`iou_matrix`) or `threshold` is
        outside [0, 1].

    Examples
    --------
    >>> true_labels = np.array([[1, 1, 0, 2]])
    >>> pred_labels = np.array([[1, 1, 0, 0]])
    >>> matching = match_labels(true_labels, pred_labels)
    >>> matching.tp, matching.fp, matching.fn, matching.recall
    (1, 0, 1, 0.5)
    >>> matching.fn_true_ids
    array([2])
    """
    checked_threshold = check_fraction(threshold, "threshold")
    overlaps = label_overlaps(*as_label_pair(true_labels, pred_labels))
    return matching_from_overlaps(overlaps, checked_threshold)


def dsb_score(true_labels: np.ndarray, pred_labels: np.ndarray) -> float:
    """Return the 2018 Data Science Bowl score of one image.

    The score is the mean over the IoU thresholds 0.50, 0.55, ..., 0.95
    (:data:`DSB_THRESHOLDS`) of ``TP / (TP + FP + FN)``, where a predicted nucleus is
    a true positive when its IoU with a true nucleus is strictly greater than the
    threshold, as in the competition.

    Parameters
    ----------
    true_labels, pred_labels : array_like of int, shape (H, W)
        Label images: 0 is background, every other value is one nucleus.

    Returns
    -------
    float
        Score in [0, 1]; 1.0 when both images are empty.

    Raises
    ------
    InputTypeError, InputError
        If a label image is invalid (see :func:`iou_matrix`).

    Examples
    --------
    >>> true_labels = np.array([[1, 1, 1, 1]])
    >>> pred_labels = np.array([[1, 1, 1, 0]])
    >>> dsb_score(true_labels, pred_labels)  # IoU 0.75 counts at 0.50 ... 0.70
    0.5
    """
    return dsb_from_overlaps(label_overlaps(*as_label_pair(true_labels, pred_labels)))


def count_error(true_labels: np.ndarray, pred_labels: np.ndarray) -> int:
    """Return the signed error of the nuclei count, ``n_pred - n_true``.

    Parameters
    ----------
    true_labels, pred_labels : array_like of int, shape (H, W)
        Label images: 0 is background, every other value is one nucleus.

    Returns
    -------
    int
        Positive when nuclei are over-counted (split), negative when under-counted
        (merged or missed).

    Raises
    ------
    InputTypeError, InputError
        If a label image is invalid (see :func:`iou_matrix`).

    Examples
    --------
    >>> count_error(np.array([[1, 0, 2]]), np.array([[7, 7, 7]]))
    -1
    """
    true_array, pred_array = as_label_pair(true_labels, pred_labels)
    return compact_labels(pred_array).count - compact_labels(true_array).count
