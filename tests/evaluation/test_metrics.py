"""Tests of nuclei_core.evaluation.metrics: hand-computed 6x6 cases, input checks and properties."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nuclei_core.errors import InputError, InputTypeError
from nuclei_core.evaluation import overlaps
from nuclei_core.evaluation.metrics import (
    DSB_THRESHOLDS,
    ERROR_BACKGROUND,
    ERROR_FN,
    ERROR_FP,
    ERROR_TP,
    ImageScores,
    Matching,
    count_error,
    dice,
    dsb_score,
    error_map,
    evaluate_labels,
    foreground_iou,
    iou_matrix,
    match_labels,
    pixel_accuracy,
    summarize,
)

# --------------------------------------------------------------------------------------
# Hand-made 6x6 cases.  Areas and IoUs are written next to each case.
# --------------------------------------------------------------------------------------

EMPTY = np.zeros((6, 6), dtype=np.int32)

# One 3x3 nucleus (9 px) and the same nucleus shifted right by one column:
# intersection 6, union 12, IoU exactly 0.5.
SHIFT_TRUE = np.array(
    [
        [0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]
)
SHIFT_PRED = np.array(
    [
        [0, 0, 0, 0, 0, 0],
        [0, 0, 1, 1, 1, 0],
        [0, 0, 1, 1, 1, 0],
        [0, 0, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]
)

# Two nuclei: 1 (8 px) is predicted with 6 of its pixels (IoU 6 / 8 = 0.75),
# 2 (4 px) is predicted exactly (IoU 1).
TWO_TRUE = np.array(
    [
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 2, 2, 0],
        [0, 0, 0, 2, 2, 0],
    ]
)
TWO_PRED = np.array(
    [
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 2, 2, 0],
        [0, 0, 0, 2, 2, 0],
    ]
)

# Split: one true nucleus (16 px) predicted as 1 (12 px, IoU 0.75) and 2 (4 px, IoU 0.25).
SPLIT_TRUE = np.array(
    [
        [0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 1, 0],
        [0, 1, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 0],
    ]
)
SPLIT_PRED = np.array(
    [
        [0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 2, 0],
        [0, 1, 1, 1, 2, 0],
        [0, 1, 1, 1, 2, 0],
        [0, 1, 1, 1, 2, 0],
        [0, 0, 0, 0, 0, 0],
    ]
)

# Merge: true 1 (8 px) and 2 (8 px) covered by one prediction (12 px):
# IoU(1, 1) = 8 / 12 = 2/3, IoU(2, 1) = 4 / 16 = 0.25; column 4 of nucleus 2 is uncovered.
MERGE_TRUE = np.array(
    [
        [0, 0, 0, 0, 0, 0],
        [0, 1, 1, 2, 2, 0],
        [0, 1, 1, 2, 2, 0],
        [0, 1, 1, 2, 2, 0],
        [0, 1, 1, 2, 2, 0],
        [0, 0, 0, 0, 0, 0],
    ]
)
MERGE_PRED = np.array(
    [
        [0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]
)

# Full-height stripes where picking the best pair first loses a match:
# true 1 = cols 1-3, true 2 = cols 4-5; pred 1 = cols 2-4, pred 2 = cols 0-1.
# IoU(t1, p1) = 2/4 = 0.5, IoU(t1, p2) = 1/4, IoU(t2, p1) = 1/4, IoU(t2, p2) = 0.
STRIPES_TRUE = np.tile(np.array([0, 1, 1, 1, 2, 2]), (6, 1))
STRIPES_PRED = np.tile(np.array([2, 2, 1, 1, 1, 0]), (6, 1))


def _relabel(labels: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """Return a copy of `labels` with every id in `mapping` replaced, as int64."""
    relabelled = labels.astype(np.int64)
    for old_id, new_id in mapping.items():
        relabelled[labels == old_id] = new_id
    return relabelled


def _ids(values) -> list[int]:
    return [int(value) for value in values]


def _pairs(matching: Matching) -> list[list[int]]:
    return matching.matched_pairs.tolist()


# --------------------------------------------------------------------------------------
# iou_matrix
# --------------------------------------------------------------------------------------


def test_iou_matrix_of_identical_images_is_identity():
    np.testing.assert_array_equal(iou_matrix(TWO_TRUE, TWO_TRUE), np.eye(2))


def test_iou_matrix_of_shifted_nucleus_is_one_half():
    np.testing.assert_array_equal(iou_matrix(SHIFT_TRUE, SHIFT_PRED), [[0.5]])


def test_iou_matrix_of_split_has_one_row_two_columns():
    np.testing.assert_allclose(iou_matrix(SPLIT_TRUE, SPLIT_PRED), [[0.75, 0.25]])


def test_iou_matrix_of_merge_has_two_rows_one_column():
    np.testing.assert_allclose(iou_matrix(MERGE_TRUE, MERGE_PRED), [[2 / 3], [0.25]])


def test_iou_matrix_of_stripes():
    np.testing.assert_allclose(iou_matrix(STRIPES_TRUE, STRIPES_PRED), [[0.5, 0.25], [0.25, 0]])


def test_iou_matrix_orders_rows_and_columns_by_label_id():
    true_labels = _relabel(TWO_TRUE, {1: 7, 2: 3})
    pred_labels = _relabel(TWO_PRED, {1: 10, 2: 2})
    # rows: true 3 (the exact square), true 7; columns: pred 2, pred 10
    np.testing.assert_allclose(iou_matrix(true_labels, pred_labels), [[1.0, 0.0], [0.0, 0.75]])


@pytest.mark.parametrize(
    ("true_labels", "pred_labels", "shape"),
    [(EMPTY, SHIFT_PRED, (0, 1)), (SHIFT_TRUE, EMPTY, (1, 0)), (EMPTY, EMPTY, (0, 0))],
)
def test_iou_matrix_shape_with_empty_images(true_labels, pred_labels, shape):
    matrix = iou_matrix(true_labels, pred_labels)
    assert matrix.shape == shape
    assert matrix.dtype == np.float64


def test_iou_matrix_sparse_table_agrees_with_dense(monkeypatch):
    dense = iou_matrix(MERGE_TRUE, MERGE_PRED)
    monkeypatch.setattr(overlaps, "_DENSE_TABLE_LIMIT", 0)
    np.testing.assert_array_equal(iou_matrix(MERGE_TRUE, MERGE_PRED), dense)


def _grid_labels(offset: int) -> np.ndarray:
    """1024 x 1024 image with 400 square nuclei of 40 x 40 px, shifted right by `offset`."""
    labels = np.zeros((1024, 1024), dtype=np.int32)
    for index in range(400):
        row, col = divmod(index, 20)
        top = 10 + 50 * row
        left = 10 + 50 * col + offset
        labels[top : top + 40, left : left + 40] = index + 1
    return labels


def test_iou_matrix_on_a_large_image_with_many_nuclei():
    matrix = iou_matrix(_grid_labels(0), _grid_labels(2))
    assert matrix.shape == (400, 400)
    np.testing.assert_allclose(np.diag(matrix), np.full(400, 38 / 42))
    assert np.count_nonzero(matrix) == 400


# --------------------------------------------------------------------------------------
# match_labels
# --------------------------------------------------------------------------------------


def test_match_labels_perfect_match():
    matching = match_labels(TWO_TRUE, TWO_TRUE)
    assert (matching.tp, matching.fp, matching.fn) == (2, 0, 0)
    assert (matching.precision, matching.recall, matching.f1) == (1.0, 1.0, 1.0)
    assert matching.mean_matched_iou == 1.0
    assert _pairs(matching) == [[1, 1], [2, 2]]


def test_match_labels_perfect_match_with_swapped_ids():
    matching = match_labels(TWO_TRUE, _relabel(TWO_TRUE, {1: 2, 2: 1}))
    assert matching.tp == 2
    assert _pairs(matching) == [[1, 2], [2, 1]]


def test_match_labels_partial_overlap_counts_and_mean_iou():
    matching = match_labels(TWO_TRUE, TWO_PRED)
    assert (matching.n_true, matching.n_pred) == (2, 2)
    assert (matching.tp, matching.fp, matching.fn) == (2, 0, 0)
    assert matching.mean_matched_iou == pytest.approx(0.875)


def test_match_labels_iou_equal_to_threshold_does_not_match():
    matching = match_labels(TWO_TRUE, TWO_PRED, threshold=0.75)
    assert (matching.tp, matching.fp, matching.fn) == (1, 1, 1)
    assert _pairs(matching) == [[2, 2]]
    assert matching.mean_matched_iou == 1.0


def test_match_labels_shift_at_exactly_one_half_is_no_match():
    matching = match_labels(SHIFT_TRUE, SHIFT_PRED, threshold=0.5)
    assert (matching.tp, matching.fp, matching.fn) == (0, 1, 1)
    assert (matching.precision, matching.recall, matching.f1) == (0.0, 0.0, 0.0)
    assert matching.mean_matched_iou == 0.0
    assert _ids(matching.fp_pred_ids) == [1]
    assert _ids(matching.fn_true_ids) == [1]
    assert matching.matched_pairs.shape == (0, 2)


def test_match_labels_shift_just_below_one_half_matches():
    matching = match_labels(SHIFT_TRUE, SHIFT_PRED, threshold=0.49)
    assert (matching.tp, matching.fp, matching.fn) == (1, 0, 0)
    assert matching.mean_matched_iou == 0.5
    assert matching.threshold == 0.49


def test_match_labels_split():
    matching = match_labels(SPLIT_TRUE, SPLIT_PRED)
    assert (matching.n_true, matching.n_pred) == (1, 2)
    assert (matching.tp, matching.fp, matching.fn) == (1, 1, 0)
    assert matching.precision == 0.5
    assert matching.recall == 1.0
    assert matching.f1 == pytest.approx(2 / 3)
    assert _pairs(matching) == [[1, 1]]
    assert _ids(matching.tp_pred_ids) == [1]
    assert _ids(matching.fp_pred_ids) == [2]
    assert _ids(matching.fn_true_ids) == []


def test_match_labels_split_below_one_half_keeps_the_better_pair():
    # Both predictions pass IoU > 0.2 but only one may match: the one with IoU 0.75.
    matching = match_labels(SPLIT_TRUE, SPLIT_PRED, threshold=0.2)
    assert (matching.tp, matching.fp, matching.fn) == (1, 1, 0)
    assert _pairs(matching) == [[1, 1]]
    assert _ids(matching.fp_pred_ids) == [2]
    assert matching.mean_matched_iou == 0.75


def test_match_labels_merge():
    matching = match_labels(MERGE_TRUE, MERGE_PRED)
    assert (matching.n_true, matching.n_pred) == (2, 1)
    assert (matching.tp, matching.fp, matching.fn) == (1, 0, 1)
    assert (matching.precision, matching.recall) == (1.0, 0.5)
    assert matching.f1 == pytest.approx(2 / 3)
    assert matching.mean_matched_iou == pytest.approx(2 / 3)
    assert _pairs(matching) == [[1, 1]]
    assert _ids(matching.fn_true_ids) == [2]


def test_match_labels_low_threshold_maximises_the_number_of_matches():
    # Taking the best pair (t1, p1, IoU 0.5) first would leave one match only.
    matching = match_labels(STRIPES_TRUE, STRIPES_PRED, threshold=0.2)
    assert matching.tp == 2
    assert _pairs(matching) == [[1, 2], [2, 1]]
    assert matching.mean_matched_iou == 0.25


@pytest.mark.parametrize(("threshold", "pairs"), [(0.3, [[1, 1]]), (0.5, [])])
def test_match_labels_stripes_at_higher_thresholds(threshold, pairs):
    assert _pairs(match_labels(STRIPES_TRUE, STRIPES_PRED, threshold=threshold)) == pairs


def test_match_labels_threshold_zero_matches_any_overlap():
    assert match_labels(SPLIT_TRUE, SPLIT_PRED, threshold=0.0).tp == 1
    assert match_labels(SHIFT_TRUE, SHIFT_PRED, threshold=0).tp == 1


def test_match_labels_threshold_one_matches_nothing():
    matching = match_labels(TWO_TRUE, TWO_TRUE, threshold=1.0)
    assert (matching.tp, matching.fp, matching.fn) == (0, 2, 2)


def test_match_labels_non_consecutive_ids():
    true_labels = _relabel(TWO_TRUE, {1: 7, 2: 3})
    pred_labels = _relabel(TWO_PRED, {1: 10, 2: 2})
    matching = match_labels(true_labels, pred_labels)
    assert _ids(matching.true_ids) == [3, 7]
    assert _ids(matching.pred_ids) == [2, 10]
    assert _pairs(matching) == [[3, 2], [7, 10]]
    assert _ids(matching.tp_pred_ids) == [2, 10]


def test_match_labels_very_large_ids():
    true_labels = _relabel(TWO_TRUE, {1: 10**12, 2: 3})
    pred_labels = _relabel(TWO_PRED, {1: 5, 2: 2**40})
    matching = match_labels(true_labels, pred_labels, threshold=0.75)
    assert _ids(matching.true_ids) == [3, 10**12]
    assert _pairs(matching) == [[3, 2**40]]
    assert _ids(matching.fp_pred_ids) == [5]
    assert _ids(matching.fn_true_ids) == [10**12]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.uint64, np.float32])
def test_match_labels_same_result_for_every_dtype(dtype):
    matching = match_labels(MERGE_TRUE.astype(dtype), MERGE_PRED.astype(dtype))
    assert (matching.tp, matching.fp, matching.fn) == (1, 0, 1)
    assert _pairs(matching) == [[1, 1]]


def test_match_labels_empty_truth():
    matching = match_labels(EMPTY, SHIFT_PRED)
    assert (matching.n_true, matching.n_pred) == (0, 1)
    assert (matching.tp, matching.fp, matching.fn) == (0, 1, 0)
    assert (matching.precision, matching.recall, matching.f1) == (0.0, 0.0, 0.0)
    assert matching.mean_matched_iou == 0.0
    assert _ids(matching.fp_pred_ids) == [1]


def test_match_labels_empty_prediction():
    matching = match_labels(SHIFT_TRUE, EMPTY)
    assert (matching.tp, matching.fp, matching.fn) == (0, 0, 1)
    assert (matching.precision, matching.recall, matching.f1) == (0.0, 0.0, 0.0)
    assert _ids(matching.fn_true_ids) == [1]


def test_match_labels_both_empty():
    matching = match_labels(EMPTY, EMPTY)
    assert (matching.n_true, matching.n_pred) == (0, 0)
    assert (matching.tp, matching.fp, matching.fn) == (0, 0, 0)
    assert (matching.precision, matching.recall, matching.f1) == (1.0, 1.0, 1.0)
    assert matching.mean_matched_iou == 1.0
    assert matching.matched_pairs.shape == (0, 2)
    assert matching.true_ids.size == 0


def test_matching_is_frozen_and_its_arrays_read_only():
    matching = match_labels(TWO_TRUE, TWO_PRED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        matching.tp = 5
    with pytest.raises(ValueError):
        matching.matched_pairs[0, 0] = 9
    with pytest.raises(ValueError):
        matching.true_ids[0] = 9
    with pytest.raises(ValueError):
        matching.tp_pred_ids[0] = 9


# --------------------------------------------------------------------------------------
# dsb_score
# --------------------------------------------------------------------------------------


def test_dsb_thresholds():
    assert DSB_THRESHOLDS == pytest.approx([0.5 + 0.05 * step for step in range(10)])


def test_dsb_score_perfect():
    assert dsb_score(TWO_TRUE, _relabel(TWO_TRUE, {1: 4, 2: 9})) == 1.0


def test_dsb_score_with_matches_at_some_thresholds_only():
    # IoU 1 matches at every threshold; IoU 0.75 at 0.50 ... 0.70 but not at 0.75 (strict):
    # 5 thresholds score 2 / 2 = 1, 5 thresholds score 1 / (1 + 1 + 1) = 1/3.
    assert dsb_score(TWO_TRUE, TWO_PRED) == pytest.approx((5 * 1 + 5 / 3) / 10)


def test_dsb_score_split():
    # IoU 0.75 pair: 5 thresholds with TP 1, FP 1 -> 1/2; 5 thresholds with FP 2, FN 1 -> 0.
    assert dsb_score(SPLIT_TRUE, SPLIT_PRED) == pytest.approx(0.25)


def test_dsb_score_merge():
    # IoU 2/3 beats 0.50, 0.55, 0.60, 0.65 -> 1 / (1 + 0 + 1) = 1/2; otherwise 0.
    assert dsb_score(MERGE_TRUE, MERGE_PRED) == pytest.approx(0.2)


def test_dsb_score_iou_exactly_one_half_scores_zero():
    assert dsb_score(SHIFT_TRUE, SHIFT_PRED) == 0.0


@pytest.mark.parametrize(
    ("true_labels", "pred_labels", "expected"),
    [(EMPTY, SHIFT_PRED, 0.0), (SHIFT_TRUE, EMPTY, 0.0), (EMPTY, EMPTY, 1.0)],
)
def test_dsb_score_empty_images(true_labels, pred_labels, expected):
    assert dsb_score(true_labels, pred_labels) == expected


# --------------------------------------------------------------------------------------
# Pixel-level scores and count error
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("true_labels", "pred_labels", "accuracy", "iou", "dice_value"),
    [
        # 6 pixels differ, foreground 9 and 9 with 6 shared
        (SHIFT_TRUE, SHIFT_PRED, 30 / 36, 0.5, 12 / 18),
        # 4 pixels differ, foreground 16 and 12 with 12 shared
        (MERGE_TRUE, MERGE_PRED, 32 / 36, 0.75, 24 / 28),
        # same foreground, different nuclei: pixel scores ignore instances
        (SPLIT_TRUE, SPLIT_PRED, 1.0, 1.0, 1.0),
        (EMPTY, SHIFT_PRED, 27 / 36, 0.0, 0.0),
        (SHIFT_TRUE, EMPTY, 27 / 36, 0.0, 0.0),
        (EMPTY, EMPTY, 1.0, 1.0, 1.0),
    ],
)
def test_pixel_scores(true_labels, pred_labels, accuracy, iou, dice_value):
    assert pixel_accuracy(true_labels, pred_labels) == pytest.approx(accuracy)
    assert foreground_iou(true_labels, pred_labels) == pytest.approx(iou)
    assert dice(true_labels, pred_labels) == pytest.approx(dice_value)


@pytest.mark.parametrize(
    ("true_labels", "pred_labels", "expected"),
    [
        (SPLIT_TRUE, SPLIT_PRED, 1),
        (MERGE_TRUE, MERGE_PRED, -1),
        (TWO_TRUE, TWO_PRED, 0),
        (EMPTY, SHIFT_PRED, 1),
        (_relabel(TWO_TRUE, {1: 50, 2: 9}), EMPTY, -2),
        (EMPTY, EMPTY, 0),
    ],
)
def test_count_error(true_labels, pred_labels, expected):
    result = count_error(true_labels, pred_labels)
    assert result == expected
    assert isinstance(result, int)


# --------------------------------------------------------------------------------------
# evaluate_labels and summarize
# --------------------------------------------------------------------------------------

MERGE_SCORES = {
    "pixel_accuracy": 32 / 36,
    "foreground_iou": 0.75,
    "dice": 24 / 28,
    "precision": 1.0,
    "recall": 0.5,
    "f1": 2 / 3,
    "dsb_score": 0.2,
    "n_true": 2,
    "n_pred": 1,
    "count_error": -1,
    "abs_count_error": 1,
}

SPLIT_SCORES = {
    "pixel_accuracy": 1.0,
    "foreground_iou": 1.0,
    "dice": 1.0,
    "precision": 0.5,
    "recall": 1.0,
    "f1": 2 / 3,
    "dsb_score": 0.25,
    "n_true": 1,
    "n_pred": 2,
    "count_error": 1,
    "abs_count_error": 1,
}


@pytest.mark.parametrize(
    ("true_labels", "pred_labels", "expected"),
    [(MERGE_TRUE, MERGE_PRED, MERGE_SCORES), (SPLIT_TRUE, SPLIT_PRED, SPLIT_SCORES)],
)
def test_evaluate_labels(true_labels, pred_labels, expected):
    scores = evaluate_labels(true_labels, pred_labels)
    assert isinstance(scores, ImageScores)
    assert scores.as_dict() == pytest.approx(expected)
    assert list(scores.as_dict()) == list(expected)


def test_evaluate_labels_uses_threshold_one_half_strictly():
    scores = evaluate_labels(SHIFT_TRUE, SHIFT_PRED)
    assert (scores.precision, scores.recall, scores.f1) == (0.0, 0.0, 0.0)


def test_evaluate_labels_both_empty():
    scores = evaluate_labels(EMPTY, EMPTY)
    assert scores.as_dict() == {
        "pixel_accuracy": 1.0,
        "foreground_iou": 1.0,
        "dice": 1.0,
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "dsb_score": 1.0,
        "n_true": 0,
        "n_pred": 0,
        "count_error": 0,
        "abs_count_error": 0,
    }


def test_image_scores_is_frozen():
    scores = evaluate_labels(TWO_TRUE, TWO_PRED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        scores.dice = 0.0


def test_summarize_two_images():
    summary = summarize(
        [evaluate_labels(MERGE_TRUE, MERGE_PRED), evaluate_labels(SPLIT_TRUE, SPLIT_PRED)]
    )
    assert summary == pytest.approx(
        {
            "n_images": 2,
            "mean_pixel_accuracy": (32 / 36 + 1) / 2,
            "mean_foreground_iou": 0.875,
            "mean_dice": (24 / 28 + 1) / 2,
            "mean_precision": 0.75,
            "mean_recall": 0.75,
            "mean_f1": 2 / 3,
            "mean_dsb_score": 0.225,
            "total_true": 3,
            "total_pred": 3,
            "mean_count_error": 0.0,
            "mean_abs_count_error": 1.0,
            # merge: 1 / 2 nuclei, split: 1 / 1 nucleus
            "mean_relative_count_error": 0.75,
        }
    )


def test_summarize_relative_error_of_image_without_true_nuclei_divides_by_one():
    empty_truth = evaluate_labels(EMPTY, SPLIT_PRED)
    summary = summarize(iter([empty_truth]))
    assert summary["mean_relative_count_error"] == 2.0
    assert summary["mean_count_error"] == 2.0
    assert summary["total_true"] == 0


def test_summarize_empty_list_raises():
    with pytest.raises(InputError, match="scores"):
        summarize([])


@pytest.mark.parametrize("scores", [[{"dice": 1.0}], "abc", None])
def test_summarize_wrong_type_raises(scores):
    with pytest.raises(InputTypeError, match="scores"):
        summarize(scores)


# --------------------------------------------------------------------------------------
# error_map
# --------------------------------------------------------------------------------------


def test_error_map_codes_are_distinct():
    codes = (ERROR_BACKGROUND, ERROR_TP, ERROR_FP, ERROR_FN)
    assert codes == (0, 1, 2, 3)


def test_error_map_merge_marks_matched_prediction_and_uncovered_miss():
    expected = np.array(
        [
            [0, 0, 0, 0, 0, 0],
            [0, 1, 1, 1, 3, 0],
            [0, 1, 1, 1, 3, 0],
            [0, 1, 1, 1, 3, 0],
            [0, 1, 1, 1, 3, 0],
            [0, 0, 0, 0, 0, 0],
        ]
    )
    result = error_map(MERGE_TRUE, MERGE_PRED)
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, expected)


def test_error_map_split_marks_extra_piece_as_false_positive():
    expected = np.where(SPLIT_PRED == 1, ERROR_TP, np.where(SPLIT_PRED == 2, ERROR_FP, 0))
    np.testing.assert_array_equal(error_map(SPLIT_TRUE, SPLIT_PRED), expected)


def test_error_map_shift_at_one_half_is_false_positive_plus_uncovered_miss():
    expected = np.array(
        [
            [0, 0, 0, 0, 0, 0],
            [0, 3, 2, 2, 2, 0],
            [0, 3, 2, 2, 2, 0],
            [0, 3, 2, 2, 2, 0],
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
        ]
    )
    np.testing.assert_array_equal(error_map(SHIFT_TRUE, SHIFT_PRED), expected)


def test_error_map_threshold_changes_the_categories():
    # matched at 0.4: the prediction is a hit and its uncovered true column is no miss
    expected = np.where(SHIFT_PRED > 0, ERROR_TP, ERROR_BACKGROUND)
    np.testing.assert_array_equal(error_map(SHIFT_TRUE, SHIFT_PRED, threshold=0.4), expected)


@pytest.mark.parametrize(
    ("true_labels", "pred_labels", "expected"),
    [
        (EMPTY, SHIFT_PRED, np.where(SHIFT_PRED > 0, ERROR_FP, 0)),
        (SHIFT_TRUE, EMPTY, np.where(SHIFT_TRUE > 0, ERROR_FN, 0)),
        (EMPTY, EMPTY, np.zeros((6, 6))),
    ],
)
def test_error_map_empty_images(true_labels, pred_labels, expected):
    np.testing.assert_array_equal(error_map(true_labels, pred_labels), expected)


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------

PAIR_FUNCTIONS = [
    iou_matrix,
    match_labels,
    dsb_score,
    pixel_accuracy,
    foreground_iou,
    dice,
    count_error,
    evaluate_labels,
    error_map,
]


def _with_first_pixel(value, dtype) -> np.ndarray:
    """SHIFT_TRUE as `dtype` with its top-left pixel set to `value`."""
    labels = SHIFT_TRUE.astype(dtype)
    labels[0, 0] = value
    return labels


BAD_VALUES = [
    pytest.param(np.zeros((6, 6, 3), dtype=int), "2-D", id="3-d"),
    pytest.param(np.zeros(36, dtype=int), "2-D", id="1-d"),
    pytest.param(np.int64(3), "2-D", id="0-d"),
    pytest.param(np.zeros((0, 6), dtype=int), "empty", id="zero-rows"),
    pytest.param(_with_first_pixel(np.nan, float), "NaN", id="nan"),
    pytest.param(_with_first_pixel(np.inf, float), "infinite", id="inf"),
    pytest.param(_with_first_pixel(0.5, float), "non-integer", id="fraction"),
    pytest.param(_with_first_pixel(-1, np.int32), "negative", id="negative"),
    pytest.param(_with_first_pixel(1e30, float), "too large", id="huge-float"),
    pytest.param(
        _with_first_pixel(np.iinfo(np.uint64).max, np.uint64), "too large", id="huge-uint64"
    ),
]

BAD_TYPES = [
    pytest.param("labels", id="string"),
    pytest.param(b"labels", id="bytes"),
    pytest.param(None, id="none"),
    pytest.param(np.full((6, 6), "a"), id="string-array"),
    pytest.param(SHIFT_TRUE.astype(complex), id="complex"),
    pytest.param([[1, 2], [3]], id="ragged-list"),
    pytest.param({"a": 1}, id="dict"),
]


@pytest.mark.parametrize("function", PAIR_FUNCTIONS)
@pytest.mark.parametrize(("bad_value", "message"), BAD_VALUES)
def test_bad_true_labels_value_raises_input_error(function, bad_value, message):
    with pytest.raises(InputError, match=message) as raised:
        function(bad_value, SHIFT_PRED)
    assert str(raised.value).startswith("true_labels")
    assert "\n" not in str(raised.value)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("function", PAIR_FUNCTIONS)
@pytest.mark.parametrize(("bad_value", "message"), BAD_VALUES)
def test_bad_pred_labels_value_raises_input_error(function, bad_value, message):
    with pytest.raises(InputError, match=message) as raised:
        function(SHIFT_TRUE, bad_value)
    assert str(raised.value).startswith("pred_labels")


@pytest.mark.parametrize("function", PAIR_FUNCTIONS)
@pytest.mark.parametrize("bad_type", BAD_TYPES)
def test_bad_label_type_raises_input_type_error(function, bad_type):
    with pytest.raises(InputTypeError, match="true_labels") as raised:
        function(bad_type, SHIFT_PRED)
    assert isinstance(raised.value, TypeError)
    assert "\n" not in str(raised.value)
    with pytest.raises(InputTypeError, match="pred_labels"):
        function(SHIFT_TRUE, bad_type)


@pytest.mark.parametrize("function", PAIR_FUNCTIONS)
def test_shape_mismatch_raises_input_error(function):
    with pytest.raises(InputError, match=r"pred_labels has shape \(5, 6\).*\(6, 6\)"):
        function(SHIFT_TRUE, SHIFT_PRED[:5])


def test_whole_number_floats_bools_and_lists_are_accepted():
    np.testing.assert_array_equal(
        iou_matrix(SHIFT_TRUE.astype(np.float64), SHIFT_PRED.tolist()), [[0.5]]
    )
    np.testing.assert_array_equal(iou_matrix(SHIFT_TRUE > 0, SHIFT_PRED > 0), [[0.5]])
    assert match_labels(SPLIT_TRUE > 0, SPLIT_PRED).tp == 1


@pytest.mark.parametrize("function", [match_labels, error_map])
@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan")])
def test_threshold_out_of_range_raises_input_error(function, threshold):
    with pytest.raises(InputError, match="threshold"):
        function(SHIFT_TRUE, SHIFT_PRED, threshold=threshold)


@pytest.mark.parametrize("function", [match_labels, error_map])
@pytest.mark.parametrize("threshold", ["0.5", None, True])
def test_threshold_wrong_type_raises_input_type_error(function, threshold):
    with pytest.raises(InputTypeError, match="threshold"):
        function(SHIFT_TRUE, SHIFT_PRED, threshold=threshold)


def test_inputs_are_not_modified():
    true_labels = MERGE_TRUE.copy()
    pred_labels = MERGE_PRED.copy()
    evaluate_labels(true_labels, pred_labels)
    error_map(true_labels, pred_labels, threshold=0.2)
    np.testing.assert_array_equal(true_labels, MERGE_TRUE)
    np.testing.assert_array_equal(pred_labels, MERGE_PRED)


# --------------------------------------------------------------------------------------
# Properties against a brute-force reference on small random label images
# --------------------------------------------------------------------------------------

small_labels = arrays(np.int64, (5, 5), elements=st.integers(0, 4))
thresholds = st.sampled_from([0.0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9])


def _reference_ious(true_labels, pred_labels):
    """IoU of every pair from boolean masks, one pair at a time."""
    true_ids = [value for value in np.unique(true_labels) if value > 0]
    pred_ids = [value for value in np.unique(pred_labels) if value > 0]
    matrix = np.zeros((len(true_ids), len(pred_ids)))
    for row, true_id in enumerate(true_ids):
        for col, pred_id in enumerate(pred_ids):
            true_mask = true_labels == true_id
            pred_mask = pred_labels == pred_id
            union = np.count_nonzero(true_mask | pred_mask)
            matrix[row, col] = np.count_nonzero(true_mask & pred_mask) / union
    return true_ids, pred_ids, matrix


def _best_matching(candidates, ious):
    """(most pairs, largest total IoU) over every one-to-one matching, by enumeration."""
    n_rows, n_cols = candidates.shape
    best = (0, 0.0)
    for size in range(1, min(n_rows, n_cols) + 1):
        for rows in itertools.combinations(range(n_rows), size):
            for cols in itertools.permutations(range(n_cols), size):
                if all(candidates[row, col] for row, col in zip(rows, cols, strict=True)):
                    total = sum(ious[row, col] for row, col in zip(rows, cols, strict=True))
                    best = max(best, (size, total))
    return best


@settings(max_examples=60, deadline=None)
@given(true_labels=small_labels, pred_labels=small_labels)
def test_iou_matrix_matches_reference(true_labels, pred_labels):
    _, _, expected = _reference_ious(true_labels, pred_labels)
    np.testing.assert_allclose(iou_matrix(true_labels, pred_labels), expected)


@settings(max_examples=60, deadline=None)
@given(true_labels=small_labels, pred_labels=small_labels, threshold=thresholds)
def test_match_labels_is_an_optimal_one_to_one_matching(true_labels, pred_labels, threshold):
    true_ids, pred_ids, ious = _reference_ious(true_labels, pred_labels)
    matching = match_labels(true_labels, pred_labels, threshold=threshold)
    pairs = _pairs(matching)
    rows = [true_ids.index(true_id) for true_id, _ in pairs]
    cols = [pred_ids.index(pred_id) for _, pred_id in pairs]
    assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
    assert all(ious[row, col] > threshold for row, col in zip(rows, cols, strict=True))
    best_size, best_total = _best_matching(ious > threshold, ious)
    assert matching.tp == best_size
    matched_total = sum(ious[row, col] for row, col in zip(rows, cols, strict=True))
    assert matched_total == pytest.approx(best_total)
    assert matching.tp + matching.fp == matching.n_pred == len(pred_ids)
    assert matching.tp + matching.fn == matching.n_true == len(true_ids)
    assert sorted(_ids(matching.tp_pred_ids) + _ids(matching.fp_pred_ids)) == _ids(pred_ids)
    assert set(_ids(matching.fn_true_ids)) == set(_ids(true_ids)) - {pair[0] for pair in pairs}


@settings(max_examples=60, deadline=None)
@given(true_labels=small_labels, pred_labels=small_labels)
def test_dsb_score_is_mean_of_matchings_and_symmetric(true_labels, pred_labels):
    per_threshold = []
    for threshold in DSB_THRESHOLDS:
        matching = match_labels(true_labels, pred_labels, threshold=threshold)
        denominator = matching.tp + matching.fp + matching.fn
        per_threshold.append(matching.tp / denominator if denominator else 1.0)
    score = dsb_score(true_labels, pred_labels)
    assert score == pytest.approx(np.mean(per_threshold))
    assert dsb_score(pred_labels, true_labels) == pytest.approx(score)


@settings(max_examples=60, deadline=None)
@given(true_labels=small_labels, pred_labels=small_labels, threshold=thresholds)
def test_swapping_arguments_swaps_false_positives_and_negatives(
    true_labels, pred_labels, threshold
):
    forward = match_labels(true_labels, pred_labels, threshold=threshold)
    backward = match_labels(pred_labels, true_labels, threshold=threshold)
    assert (forward.tp, forward.fp, forward.fn) == (backward.tp, backward.fn, backward.fp)
    assert forward.precision == backward.recall


@settings(max_examples=60, deadline=None)
@given(true_labels=small_labels, pred_labels=small_labels, threshold=thresholds)
def test_error_map_agrees_with_match_labels(true_labels, pred_labels, threshold):
    matching = match_labels(true_labels, pred_labels, threshold=threshold)
    result = error_map(true_labels, pred_labels, threshold=threshold)
    expected = np.zeros(true_labels.shape, dtype=np.uint8)
    expected[np.isin(true_labels, matching.fn_true_ids) & (pred_labels == 0)] = ERROR_FN
    expected[np.isin(pred_labels, matching.tp_pred_ids)] = ERROR_TP
    expected[np.isin(pred_labels, matching.fp_pred_ids)] = ERROR_FP
    np.testing.assert_array_equal(result, expected)
