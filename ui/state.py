"""Streamlit state shared by app.py and the pages: the registry, loaded models, cached results.

Everything here is about caches and session state; the work itself is done by
``nuclei_core``. The registry, loaded models and folder scores live in
``st.cache_resource`` (one per server process); session-state keys:

* ``segment_probabilities``: ``(key, probabilities)`` of the last network pass on
  the Segment page, the key being (image hash, model key, test-time flips);
* ``session_model``: ``(run id, name)`` of the model this browser session uses
  (:func:`session_model`), also kept in the page address (``?model=<id>``) so a
  reload keeps it; new sessions start with the registry's active model;
* ``session_model_lost``: the name of a chosen model that was deleted or hidden
  since, told once in the sidebar (:func:`lost_model_notice`);
* ``kept_<key>``: the last value of a widget made with :func:`kept`, so a form
  keeps its fields while it is not shown.
"""

from __future__ import annotations

import streamlit as st

from nuclei_core import jobs
from nuclei_core.access.users import may_see
from nuclei_core.errors import NucleiError
from nuclei_core.locations import default_model_path
from nuclei_core.registry import Registry, Run, default_registry_path
from nuclei_core.registry.catalogue import bootstrap_registry, has_model_file, model_file_key
from nuclei_core.segmentation.options import SegmentOptions
from nuclei_core.segmentation.segment import predict_with_size
from ui import background
from ui.messages import NO_MODEL_TEXT
from ui.signin import current_user
from ui.wording import plain

# --------------------------------------------------------------------------- registry


@st.cache_resource(show_spinner=False)
def _open_registry(path: str) -> Registry:
    return Registry(path)


@st.cache_resource(show_spinner=False)
def _first_start(path: str, default_model: str) -> dict:
    """Once per process and data folder: fail dead runs, register the bundled model."""
    registry = _open_registry(path)
    marked = jobs.mark_dead_jobs(registry)
    report = {"marked_failed": [run.name for run in marked], "problem": None}
    try:
        bootstrap_registry(registry, default_model)
    except NucleiError as error:
        report["problem"] = f"The bundled default model was not registered: {error}"
    return report


def registry() -> Registry:
    """The run registry of the data folder (``$NUCLEI_DATA_DIR``), opened once per process.

    Raises
    ------
    StorageError
        The data folder or the database cannot be used.
    """
    path = str(default_registry_path())
    opened = _open_registry(path)
    _first_start(path, str(default_model_path()))
    return opened


def startup_report() -> dict:
    """What the first start did (runs marked failed, a problem with the default model)."""
    return _first_start(str(default_registry_path()), str(default_model_path()))


# --------------------------------------------------------------------------- the session's model


MODEL_PARAMETER = "model"  # the page address's ?model=<run id>: the session's model


def _chosen_model() -> tuple[int, str | None] | None:
    """The session's choice: its state, else the page address's (a reloaded page)."""
    chosen = st.session_state.get("session_model")
    if chosen is not None:
        return chosen
    text = st.query_params.get(MODEL_PARAMETER, "")
    return (int(text), None) if text.isdigit() else None


def session_model(registry: Registry) -> Run | None:
    """The model this browser session uses: its own choice, else the registry's active model.

    The choice is kept in the page address too, so a reload keeps it. A choice whose
    run or file is gone, or that this user may no longer see, falls back to the
    registry's active model (the default for new sessions), and the sidebar says so
    once (:func:`lost_model_notice`); one person's switch never changes another's model.
    """
    chosen = _chosen_model()
    if chosen is not None:
        run_id, name = chosen
        try:
            run = registry.get_run(run_id)
        except NucleiError:
            run = None
        if run is not None and has_model_file(run) and may_see(current_user(), run):
            st.session_state["session_model"] = (run.id, run.name)
            if st.query_params.get(MODEL_PARAMETER) != str(run.id):  # cleared by navigation
                st.query_params[MODEL_PARAMETER] = str(run.id)
            return run
        st.session_state.pop("session_model", None)
        st.query_params.pop(MODEL_PARAMETER, None)
        if name is not None:
            st.session_state["session_model_lost"] = name
    return registry.active_model()


def lost_model_notice() -> str | None:
    """Once, after the session's model was deleted elsewhere: what happened to it."""
    name = st.session_state.pop("session_model_lost", None)
    if name is None:
        return None
    return (
        f"The model you chose, {plain(name)}, was deleted or is no longer shared; this "
        "session now uses the default model."
    )


def use_model(registry: Registry, run_id: int) -> None:
    """Make ``run_id`` this session's model (kept in the page address for a reload); the
    first model also becomes the default."""
    run = registry.get_run(run_id)
    st.session_state["session_model"] = (run.id, run.name)
    st.query_params[MODEL_PARAMETER] = str(run.id)
    if registry.active_model() is None:
        registry.set_active_model(run_id)


def kept(widget, label: str, *, key: str, default, **options):
    """Show ``widget(label, key=key, **options)`` starting from its last value, else ``default``.

    Streamlit forgets a widget's value when a run does not show it (the
    training form is hidden while a job runs); the value is kept in
    ``kept_<key>`` and given back when the widget returns.
    """
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(f"kept_{key}", default)
    value = widget(label, key=key, **options)
    st.session_state[f"kept_{key}"] = value
    return value


# --------------------------------------------------------------------------- models


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def _load_model(path: str, mtime_ns: int):
    """The model on the fastest inference runtime installed (see
    ``nuclei_core.network.runtime``)."""
    from nuclei_core.network.runtime import load_inference_model

    return load_inference_model(path, backend="auto")


def clear_model_cache() -> None:
    """Forget loaded models (after a model was replaced or deleted)."""
    _load_model.clear()


def require_model(registry: Registry):
    """``(run, model, model_key)`` of the session's model, or ``(None, None, None)`` with a message.

    The model is :func:`session_model`: the one this browser session chose, else
    the registry's active model.
    """
    run = session_model(registry)
    if run is None:
        st.info(NO_MODEL_TEXT)
        return None, None, None
    try:
        path, mtime_ns = model_file_key(run)
        model = _load_model(path, mtime_ns)
    except NucleiError as error:
        st.error(str(error))
        st.info(NO_MODEL_TEXT)
        return None, None, None
    return run, model, f"{run.id}:{mtime_ns}"


# --------------------------------------------------------------------------- results


def probabilities(key: tuple, model, image, options: SegmentOptions):
    """Network output for an image, the options it was made with (the diameter resolved) and
    the nuclei its size estimate found (a
    :class:`~nuclei_core.segmentation.segment.SizedPrediction`), computed once per (image,
    model, flips, diameter) with a progress bar, in turn with the server's other work
    (:func:`ui.background.turn`).

    Only the latest result is kept (a 4096 x 4096 image needs 128 MB).
    """
    cached = st.session_state.get("segment_probabilities")
    if cached is not None and cached[0] == key:
        return cached[1]
    bar = st.progress(0.0, text="Finding nuclei…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Predicting tile {done} of {total}")

    with background.turn(bar):
        result = predict_with_size(model, image, options, progress=progress)
    bar.empty()
    st.session_state["segment_probabilities"] = (key, result)
    return result


@st.cache_resource(show_spinner=False)
def folder_results() -> dict:
    """Scores of dataset folders, shared by all sessions: ``{(model key, folder, split): ...}``."""
    return {}


def remember_folder_result(key: tuple, result, keep: int = 4) -> None:
    """Store a folder's scores, dropping the oldest beyond ``keep`` entries."""
    store = folder_results()
    store[key] = result
    while len(store) > keep:
        store.pop(next(iter(store)))
