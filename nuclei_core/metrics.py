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
* an image of error categories to colour an overlay (:func:`error_map`); drawing
  itself is left to the caller.

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
from scipy.optimize import linear_sum_assignment

from nuclei_core.checks import as_label_image, check_fraction, check_same_shape
from nuclei_core.errors import InputError, InputTypeError

ERROR_BACKGROUND = 0
"""Code of :func:`error_map` for background and for true-nucleus pixels that a prediction covers."""
ERROR_TP = 1
"""Code of :func:`error_map` for pixels of a predicted nucleus that matches a true nucleus."""
ERROR_FP = 2
"""Code of :func:`error_map` for pixels of a predicted nucleus that matches nothing."""
ERROR_FN = 3
"""Code of :func:`error_map` for pixels of a missed true nucleus that no prediction covers."""

DSB_THRESHOLDS = (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95)
"""IoU thresholds of the 2018 Data Science Bowl score (a match needs ``IoU > t``)."""

# Above this many cells the (n_true + 1) x (n_pred + 1) pixel-pair table is counted
# sparsely with np.unique instead of densely with np.bincount.
_DENSE_TABLE_LIMIT = 1 << 22


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


@dataclass(frozen=True)
class _CompactLabels:
    """A label image renumbered 1..n (0 stays background) and its original ids."""

    ids: np.ndarray
    image: np.ndarray

    @property
    def count(self) -> int:
        return int(self.ids.size)


@dataclass(frozen=True)
class _Overlaps:
    """Every (true, predicted) pair of nuclei that share pixels, with its IoU.

    ``rows`` and ``cols`` are 0-based positions in ``true.ids`` and ``pred.ids``.
    """

    true: _CompactLabels
    pred: _CompactLabels
    rows: np.ndarray
    cols: np.ndarray
    ious: np.ndarray


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------


def _as_label_pair(true_labels: object, pred_labels: object) -> tuple[np.ndarray, np.ndarray]:
    """Check both label images (converted to int64) and that they have the same shape."""
    true_array = as_label_image(true_labels, "true_labels")
    pred_array = as_label_image(pred_labels, "pred_labels")
    check_same_shape(pred_array, "pred_labels", true_array.shape, reference="true_labels")
    return true_array, pred_array


# --------------------------------------------------------------------------------------
# Overlaps and matching
# --------------------------------------------------------------------------------------


def _compact_labels(labels: np.ndarray) -> _CompactLabels:
    """Renumber the nuclei of a checked label image to 1..n, keeping 0 as background."""
    flat = labels.ravel()
    largest = int(flat.max())
    if largest <= 4 * flat.size + 1024:
        present = np.bincount(flat, minlength=largest + 1) > 0
        present[0] = False
        ids = np.flatnonzero(present).astype(np.int64)
        lookup = np.zeros(largest + 1, dtype=np.intp)
        lookup[ids] = np.arange(1, ids.size + 1)
        return _CompactLabels(ids=ids, image=lookup[labels])
    values, inverse = np.unique(flat, return_inverse=True)
    if values[0] == 0:
        ids = values[1:]
    else:
        ids = values
        inverse = inverse + 1
    return _CompactLabels(ids=ids.astype(np.int64), image=inverse.reshape(labels.shape))


def _pair_counts(true: _CompactLabels, pred: _CompactLabels) -> tuple[np.ndarray, np.ndarray]:
    """Return the non-zero cells of the pixel-pair table as (cell codes, pixel counts).

    The code of a cell is ``true_index * (pred.count + 1) + pred_index``.
    """
    n_columns = pred.count + 1
    codes = true.image.ravel().astype(np.int64) * n_columns + pred.image.ravel()
    n_cells = (true.count + 1) * n_columns
    if n_cells <= _DENSE_TABLE_LIMIT:
        counts = np.bincount(codes, minlength=n_cells)
        cells = np.flatnonzero(counts)
        return cells, counts[cells]
    return np.unique(codes, return_counts=True)


def _overlaps(true_array: np.ndarray, pred_array: np.ndarray) -> _Overlaps:
    """Find every overlapping pair of nuclei and its IoU from one pixel-pair table."""
    true = _compact_labels(true_array)
    pred = _compact_labels(pred_array)
    cells, intersections = _pair_counts(true, pred)
    true_index, pred_index = np.divmod(cells, pred.count + 1)
    true_areas = np.bincount(true_index, weights=intersections, minlength=true.count + 1)
    pred_areas = np.bincount(pred_index, weights=intersections, minlength=pred.count + 1)
    both_objects = (true_index > 0) & (pred_index > 0)
    true_index = true_index[both_objects]
    pred_index = pred_index[both_objects]
    intersections = intersections[both_objects]
    unions = true_areas[true_index] + pred_areas[pred_index] - intersections
    return _Overlaps(
        true=true,
        pred=pred,
        rows=true_index - 1,
        cols=pred_index - 1,
        ious=intersections / unions,
    )


def _is_one_to_one(rows: np.ndarray, cols: np.ndarray) -> bool:
    return np.unique(rows).size == rows.size and np.unique(cols).size == cols.size


def _optimal_assignment(
    rows: np.ndarray, cols: np.ndarray, ious: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Choose a one-to-one subset of candidate pairs: most pairs first, then most IoU.

    Each candidate costs ``-(1 + iou / (2 k))`` with ``k`` the largest possible
    number of pairs, so the IoU bonus of a whole matching (< 0.5) never outweighs one
    more pair.
    """
    row_values, row_positions = np.unique(rows, return_inverse=True)
    col_values, col_positions = np.unique(cols, return_inverse=True)
    most_pairs = min(row_values.size, col_values.size)
    is_candidate = np.zeros((row_values.size, col_values.size), dtype=bool)
    is_candidate[row_positions, col_positions] = True
    candidate_ious = np.zeros(is_candidate.shape)
    candidate_ious[row_positions, col_positions] = ious
    costs = -(is_candidate + candidate_ious / (2.0 * most_pairs))
    chosen_rows, chosen_cols = linear_sum_assignment(costs)
    keep = is_candidate[chosen_rows, chosen_cols]
    chosen_rows = chosen_rows[keep]
    chosen_cols = chosen_cols[keep]
    chosen_ious = candidate_ious[chosen_rows, chosen_cols]
    return row_values[chosen_rows], col_values[chosen_cols], chosen_ious


def _select_matches(
    overlaps: _Overlaps, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (rows, cols, ious) of the matched pairs, sorted by row."""
    is_candidate = overlaps.ious > threshold
    rows = overlaps.rows[is_candidate]
    cols = overlaps.cols[is_candidate]
    ious = overlaps.ious[is_candidate]
    if not _is_one_to_one(rows, cols):
        rows, cols, ious = _optimal_assignment(rows, cols, ious)
    order = np.argsort(rows, kind="stable")
    return rows[order], cols[order], ious[order]


def _ratio(numerator: float, denominator: float, both_empty: bool) -> float:
    """``numerator / denominator``, or the empty-image convention when it is 0 / 0."""
    if denominator == 0:
        return 1.0 if both_empty else 0.0
    return float(numerator / denominator)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _matching_from_overlaps(overlaps: _Overlaps, threshold: float) -> Matching:
    rows, cols, ious = _select_matches(overlaps, threshold)
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
        precision=_ratio(tp, tp + fp, both_empty),
        recall=_ratio(tp, tp + fn, both_empty),
        f1=_ratio(2 * tp, 2 * tp + fp + fn, both_empty),
        mean_matched_iou=_ratio(float(ious.sum()), tp, both_empty),
        true_ids=_read_only(true_ids.copy()),
        pred_ids=_read_only(pred_ids.copy()),
        matched_pairs=_read_only(matched_pairs),
        tp_pred_ids=_read_only(pred_ids[pred_is_matched]),
        fp_pred_ids=_read_only(pred_ids[~pred_is_matched]),
        fn_true_ids=_read_only(true_ids[~true_is_matched]),
    )


def _dsb_from_overlaps(overlaps: _Overlaps) -> float:
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
    overlaps = _overlaps(*_as_label_pair(true_labels, pred_labels))
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
    overlaps = _overlaps(*_as_label_pair(true_labels, pred_labels))
    return _matching_from_overlaps(overlaps, checked_threshold)


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
    return _dsb_from_overlaps(_overlaps(*_as_label_pair(true_labels, pred_labels)))


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
    true_array, pred_array = _as_label_pair(true_labels, pred_labels)
    return _compact_labels(pred_array).count - _compact_labels(true_array).count


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
    iou = _ratio(both, union, both_empty)
    dice_value = _ratio(2 * both, true_area + pred_area, both_empty)
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
    return _pixel_scores(*_as_label_pair(true_labels, pred_labels))[0]


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
    return _pixel_scores(*_as_label_pair(true_labels, pred_labels))[1]


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
    return _pixel_scores(*_as_label_pair(true_labels, pred_labels))[2]


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
    true_array, pred_array = _as_label_pair(true_labels, pred_labels)
    accuracy, iou, dice_value = _pixel_scores(true_array, pred_array)
    overlaps = _overlaps(true_array, pred_array)
    matching = _matching_from_overlaps(overlaps, 0.5)
    signed_error = matching.n_pred - matching.n_true
    return ImageScores(
        pixel_accuracy=accuracy,
        foreground_iou=iou,
        dice=dice_value,
        precision=matching.precision,
        recall=matching.recall,
        f1=matching.f1,
        dsb_score=_dsb_from_overlaps(overlaps),
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


def error_map(
    true_labels: np.ndarray, pred_labels: np.ndarray, threshold: float = 0.5
) -> np.ndarray:
    """Return an image of error categories, to colour an overlay.

    Parameters
    ----------
    true_labels, pred_labels : array_like of int, shape (H, W)
        Label images: 0 is background, every other value is one nucleus.
    threshold : float, default 0.5
        IoU threshold of the matching, as in :func:`match_labels`.

    Returns
    -------
    numpy.ndarray of uint8, shape (H, W)
        :data:`ERROR_TP` (1) on the pixels of matched predicted nuclei,
        :data:`ERROR_FP` (2) on the pixels of unmatched predicted nuclei,
        :data:`ERROR_FN` (3) on the pixels of unmatched true nuclei that no predicted
        nucleus covers, and :data:`ERROR_BACKGROUND` (0) elsewhere.

    Raises
    ------
    InputTypeError, InputError
        If a label image or `threshold` is invalid (see :func:`match_labels`).

    Examples
    --------
    >>> true_labels = np.array([[1, 1, 0, 2, 2]])
    >>> pred_labels = np.array([[1, 1, 4, 0, 0]])
    >>> error_map(true_labels, pred_labels)
    array([[1, 1, 2, 3, 3]], dtype=uint8)
    """
    checked_threshold = check_fraction(threshold, "threshold")
    overlaps = _overlaps(*_as_label_pair(true_labels, pred_labels))
    rows, cols, _ = _select_matches(overlaps, checked_threshold)
    pred_codes = np.full(overlaps.pred.count + 1, ERROR_FP, dtype=np.uint8)
    pred_codes[0] = ERROR_BACKGROUND
    pred_codes[cols + 1] = ERROR_TP
    categories = pred_codes[overlaps.pred.image]
    true_is_missed = np.ones(overlaps.true.count + 1, dtype=bool)
    true_is_missed[0] = False
    true_is_missed[rows + 1] = False
    uncovered_miss = true_is_missed[overlaps.true.image] & (overlaps.pred.image == 0)
    categories[uncovered_miss] = ERROR_FN
    return categories


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
