"""The expected nucleus diameter on the Segment page: a number input and its options.

:func:`diameter_input` shows "Expected nucleus diameter (px, 0 = as trained)" and
returns the diameter in pixels, or None to segment the image as it is;
:func:`diameter_options` adds the session model's own training diameter (its card),
ready for :class:`nuclei_core.segment.SegmentOptions`.
"""

from __future__ import annotations

import streamlit as st

from nuclei_core.cards import read_card
from nuclei_core.rescale import DEFAULT_MODEL_DIAMETER_PX, SCALE_RANGE, model_diameter

LABEL = "Expected nucleus diameter (px, 0 = as trained)"


def diameter_range(trained: float) -> tuple[float, float]:
    """Smallest and largest diameter (pixels) a model trained at ``trained`` pixels takes.

    Examples
    --------
    >>> diameter_range(20.0)
    (5.0, 80.0)
    """
    return trained / SCALE_RANGE[1], trained / SCALE_RANGE[0]


def checked_diameter(value: float, trained: float) -> tuple[float | None, str | None]:
    """``(diameter or None, warning or None)`` for the number a user typed.

    0 means "as trained"; a number outside :func:`diameter_range` is not used, and
    the warning says why.

    Examples
    --------
    >>> checked_diameter(0.0, 20.0)
    (None, None)
    >>> checked_diameter(12.0, 20.0)
    (12.0, None)
    >>> checked_diameter(2.0, 20.0)[1]
    '2 px is outside 5 to 80 px, the sizes this model takes: segmenting as trained.'
    """
    if not value:
        return None, None
    low, high = diameter_range(trained)
    if low <= value <= high:
        return float(value), None
    return None, (
        f"{value:g} px is outside {low:.3g} to {high:.3g} px, the sizes this model takes: "
        "segmenting as trained."
    )


def diameter_input(
    trained: float = DEFAULT_MODEL_DIAMETER_PX, where=None, key: str = "segment_diameter"
) -> float | None:
    """Show the number input; the expected diameter in pixels, or None (0 or out of range).

    ``trained`` is the model's training diameter (pixels), ``where`` the Streamlit
    container (default: the page).
    """
    where = where or st
    low, high = diameter_range(trained)
    value = where.number_input(
        LABEL,
        min_value=0.0,
        max_value=float(round(high, 1)),
        value=0.0,
        step=1.0,
        key=key,
        help=(
            f"The model saw nuclei about {trained:.3g} px across. Give the size of the nuclei in "
            f"this image ({low:.3g} to {high:.3g} px) and the image is rescaled to match; "
            "the results come back in the image's own pixels."
        ),
    )
    diameter, warning = checked_diameter(value, trained)
    if warning:
        where.warning(warning)
    return diameter


def diameter_options(run, where=None) -> dict:
    """``{"diameter": ..., "model_diameter": ...}`` for ``SegmentOptions`` of ``run``'s model.

    Shows :func:`diameter_input` with the training diameter of the model's card.
    """
    trained = DEFAULT_MODEL_DIAMETER_PX
    if run is not None and run.model_path:
        trained = model_diameter(read_card(run.model_path))
    return {"diameter": diameter_input(trained, where), "model_diameter": trained}
