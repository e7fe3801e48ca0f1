"""Charts of the per-epoch training metrics (Altair), from ``history.history_frame``."""

from __future__ import annotations

import altair as alt
import pandas as pd

from ui.labels import METRIC_LABELS


def curves_chart(history: pd.DataFrame, metric: str, best: pd.DataFrame | None = None):
    """Interactive chart of one metric per epoch: colour = run, dashes = validation.

    Hovering a point shows run, split, epoch and value; a dotted vertical rule
    marks each run's best epoch (``best``: ``history.best_epochs_frame``).

    Examples
    --------
    >>> history = pd.DataFrame({"run": ["u"], "run_id": [1], "epoch": [1], "metric": ["iou"],
    ...                         "split": ["training"], "value": [0.5]})
    >>> curves_chart(history, "iou").title
    'foreground IoU'
    """
    data = history[history["metric"] == metric]
    title = METRIC_LABELS.get(metric, metric)
    base = alt.Chart(data).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
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
