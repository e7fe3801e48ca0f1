"""The threshold and minimum-size inputs, and why the slider may not change the count.

A pixel changes side only when the threshold crosses its probability; on an image
whose probabilities are all near 0 or 1 the nuclei stay as they are whatever the
slider says. The Segment page shows :func:`threshold_note` under the slider, and
:func:`confidence_note` when the model's card drops nuclei it is never sure of;
:func:`instance_inputs` draws the slider and the minimum-size input of a page.
"""

from __future__ import annotations

import numpy as np

from nuclei_core.checks import check_array, check_fraction
from nuclei_core.errors import InputError

THRESHOLD_BAND = (0.1, 0.9)
"""Probabilities in this band are the ones a threshold between them can still change."""


def uncertain_share(probabilities, band: tuple[float, float] = THRESHOLD_BAND) -> float:
    """Share of pixels whose nucleus probability lies inside ``band`` (default 0.1 to 0.9).

    Only these pixels change side when the threshold moves inside the band; on
    an image where the network is sure of almost every pixel the count stays.

    Parameters
    ----------
    probabilities : ndarray, shape (H, W, 2) or (H, W)
        Network output (channel 0 = nucleus) or the nucleus probability alone.
    band : (float, float)
        Lowest and highest probability of the band, in [0, 1].

    Examples
    --------
    >>> foreground = np.array([[0.0, 0.05], [0.5, 1.0]])
    >>> uncertain_share(foreground)
    0.25
    """
    array = check_array(probabilities, "probabilities")
    if array.ndim == 3:
        array = array[..., 0]
    if array.ndim != 2 or array.size == 0:
        raise InputError(f"probabilities must be (H, W) or (H, W, 2), got shape {array.shape}")
    low, high = (check_fraction(value, "band") for value in band)
    inside = (array > low) & (array < high)
    return float(np.count_nonzero(inside) / array.size)


def threshold_note(probabilities, band: tuple[float, float] = THRESHOLD_BAND) -> str:
    """One line under the threshold slider: how much of the image the threshold can change.

    Examples
    --------
    >>> threshold_note(np.array([[0.0, 0.0], [1.0, 1.0]]))[:40]
    'The network is sure of 100.0 % of the pi'
    >>> threshold_note(np.array([[0.3, 0.6], [1.0, 0.0]]))[:60]
    '50.0 % of the pixels have a probability between 0.1 and 0.9;'
    """
    low, high = band
    share = uncertain_share(probabilities, band)
    if share < 0.01:
        return (
            f"The network is sure of {100 * (1 - share):.1f} % of the pixels (probability "
            f"below {low:g} or above {high:g}), so a threshold between {low:g} and {high:g} "
            "changes almost nothing here."
        )
    return (
        f"{100 * share:.1f} % of the pixels have a probability between {low:g} and {high:g}; "
        "moving the threshold across it grows or shrinks nuclei there."
    )


def confidence_note(min_confidence: float) -> str:
    """One line under the threshold slider: the model's minimum confidence, when it has one.

    Examples
    --------
    >>> confidence_note(0.985)[:62]
    'Nuclei the model is nowhere at least 98.5 % sure of are left o'
    >>> confidence_note(0.0)
    ''
    """
    if not min_confidence:
        return ""
    return (
        f"Nuclei the model is nowhere at least {100 * min_confidence:g} % sure of are left out, "
        "whatever the threshold (the minimum confidence in its card, chosen on its validation "
        "images)."
    )


def instance_inputs(prefix: str, threshold_column, size_column) -> tuple[float, int]:
    """The mask threshold slider and the minimum nucleus size input of a page.

    Their keys are ``{prefix}_threshold`` and ``{prefix}_min_size``; each goes in
    its column (or any Streamlit container).
    """
    threshold = threshold_column.slider(
        "Mask threshold",
        0.05,
        0.95,
        0.5,
        0.05,
        key=f"{prefix}_threshold",
        help="A pixel belongs to a nucleus when its probability is above this.",
    )
    min_size = size_column.number_input(
        "Minimum nucleus size (pixels)",
        0,
        100_000,
        15,
        5,
        key=f"{prefix}_min_size",
        help="Smaller objects are dropped.",
    )
    return threshold, int(min_size)
