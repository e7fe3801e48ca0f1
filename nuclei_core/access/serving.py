"""How a dashboard server may be used: open, behind the lab password or single sign-on, or not.

:func:`decide_access` takes the address Streamlit listens on and what the operator
configured, and says which :data:`MODES` the app runs in. The rule follows Jupyter's:
no anonymous server on a network. On a loopback address (one person on their own
machine, the default of ``.streamlit/config.toml``) the app opens as it is; with a
password hash or single sign-on configured, every page asks for it first; on any other
address with neither, the app shows only how to set a password, unless the operator
sets ``NUCLEI_ALLOW_ANONYMOUS=1`` on purpose (then a banner says so on every page).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from nuclei_core.access.passwords import check_stored_hash

MODES = ("open", "password", "single-sign-on", "anonymous", "refused")
"""``open``: loopback, no sign-in; ``password``: the lab password; ``single-sign-on``:
Streamlit's ``st.login`` (OpenID Connect); ``anonymous``: a network without sign-in,
allowed on purpose; ``refused``: a network without sign-in, not allowed."""

SET_PASSWORD_COMMAND = "nuclei hash-password"


@dataclass(frozen=True)
class Access:
    """How the app runs (:data:`MODES`) and, for ``password``, the hash to check against."""

    mode: str
    password_hash: str | None = None

    @property
    def needs_sign_in(self) -> bool:
        """Whether every page asks for the password or single sign-on first."""
        return self.mode in ("password", "single-sign-on")


def is_loopback(address) -> bool:
    """Whether Streamlit listening on ``address`` can be reached from this machine only.

    An empty address is Streamlit's default, every interface: not loopback.

    Examples
    --------
    >>> [is_loopback(text) for text in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "", None)]
    [True, True, True, False, False, False]
    """
    if not isinstance(address, str) or not address.strip():
        return False
    text = address.strip().strip("[]")
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to a network interface


def decide_access(
    address, password_hash: str | None, single_sign_on: bool, allow_anonymous: bool
) -> Access:
    """How the app runs, listening on ``address`` with what the operator configured.

    Single sign-on first, then the password; without either, loopback opens and a
    network address is refused unless ``allow_anonymous``.

    Raises
    ------
    ConfigError
        ``password_hash`` is set but is not a hash ``nuclei hash-password`` prints.

    Examples
    --------
    >>> decide_access("127.0.0.1", None, False, False).mode
    'open'
    >>> decide_access("0.0.0.0", None, False, False).mode
    'refused'
    >>> decide_access("0.0.0.0", None, False, True).mode
    'anonymous'
    >>> decide_access("0.0.0.0", None, True, False).needs_sign_in
    True
    """
    if single_sign_on:
        return Access("single-sign-on")
    if password_hash:
        check_stored_hash(password_hash)
        return Access("password", password_hash)
    if is_loopback(address):
        return Access("open")
    return Access("anonymous" if allow_anonymous else "refused")
