"""Deep links: a page opened by its URL before ``app.py`` ever ran is sent through ``app.py``.

Streamlit treats a ``pages/`` folder as a legacy multipage app until the first
``st.navigation`` call of the server process; a page opened by its URL in a fresh
server would then run without ``app.py`` and its sidebar. Every page starts with
:func:`ensure_app_shell`; ``app.py`` calls :func:`open_requested_page` after
``st.navigation``. Session-state key: ``requested_page``. ``tests/conftest.py``
gives AppTest the behaviour of a server after its first ``st.navigation`` call.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st


def ensure_app_shell(page_file: str) -> None:
    """Run ``app.py`` first when a page was opened before it ever ran.

    The page is remembered and ``app.py`` switches to it (see :func:`open_requested_page`).
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
