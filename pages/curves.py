"""Curves page: loss, accuracy, IoU and Dice per epoch of registered runs, overlaid to compare.

Training lines are solid, validation lines dashed; a dotted rule marks each run's
best (early-stopping) epoch.  A signed-in user sees the shared runs and their own.  The
chosen runs are ``st.session_state["curves_runs"]``.
"""

import streamlit as st

from nuclei_core.access.users import visible_runs
from nuclei_core.registry import history
from ui import charts, messages, navigation, signin, state, wording

navigation.ensure_app_shell(__file__)
st.title("Training curves")
registry = state.registry()

runs = [
    run
    for run in visible_runs(signin.current_user(), registry.list_runs())
    if registry.epochs(run.id)
]
if not runs:
    st.info("No run has recorded an epoch yet. Start one on the **Train or load a model** page.")
    st.stop()

names = {run.id: wording.run_label(run) for run in runs}
current = state.session_model(registry)
default = [current.id] if current is not None and current.id in names else [runs[0].id]
chosen = st.multiselect(
    "Runs", list(names), default=default, format_func=names.get, key="curves_runs"
)
selected = [run for run in runs if run.id in chosen]
if not selected:
    st.info("Choose one or more runs to see their curves.")
    st.stop()

with messages.engine_errors():
    epochs = history.history_frame(registry, selected)
    best = history.best_epochs_frame(registry, selected)
    metrics = [metric for metric in history.CURVE_METRICS if metric in set(epochs["metric"])]
    columns = st.columns(2)
    for index, metric in enumerate(metrics):
        columns[index % 2].altair_chart(
            charts.curves_chart(epochs, metric, best), key=f"curves_{metric}"
        )
    st.caption(
        "Solid: training · dashed: validation · dotted vertical line: best epoch (the weights "
        "kept by early stopping). Hover a point for its value; drag or scroll to zoom."
    )
    with st.expander("What the curves measure"):
        st.markdown(wording.glossary(metrics))

    st.subheader("Best epoch of each run")
    st.caption(
        "The metrics of the epoch whose weights each run kept (lowest validation loss). "
        "Hover a column name for what it measures."
    )
    table = wording.final_metrics_table(history.final_metrics_frame(registry, selected))
    st.dataframe(table, hide_index=True, column_config=wording.column_config(table.columns))
    st.download_button(
        "Download history (CSV)",
        history.history_csv(registry, selected),
        file_name="training_history.csv",
        mime="text/csv",
        on_click="ignore",
        key="curves_download",
    )
