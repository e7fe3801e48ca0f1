"""The nuclei dashboard: `streamlit run app.py` opens it; pages and the model sidebar.

Navigation uses ``st.navigation`` with one ``st.Page`` per file in ``pages/``. The
sidebar shows this browser session's model (name, architecture, validation metrics,
date) and switches it for this session only (``ui.state.session_model``); a new
session starts with the registry's active model (SQLite in the data folder,
``$NUCLEI_DATA_DIR``), which the Train page sets as the default for everyone.
"""

from __future__ import annotations

import streamlit as st

from nuclei_core.access.users import visible_runs
from nuclei_core.errors import NucleiError
from nuclei_core.network import runtime
from nuclei_core.registry.catalogue import has_model_file, model_runs
from ui import messages, navigation, signin, state, wording

st.set_page_config(page_title="Nuclei segmentation", page_icon="🔬", layout="wide")
if not signin.gate():  # a served app: nothing runs before the sign-in
    st.stop()
access = signin.current_access()
user = signin.current_user(access)

PAGES = [
    st.Page("pages/segment.py", title="Segment an image", icon=":material/biotech:", default=True),
    st.Page("pages/batch.py", title="Segment a folder", icon=":material/photo_library:"),
    st.Page("pages/slide.py", title="Segment a whole slide", icon=":material/grid_on:"),
    st.Page("pages/browse.py", title="Browse a test set", icon=":material/grid_view:"),
    st.Page("pages/train.py", title="Train or load a model", icon=":material/model_training:"),
    st.Page("pages/curves.py", title="Training curves", icon=":material/show_chart:"),
]
page = st.navigation(PAGES)
navigation.open_requested_page()

try:
    registry = state.registry()
except NucleiError as error:
    st.error(f"The run registry cannot be opened: {error}")
    st.stop()


def _switch_model() -> None:
    chosen = st.session_state.get("sidebar_model")
    if chosen is not None:
        state.use_model(registry, chosen)


with st.sidebar:
    signin.sidebar(access)
    st.subheader("Model")
    report = state.startup_report()
    if report["problem"]:
        st.warning(report["problem"])
    active = state.session_model(registry)
    lost = state.lost_model_notice()
    if lost:
        st.warning(lost)
    if active is None or not has_model_file(active):
        st.warning(messages.NO_MODEL_TEXT)
    else:
        st.markdown(f"**{wording.plain(active.name)}**")
        st.caption(wording.model_caption(active))
        metrics = wording.validation_line(active)
        st.caption(f"Validation: {metrics}" if metrics else messages.NO_VALIDATION_TEXT)
        st.caption(f"Runs on {runtime.default_runtime()}")
    choices = visible_runs(user, model_runs(registry))
    if choices:
        names = {run.id: wording.run_label(run) for run in choices}
        wanted = active.id if active is not None and active.id in names else None
        if st.session_state.get("sidebar_model") != wanted:
            st.session_state["sidebar_model"] = wanted
        st.selectbox(
            "Switch model",
            options=list(names),
            format_func=names.get,
            placeholder="Choose a model",
            key="sidebar_model",
            on_change=_switch_model,
        )
        st.caption(wording.session_model_note(registry.active_model()))

signin.banner(access)
page.run()
