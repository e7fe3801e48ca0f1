"""Charts of the per-epoch training metrics (Altair), from ``history.history_frame``."""

from __future__ import annotations

import altair as alt
import pandas as pd

from ui.wording import METRIC_LABELS

MAX_EPOCH_TICKS = 12
"""At most this many epoch ticks on the x-axis."""


def epoch_axis(epochs) -> alt.X:
    """The x-axis of a curve: whole epochs only, one epoch shown as one tick.

    Ticks are the epoch numbers (every ``k``-th for long runs); with one epoch
    the axis spans half an epoch each side instead of fractions of it.

    Examples
    --------
    >>> axis = epoch_axis([1]).to_dict()
    >>> axis["axis"]["values"], axis["axis"]["format"], axis["scale"]["domain"]
    ([1], 'd', [0.5, 1.5])
    >>> epoch_axis(range(1, 31)).to_dict()["axis"]["values"][:3]
    [1, 4, 7]
    """
    numbers = sorted({int(epoch) for epoch in epochs}) or [1]
    first, last = numbers[0], numbers[-1]
    step = max(1, -(-(last - first + 1) // MAX_EPOCH_TICKS))
    scale = alt.Scale(domain=[first - 0.5, last + 0.5]) if first == last else alt.Scale()
    return alt.X(
        "epoch:Q",
        title="epoch",
        scale=scale,
        axis=alt.Axis(format="d", values=list(range(first, last + 1, step))),
    )


def curves_chart(history: pd.DataFrame, metric: str, best: pd.DataFrame | None = None):
    """Interactive chart of one metric per epoch: colour = run, dashes = validation.

    Hovering a point shows run, split, epoch and value; a dotted vertical rule
    marks each run's best epoch (``best``: ``history.best_epochs_frame``).

    Examples
    --------
    >>> history = pd.DataFrame({"run": ["u"], "run_id": [1], "epoch": [1], "metric": ["iou"],
    ...                         "split": ["training"], "value": [0.5]})
    >>> chart = curves_chart(history, "iou")
    >>> chart.title, chart.to_dict()["layer"][0]["encoding"]["x"]["axis"]["values"]
    ('foreground IoU', [1])
    """
    data = history[history["metric"] == metric]
    title = METRIC_LABELS.get(metric, metric)
    base = alt.Chart(data).encode(
        x=epoch_axis(data["epoch"]),
        y=alt.Y("value:Q", title=title, scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", title="run"),
        strokeDash=alt.StrokeDash("split:N", title="data", sort=["training", "validation"]),
        tooltip=[
            alt.Tooltip("run:N"),
            alt.Tooltip("split:N"),
            alt.Tooltip("epoch:Q"),
            alt.Tooltip("value:Q", format=".4f", title=title),
        ],
    )
    chart = base.mark_line() + base.mark_point(filled=True, size=40)
    if best is not None and not best.empty:
        rules = (
            alt.Chart(best)
            .mark_rule(strokeDash=[2, 3], opacity=0.8)
            .encode(
                x="epoch:Q",
                color=alt.Color("run:N"),
                tooltip=[alt.Tooltip("run:N"), alt.Tooltip("epoch:Q", title="best epoch")],
            )
        )
        chart = chart + rules
    return chart.properties(title=title, height=260).interactive()
