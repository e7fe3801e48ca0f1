"""The expected nucleus diameter on the Segment page: a number input and its options.

:func:`diameter_input` shows "Expected nucleus diameter (px, 0 = estimate)" and
returns the diameter in pixels, or ``"auto"`` to estimate it from the image
(:func:`nuclei_core.segmentation.segment.estimate_diameter`); :func:`diameter_caption` says which
diameter was used;
:func:`model_options` adds the session model's own training diameter and the other
settings of its card, ready for :class:`nuclei_core.segmentation.options.SegmentOptions`.
"""

from __future__ import annotations

import streamlit as st

from nuclei_core.errors import NucleiError
from nuclei_core.segmentation.diameter import DEFAULT_MODEL_DIAMETER_PX, SCALE_RANGE
from nuclei_core.segmentation.options import AUTO, model_settings

LABEL = "Expected nucleus diameter (px, 0 = estimate)"


def diameter_range(trained: float) -> tuple[float, float]:
    """Smallest and largest diameter (pixels) a model trained at ``trained`` pixels takes.

    Examples
    --------
    >>> diameter_range(20.0)
    (5.0, 80.0)
    """
    return trained / SCALE_RANGE[1], trained / SCALE_RANGE[0]


def checked_diameter(value: float, trained: float) -> tuple[float | str, str | None]:
    """``(diameter or "auto", warning or None)`` for the number a user typed.

    0 means "estimate it from the image"; a number outside :func:`diameter_range` is
    not used (the diameter is estimated instead), and the warning says why.

    Examples
    --------
    >>> checked_diameter(0.0, 20.0)
    ('auto', None)
    >>> checked_diameter(12.0, 20.0)
    (12.0, None)
    >>> checked_diameter(2.0, 20.0)[1]
    '2 px is outside 5 to 80 px, the sizes this model takes: estimating it from the image.'
    """
    if not value:
        return AUTO, None
    low, high = diameter_range(trained)
    if low <= value <= high:
        return float(value), None
    return AUTO, (
        f"{value:g} px is outside {low:.3g} to {high:.3g} px, the sizes this model takes: "
        "estimating it from the image."
    )


def diameter_caption(asked: float | str, used: float | None, trained: float) -> str:
    """What the Segment page says under its results about the diameter used.

    Examples
    --------
    >>> diameter_caption("auto", None, 20.0)
    'Estimated nucleus diameter: close to the 20 px the model was trained on; image used as it is.'
    >>> diameter_caption("auto", 10.0, 20.0)
    'Estimated nucleus diameter: 10 px; the image was enlarged 2x for the model.'
    >>> diameter_caption(40.0, 40.0, 20.0)
    'Nucleus diameter 40 px (given); the image was shrunk 0.5x for the model.'
    """
    if used is None:
        return (
            f"Estimated nucleus diameter: close to the {trained:.3g} px the model was trained "
            "on; image used as it is."
        )
    source = "Estimated nucleus diameter:" if asked == AUTO else "Nucleus diameter"
    given = "" if asked == AUTO else " (given)"
    factor = trained / used
    change = "enlarged" if factor > 1 else "shrunk"
    return f"{source} {used:.3g} px{given}; the image was {change} {factor:.3g}x for the model."


def diameter_input(
    trained: float = DEFAULT_MODEL_DIAMETER_PX, where=None, key: str = "segment_diameter"
) -> float | str:
    """Show the number input; the expected diameter in pixels, or "auto" (0 or out of range).

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
            f"The model saw nuclei about {trained:.3g} px across. With 0 the size of the nuclei "
            "in this image is estimated from a first pass (a second pass at the model's size "
            f"when they differ by more than 10 %); or give it ({low:.3g} to {high:.3g} px). "
            "The image is rescaled to match; the results come back in its own pixels."
        ),
    )
    diameter, warning = checked_diameter(value, trained)
    if warning:
        where.warning(warning)
    return diameter


def model_options(run, where=None, key: str = "segment_diameter") -> dict:
    """``SegmentOptions`` fields for ``run``'s model: the diameter and the card's settings.

    Shows :func:`diameter_input` (widget ``key``) with the training diameter of the
    model's card; the card's other settings (its minimum confidence) come with it
    (:func:`nuclei_core.segmentation.options.model_settings`). A card that cannot give them is
    named in a warning, and the defaults are used.
    """
    try:
        settings = model_settings(run.model_path if run is not None and run.model_path else None)
    except NucleiError as error:
        (where or st).warning(f"{error}; using the default settings")
        settings = model_settings(None)
    return {"diameter": diameter_input(settings["model_diameter"], where, key), **settings}
