"""Streamlit state shared by app.py and the pages: the registry, loaded models, cached results.

Everything here is about caches and session state; the work itself is done by
``nuclei_core``. The registry, loaded models and folder scores live in
``st.cache_resource`` (one per server process); session-state keys:

* ``segment_probabilities``: ``(key, probabilities)`` of the last network pass on
  the Segment page, the key being (image hash, model key, test-time flips).
"""

from __future__ import annotations

import streamlit as st

from nuclei_core import jobs
from nuclei_core.catalogue import bootstrap_registry, model_file_key
from nuclei_core.errors import NucleiError
from nuclei_core.locations import default_model_path
from nuclei_core.registry import Registry, default_registry_path
from nuclei_core.segment import SegmentOptions, predict_image
from ui.messages import NO_MODEL_TEXT

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


# --------------------------------------------------------------------------- models


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def _load_model(path: str, mtime_ns: int):
    """The model on the fastest inference runtime installed (see ``nuclei_core.runtime``)."""
    from nuclei_core.runtime import load_inference_model

    return load_inference_model(path, backend="auto")


def clear_model_cache() -> None:
    """Forget loaded models (after a model was replaced or deleted)."""
    _load_model.clear()


def require_model(registry: Registry):
    """``(run, model, model_key)`` of the active model, or ``(None, None, None)`` with a message."""
    run = registry.active_model()
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
    """Network output for an image, computed once per (image, model, flips) with a progress bar.

    Only the latest result is kept (a 4096 x 4096 image needs 128 MB).
    """
    cached = st.session_state.get("segment_probabilities")
    if cached is not None and cached[0] == key:
        return cached[1]
    bar = st.progress(0.0, text="Finding nuclei…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Predicting tile {done} of {total}")

    result = predict_image(model, image, options, progress=progress)
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
