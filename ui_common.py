"""Streamlit helpers shared by app.py and the pages: registry, loaded model, messages.

Everything here is about Streamlit state (caches, session state, messages); the
work itself is done by ``nuclei_core``.  Session-state keys used across pages:

* ``segment_probabilities``: ``(key, probabilities)`` of the last network pass on
  the Segment page, the key being (image hash, model key, test-time flips);
* ``flash_messages``: messages to show once after a rerun (model switched ...).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import streamlit as st

from nuclei_core import dashboard, jobs, segment
from nuclei_core.errors import NucleiError
from nuclei_core.registry import REGISTRY_FILE_NAME, Registry
from nuclei_core.storage import data_dir

NO_MODEL_TEXT = (
    "**No model is available yet.** Train one or upload a `.keras` file on the "
    "**Train or load a model** page, or pick a registered model in the sidebar."
)


# --------------------------------------------------------------------------- navigation


def ensure_app_shell(page_file: str) -> None:
    """Run ``app.py`` first when a page was opened before it ever ran.

    Streamlit treats a ``pages/`` folder as a legacy multipage app until the first
    ``st.navigation`` call of the process; a page opened by its URL in a fresh
    server would then run without ``app.py`` and its sidebar.  The page is
    remembered and ``app.py`` switches to it (see :func:`open_requested_page`).
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        st.session_state["requested_page"] = f"pages/{Path(page_file).name}"
        st.switch_page("app.py")


def open_requested_page() -> None:
    """In ``app.py``: go to the page an early deep link asked for (once)."""
    requested = st.session_state.pop("requested_page", None)
    if requested:
        st.switch_page(requested)


# --------------------------------------------------------------------------- pictures


def show_pictures(pictures, widths=None) -> None:
    """Show ``(rgb, caption)`` or ``(rgb, caption, alt)`` side by side, shrunk for the browser.

    ``widths`` are relative column widths (default: equal).
    """
    columns = st.columns(widths or len(pictures))
    for column, (picture, caption, *alt) in zip(columns, pictures, strict=True):
        column.image(
            dashboard.display_size(picture),
            caption=caption,
            alt=alt[0] if alt else caption,
            width="stretch",
            output_format="PNG",
        )


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
        dashboard.bootstrap_registry(registry, default_model)
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
    path = str(data_dir() / REGISTRY_FILE_NAME)
    opened = _open_registry(path)
    _first_start(path, str(dashboard.default_model_path()))
    return opened


def startup_report() -> dict:
    """What the first start did (runs marked failed, a problem with the default model)."""
    path = str(data_dir() / REGISTRY_FILE_NAME)
    return _first_start(path, str(dashboard.default_model_path()))


# --------------------------------------------------------------------------- models


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def _load_model(path: str, mtime_ns: int):
    from nuclei_core.model import load_model

    return load_model(path)


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
        path, mtime_ns = dashboard.model_file_key(run)
        model = _load_model(path, mtime_ns)
    except NucleiError as error:
        st.error(str(error))
        st.info(NO_MODEL_TEXT)
        return None, None, None
    return run, model, f"{run.id}:{mtime_ns}"


def probabilities(key: tuple, model, image, options: segment.SegmentOptions):
    """Network output for an image, computed once per (image, model, flips) with a progress bar.

    Only the latest result is kept (a 4096 x 4096 image needs 128 MB).
    """
    cached = st.session_state.get("segment_probabilities")
    if cached is not None and cached[0] == key:
        return cached[1]
    bar = st.progress(0.0, text="Finding nuclei…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Predicting tile {done} of {total}")

    result = segment.predict_image(model, image, options, progress=progress)
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


# --------------------------------------------------------------------------- messages


@contextlib.contextmanager
def engine_errors(where=None):
    """Show an engine error (``NucleiError``) as ``st.error``; skip the rest of the block."""
    try:
        yield
    except NucleiError as error:
        (where or st).error(str(error).strip().splitlines()[0] if str(error) else repr(error))


def show_warnings(messages, where=None) -> None:
    """Show warnings the engine raised while reading a file."""
    for message in dict.fromkeys(messages):
        (where or st).warning(message)


def flash(message: str, kind: str = "success") -> None:
    """Show ``message`` once, after the next rerun."""
    st.session_state.setdefault("flash_messages", []).append((kind, message))


def show_flash() -> None:
    """Show (and forget) the messages queued by :func:`flash`."""
    for kind, message in st.session_state.pop("flash_messages", []):
        getattr(st, kind)(message)
