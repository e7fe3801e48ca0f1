"""The door of a served dashboard: the lab password, single sign-on, or no anonymous server.

:func:`gate` runs first in ``app.py``. What it does follows
:func:`nuclei_core.access.serving.decide_access` for the address Streamlit listens on
(``server.address``) and the operator's configuration: the password hash from
``$NUCLEI_PASSWORD_HASH`` or ``.streamlit/secrets.toml`` (``[access] password_hash``),
single sign-on from ``secrets.toml [auth]`` (Streamlit's ``st.login``),
``NUCLEI_ALLOW_ANONYMOUS=1``. Until a visitor has signed in, no page of the app runs;
after, every path typed on a page goes through :func:`server_path` (the allowed roots).
Wrong passwords wait longer and longer, counted for the whole server (a new browser
session does not start the count again). :func:`current_user` says who is signed in
(:class:`nuclei_core.access.users.User`): the single-sign-on account, the name typed
beside the lab password, or the one local user of a loopback app; operators are the
accounts of ``NUCLEI_OPERATORS`` (or ``secrets.toml [access] operators``) and whoever
signs in with the operator password (``NUCLEI_OPERATOR_PASSWORD_HASH`` or ``[access]
operator_password_hash``).
"""

from __future__ import annotations

import threading
import time

import streamlit as st

from nuclei_core import locations
from nuclei_core.access.passwords import failure_delay, verify_password
from nuclei_core.access.roots import check_server_path
from nuclei_core.access.serving import SET_PASSWORD_COMMAND, Access, decide_access
from nuclei_core.access.users import LOCAL_USER, User, check_user_name, is_operator_account
from nuclei_core.errors import ConfigError, InputError
from ui.wording import plain

SIGNED_IN_KEY = "signin_signed_in"  # the User signed in with the lab password
ANONYMOUS_USER = User("anonymous")  # everyone on an anonymous server: one shared user
WRONG_PASSWORD_TEXT = "Wrong password."
REFUSED_TEXT = (
    "**This dashboard is reachable from the network and has no sign-in**, so it does not "
    "open. Set a lab password and start it again:"
)
ANONYMOUS_TEXT = (
    "Anyone who can reach this server can use this dashboard: it was started without "
    "sign-in on purpose (NUCLEI_ALLOW_ANONYMOUS=1)."
)


def _secret(section: str, key: str | None = None):
    """A value of ``.streamlit/secrets.toml`` (None where there is no such file or key)."""
    try:
        value = st.secrets.get(section)
    except Exception:  # no secrets file: Streamlit raises its own error types
        return None
    if key is None or value is None:
        return value
    return value.get(key) if hasattr(value, "get") else None


def current_access() -> Access:
    """How this server runs: :func:`~nuclei_core.access.serving.decide_access` on its settings."""
    return decide_access(
        st.get_option("server.address"),
        locations.password_hash_setting() or _secret("access", "password_hash"),
        _secret("auth") is not None,
        locations.anonymous_allowed(),
    )


def _wait(seconds: float) -> None:
    """Sleep ``seconds`` (this session's script only)."""
    time.sleep(seconds)


@st.cache_resource
def _failures() -> dict:
    """Wrong passwords in a row, for the whole server."""
    return {"count": 0, "lock": threading.Lock()}


def _operator_hash() -> str | None:
    return locations.operator_hash_setting() or _secret("access", "operator_password_hash")


def _password_form(access: Access) -> None:
    st.title("Nuclei segmentation")
    st.write(
        "This dashboard is shared by a lab. Sign in with your name and the lab password; "
        "your datasets and models are kept under your name."
    )
    with st.form("signin_form"):
        name = st.text_input("Your name", key="signin_name", max_chars=100)
        password = st.text_input("Lab password", type="password", key="signin_password")
        submitted = st.form_submit_button("Sign in")
    if not submitted:
        return
    try:
        name = check_user_name(name)
    except InputError as error:
        st.error(f"{str(error)[:1].upper()}{str(error)[1:]}.")
        return
    failures = _failures()
    _wait(failure_delay(failures["count"]))  # before the check: no early answer
    operator_hash = _operator_hash()
    operator = bool(operator_hash) and verify_password(password, operator_hash)
    if operator or verify_password(password, access.password_hash):
        with failures["lock"]:
            failures["count"] = 0
        st.session_state[SIGNED_IN_KEY] = User(name, operator=operator)
        st.rerun()
    with failures["lock"]:
        failures["count"] += 1
    st.error(WRONG_PASSWORD_TEXT)


def _single_sign_on_page() -> None:
    st.title("Nuclei segmentation")
    st.write("This dashboard is shared by a lab. Sign in with your institution's account.")
    if st.button("Sign in", type="primary"):
        st.login()


def _refused_page() -> None:
    st.title("Nuclei segmentation")
    st.error(REFUSED_TEXT)
    st.code(
        f"{SET_PASSWORD_COMMAND}        # type the password; it prints its hash\n"
        "NUCLEI_PASSWORD_HASH='scrypt$...' streamlit run app.py --server.address 0.0.0.0",
        language="bash",
    )
    st.caption(
        'Or put the hash in .streamlit/secrets.toml as [access] password_hash = "...", '
        "or configure single sign-on ([auth], see the README)."
    )


def _locked(page) -> bool:
    """Show ``page`` as the only page of the app; False (the app must stop)."""
    st.navigation([st.Page(page, title="Sign in", url_path="sign-in")], position="hidden").run()
    return False


def gate() -> bool:
    """Whether the app may show its pages now; otherwise the sign-in (or refusal) ran."""
    try:
        access = current_access()
    except ConfigError as error:
        st.error(f"The sign-in is misconfigured: {error}")
        return False
    if access.mode == "refused":
        return _locked(_refused_page)
    if access.mode == "password" and not st.session_state.get(SIGNED_IN_KEY):
        return _locked(lambda: _password_form(access))
    if access.mode == "single-sign-on" and not st.user.is_logged_in:
        return _locked(_single_sign_on_page)
    return True


def current_user(access: Access | None = None) -> User:
    """Who uses this browser session (:class:`~nuclei_core.access.users.User`)."""
    access = access or current_access()
    if access.mode == "password":
        return st.session_state.get(SIGNED_IN_KEY) or ANONYMOUS_USER
    if access.mode == "single-sign-on":
        account = st.user.get("email") or st.user.get("sub") or "unknown"
        operators = locations.operators_setting() + list(_secret("access", "operators") or [])
        return User(str(account), operator=is_operator_account(str(account), operators))
    return ANONYMOUS_USER if access.mode == "anonymous" else LOCAL_USER


def banner(access: Access) -> None:
    """The warning every page of an anonymous network server starts with."""
    if access.mode == "anonymous":
        st.warning(ANONYMOUS_TEXT, icon=":material/public:")


def sidebar(access: Access) -> None:
    """Who is signed in, and the Sign out button."""
    user = current_user(access)
    role = " (operator)" if user.operator else ""
    if access.mode == "password":
        st.caption(f"Signed in as {plain(user.name or '')}{role}")
        if st.button("Sign out", key="signin_sign_out"):
            st.session_state.pop(SIGNED_IN_KEY, None)
            st.rerun()
    elif access.mode == "single-sign-on":
        who = st.user.get("name") or user.name
        st.caption(f"Signed in as {plain(str(who))}{role}")
        if st.button("Sign out", key="signin_sign_out"):
            st.logout()


def server_path(text: str) -> str:
    """A path typed on a page, as the engine may read it: as typed on an open (loopback)
    app; otherwise resolved and checked against the allowed roots
    (:func:`nuclei_core.access.roots.check_server_path`, which raises ``InputError``)."""
    if current_access().mode == "open":
        return text
    return str(check_server_path(text))
