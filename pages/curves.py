"""Curves page: loss, accuracy, IoU and Dice per epoch of registered runs, overlaid to compare.

Training lines are solid, validation lines dashed; a dotted rule marks each run's
best (early-stopping) epoch.  The chosen runs are ``st.session_state["curves_runs"]``.
"""

import streamlit as st

import ui_common as ui
from nuclei_core import dashboard

ui.ensure_app_shell(__file__)
st.title("Training curves")
registry = ui.registry()

runs = [run for run in registry.list_runs() if registry.epochs(run.id)]
if not runs:
    st.info("No run has recorded an epoch yet. Start one on the **Train or load a model** page.")
    st.stop()

labels = {run.id: dashboard.run_label(run) for run in runs}
active = registry.active_model()
default = [active.id] if active is not None and active.id in labels else [runs[0].id]
chosen = st.multiselect(
    "Runs", list(labels), default=default, format_func=labels.get, key="curves_runs"
)
selected = [run for run in runs if run.id in chosen]
if not selected:
    st.info("Choose one or more runs to see their curves.")
    st.stop()

with ui.engine_errors():
    history = dashboard.history_frame(registry, selected)
    best = dashboard.best_epochs_frame(registry, selected)
    metrics = [metric for metric in dashboard.CURVE_METRICS if metric in set(history["metric"])]
    columns = st.columns(2)
    for index, metric in enumerate(metrics):
        columns[index % 2].altair_chart(
            dashboard.curves_chart(history, metric, best), key=f"curves_{metric}"
        )
    st.caption(
        "Solid: training · dashed: validation · dotted vertical line: best epoch (the weights "
        "kept by early stopping). Hover a point for its value; drag or scroll to zoom."
    )

    st.subheader("Final metrics")
    st.dataframe(dashboard.final_metrics_frame(registry, selected), hide_index=True)
    st.download_button(
        "Download history (CSV)",
        dashboard.history_csv(registry, selected),
        file_name="training_history.csv",
        mime="text/csv",
        on_click="ignore",
        key="curves_download",
    )
