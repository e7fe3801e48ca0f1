"""Which nuclei of two label images overlap, and by how much: the tables the scores use.

:func:`label_overlaps` renumbers both images (:func:`compact_labels`) and counts
the pixels of every (true, predicted) pair that share any (:class:`Overlaps`, with
their IoU); :func:`select_matches` picks the one-to-one matches above a threshold
(every pair above 0.5 is one already; below it an optimal assignment decides).
:mod:`nuclei_core.evaluation.matching` and :mod:`nuclei_core.evaluation.metrics`
build on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from nuclei_core.checks import as_label_image, check_same_shape

# Above this many cells the (n_true + 1) x (n_pred + 1) pixel-pair table is counted
# sparsely with np.unique instead of densely with np.bincount.
_DENSE_TABLE_LIMIT = 1 << 22


@dataclass(frozen=True)
class CompactLabels:
    """A label image renumbered 1..n (0 stays background) and its original ids."""

    ids: np.ndarray
    image: np.ndarray

    @property
    def count(self) -> int:
        return int(self.ids.size)


@dataclass(frozen=True)
class Overlaps:
    """Every (true, predicted) pair of nuclei that share pixels, with its IoU.

    ``rows`` and ``cols`` are 0-based positions in ``true.ids`` and ``pred.ids``.
    """

    true: CompactLabels
    pred: CompactLabels
    rows: np.ndarray
    cols: np.ndarray
    ious: np.ndarray


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------


def as_label_pair(true_labels: object, pred_labels: object) -> tuple[np.ndarray, np.ndarray]:
    """Check both label images (converted to int64) and that they have the same shape."""
    true_array = as_label_image(true_labels, "true_labels")
    pred_array = as_label_image(pred_labels, "pred_labels")
    check_same_shape(pred_array, "pred_labels", true_array.shape, reference="true_labels")
    return true_array, pred_array


# --------------------------------------------------------------------------------------
# Overlaps and matching
# --------------------------------------------------------------------------------------


def compact_labels(labels: np.ndarray) -> CompactLabels:
    """Renumber the nuclei of a checked label image to 1..n, keeping 0 as background."""
    flat = labels.ravel()
    largest = int(flat.max())
    if largest <= 4 * flat.size + 1024:
        present = np.bincount(flat, minlength=largest + 1) > 0
        present[0] = False
        ids = np.flatnonzero(present).astype(np.int64)
        lookup = np.zeros(largest + 1, dtype=np.intp)
        lookup[ids] = np.arange(1, ids.size + 1)
        return CompactLabels(ids=ids, image=lookup[labels])
    values, inverse = np.unique(flat, return_inverse=True)
    if values[0] == 0:
        ids = values[1:]
    else:
        ids = values
        inverse = inverse + 1
    return CompactLabels(ids=ids.astype(np.int64), image=inverse.reshape(labels.shape))


def _pair_counts(true: CompactLabels, pred: CompactLabels) -> tuple[np.ndarray, np.ndarray]:
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


def label_overlaps(true_array: np.ndarray, pred_array: np.ndarray) -> Overlaps:
    """Find every overlapping pair of nuclei and its IoU from one pixel-pair table."""
    true = compact_labels(true_array)
    pred = compact_labels(pred_array)
    cells, intersections = _pair_counts(true, pred)
    true_index, pred_index = np.divmod(cells, pred.count + 1)
    true_areas = np.bincount(true_index, weights=intersections, minlength=true.count + 1)
    pred_areas = np.bincount(pred_index, weights=intersections, minlength=pred.count + 1)
    both_objects = (true_index > 0) & (pred_index > 0)
    true_index = true_index[both_objects]
    pred_index = pred_index[both_objects]
    intersections = intersections[both_objects]
    unions = true_areas[true_index] + pred_areas[pred_index] - intersections
    return Overlaps(
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


def select_matches(
    overlaps: Overlaps, threshold: float
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


def ratio(numerator: float, denominator: float, both_empty: bool) -> float:
    """``numerator / denominator``, or the empty-image convention when it is 0 / 0."""
    if denominator == 0:
        return 1.0 if both_empty else 0.0
    return float(numerator / denominator)


def read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array
