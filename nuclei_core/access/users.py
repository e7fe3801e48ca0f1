"""Who uses a served dashboard and what each may change: users, their folders, operators.

A :class:`User` is who is signed in: the single-sign-on account (its e-mail), the name
typed beside the lab password, or the one person of an app on a loopback address
(:data:`LOCAL_USER`). A signed-in user's datasets live in their own folder,
``<data folder>/users/<folder name>/`` (:func:`user_folder`), and the runs and models
they make carry their name (the registry's ``owner``). A run with no owner (the bundled
default, the models an operator publishes, everything made before there were users) is
shared: every user sees it, only an operator changes it; a user's own run is seen and
changed by that user and the operators only. Operators are named in the configuration
(``NUCLEI_OPERATORS`` for single sign-on) or sign in with the operator password.

With a shared lab password the typed name proves nothing: anyone who knows the password
may type anyone's name. It keeps people's work apart by accident, not by intent (the
README says so).

Examples
--------
>>> from types import SimpleNamespace
>>> alice, bob = User("alice@lab.org"), User("bob@lab.org")
>>> mine = SimpleNamespace(owner="alice@lab.org")
>>> may_see(alice, mine), may_see(bob, mine), may_change(bob, mine)
(True, False, False)
>>> shared = SimpleNamespace(owner=None)
>>> may_see(bob, shared), may_change(bob, shared), may_change(User("op", operator=True), shared)
(True, False, True)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nuclei_core import locations
from nuclei_core.errors import InputError, InputTypeError

USERS_FOLDER_NAME = "users"  # <data folder>/users/<folder name>/: one signed-in user's files
MAX_USER_NAME = 100
_NAME_CHARACTERS = re.compile(r"[\w .@+-]+")
_FOLDER_CHARACTERS = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class User:
    """Who is signed in: ``name`` (``None`` for the one person of a loopback app) and
    whether they are an operator (who changes shared models and the default)."""

    name: str | None
    operator: bool = False

    @property
    def owner(self) -> str | None:
        """What the registry records as the owner of what this user makes."""
        return self.name

    @property
    def data_root(self) -> Path:
        """The folder of this user's files: the data folder itself for the local user,
        :func:`user_folder` for a signed-in one (``datasets/``, ``models/``, ``slides/``)."""
        return locations.data_folder() if self.name is None else user_folder(self.name)

    @property
    def datasets_root(self) -> Path:
        """The folder of this user's datasets (``<data folder>/datasets`` for the local user)."""
        return self.data_root / "datasets"


LOCAL_USER = User(None, operator=True)
"""The one person of an app served on a loopback address: everything is theirs."""


def check_user_name(name: Any) -> str:
    """The name typed beside the lab password, checked: 1 to 100 letters, digits, blanks
    and ``. @ + - _``.

    Raises
    ------
    InputError, InputTypeError
        Empty, too long, or other characters (path parts, HTML, control characters).

    Examples
    --------
    >>> check_user_name("  Ada Lovelace ")
    'Ada Lovelace'
    >>> check_user_name("../root")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: your name may hold only letters, digits, blanks ...
    """
    if not isinstance(name, str):
        raise InputTypeError(f"name must be a str, not {type(name).__name__}")
    text = " ".join(name.split())
    if not text:
        raise InputError("type your name: your datasets are kept under it")
    if len(text) > MAX_USER_NAME:
        raise InputError(f"your name is longer than {MAX_USER_NAME} characters")
    if not _NAME_CHARACTERS.fullmatch(text):
        raise InputError(
            "your name may hold only letters, digits, blanks and . @ + - _ "
            f"(at most {MAX_USER_NAME} characters)"
        )
    return text


def folder_name(owner: str) -> str:
    """The folder of a user under ``<data folder>/users/``: a readable part of the name and
    a hash of it (names differing in case are the same user; others never share a folder).

    Examples
    --------
    >>> folder_name("Alice@Lab.org")
    'alice-lab-org-0255e3b0'
    >>> folder_name("alice@lab.org") == folder_name("Alice@Lab.org")
    True
    >>> folder_name("../..")[:5]
    'user-'
    """
    if not isinstance(owner, str) or not owner.strip():
        raise InputError("owner must be a non-empty name")
    key = owner.strip().lower()
    readable = _FOLDER_CHARACTERS.sub("-", key).strip("-")[:40] or "user"
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def user_folder(owner: str) -> Path:
    """``<data folder>/users/<folder name>``: where one signed-in user's files live (not
    created here).

    Examples
    --------
    >>> user_folder("ada").parent == locations.data_folder() / "users"
    True
    """
    return locations.data_folder() / USERS_FOLDER_NAME / folder_name(owner)


def same_user(first: str | None, second: str | None) -> bool:
    """Whether two owner names are one user (case and surrounding blanks aside).

    Examples
    --------
    >>> same_user("Ada@lab.org ", "ada@lab.org"), same_user(None, None), same_user("a", None)
    (True, False, False)
    """
    if first is None or second is None:
        return False
    return first.strip().lower() == second.strip().lower()


def may_see(user: User, run) -> bool:
    """Whether ``user`` sees ``run``: shared runs, their own, and everything for operators."""
    return run.owner is None or user.operator or same_user(user.name, run.owner)


def may_change(user: User, run) -> bool:
    """Whether ``user`` may rename, delete, stop or publish ``run``: an operator, or the
    user who made it. Shared runs are read-only to users."""
    return user.operator or same_user(user.name, run.owner)


def visible_runs(user: User, runs: Iterable) -> list:
    """The runs of ``runs`` that ``user`` sees, in their order (:func:`may_see`)."""
    return [run for run in runs if may_see(user, run)]


def is_operator_account(account: str | None, operators: Iterable[str]) -> bool:
    """Whether a single-sign-on ``account`` (an e-mail) is one of the configured operators.

    Examples
    --------
    >>> is_operator_account("Ada@Lab.org", ["ada@lab.org", "bob@lab.org"])
    True
    >>> is_operator_account(None, ["ada@lab.org"]), is_operator_account("eve@x", [])
    (False, False)
    """
    return any(same_user(account, operator) for operator in operators)
