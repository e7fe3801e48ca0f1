"""Where a prediction is right and wrong: an image of error categories to colour an overlay.

:func:`error_map` marks every pixel as background, matched nucleus (true
positive), extra nucleus (false positive) or missed nucleus (false negative), with
the matches of :func:`nuclei_core.evaluation.overlaps.select_matches`. Drawing is
left to the caller (:mod:`nuclei_core.io.render`).
"""

from __future__ import annotations

import numpy as np

from nuclei_core.checks import check_fraction
from nuclei_core.evaluation.overlaps import as_label_pair, label_overlaps, select_matches

ERROR_BACKGROUND = 0
"""Code of :func:`error_map` for background and for true-nucleus pixels that a prediction covers."""
ERROR_TP = 1
"""Code of :func:`error_map` for pixels of a predicted nucleus that matches a true nucleus."""
ERROR_FP = 2
"""Code of :func:`error_map` for pixels of a predicted nucleus that matches nothing."""
ERROR_FN = 3
"""Code of :func:`error_map` for pixels of a missed true nucleus that no prediction covers."""


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
    overlaps = label_overlaps(*as_label_pair(true_labels, pred_labels))
    rows, cols, _ = select_matches(overlaps, checked_threshold)
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
