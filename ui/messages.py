"""Messages the pages show: engine errors and warnings, messages kept across a rerun, outcomes.

The engine reports problems as :class:`~nuclei_core.errors.NucleiError` (one line
naming the file or argument) and reading problems as warnings; here they become
``st.error`` / ``st.warning``. Session-state key: ``flash_messages``, the messages
to show once after the next rerun (model switched, renamed ...).
"""

from __future__ import annotations

import contextlib

import streamlit as st

from nuclei_core.errors import NucleiError
from nuclei_core.registry.catalogue import has_model_file
from ui.wording import plain, validation_line

NO_VALIDATION_TEXT = (
    "No validation figure: this model kept no images apart from training "
    "(a fine-tune on fewer than 5 images validates on none)."
)
NO_MODEL_TEXT = (
    "**No model is available yet.** Train one or upload a `.keras` file on the "
    "**Train or load a model** page, or pick a registered model in the sidebar."
)


@contextlib.contextmanager
def engine_errors(where=None):
    """Show an engine error (``NucleiError``) as ``st.error``; skip the rest of the block."""
    try:
        yield
    except NucleiError as error:
        (where or st).error(str(error).strip().splitlines()[0] if str(error) else repr(error))


def show_warnings(messages, where=None) -> None:
    """Show warnings the engine raised while reading a file (each once)."""
    for message in dict.fromkeys(messages):
        (where or st).warning(message)


def flash(message: str, kind: str = "success") -> None:
    """Show ``message`` once, after the next rerun (``kind``: an ``st`` function name)."""
    st.session_state.setdefault("flash_messages", []).append((kind, message))


def show_flash() -> None:
    """Show (and forget) the messages queued by :func:`flash`."""
    for kind, message in st.session_state.pop("flash_messages", []):
        getattr(st, kind)(message)


def training_outcome(run) -> tuple[str, str] | None:
    """How a training run ended, as ``(kind, text)``: ``"error"``, ``"success"`` or ``"info"``.

    ``"success"`` means the run saved a model one can make active; ``None``
    when there is no run or it is still queued or running.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> training_outcome(SimpleNamespace(name="u", status="failed", message="out of memory"))
    ('error', 'Training run u failed: out of memory')
    >>> print(training_outcome(SimpleNamespace(name="[x](y)", status="failed", message=""))[1])
    Training run \\[x\\]\\(y\\) failed: no message
    """
    if run is None:
        return None
    name, message = plain(run.name), plain(run.message or "")  # shown as typed, not Markdown
    if run.status == "failed":
        return "error", f"Training run {name} failed: {message or 'no message'}"
    if has_model_file(run):
        metrics = validation_line(run, separator=", ")
        text = f"Training run **{name}** {run.status}"
        text += f" (best epoch {run.best_epoch})" if run.best_epoch else ""
        return "success", text + (f": {metrics}" if metrics else ".")
    if not run.is_active:
        return "info", f"Training run {name} {run.status}: {message or 'no model saved'}"
    return None
