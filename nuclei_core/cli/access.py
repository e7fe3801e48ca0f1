"""``hash-password``: the hash of the lab password, for serving the dashboard to a network.

Reads the password on standard input (asked twice, not echoed, at a terminal; the first
line of a pipe otherwise) and prints its salted scrypt hash
(:func:`nuclei_core.access.passwords.hash_password`); the password itself is never
printed or stored. Set the hash as ``NUCLEI_PASSWORD_HASH`` or in
``.streamlit/secrets.toml`` (``[access] password_hash = "..."``).
"""

from __future__ import annotations

import getpass
import sys

from nuclei_core.errors import InputError


def _read_password() -> str:
    """The password from a terminal (asked twice) or the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass("Lab password: ")
        if getpass.getpass("The same again: ") != first:
            raise InputError("the two passwords differ; nothing was printed")
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def _hash_password(args) -> int:
    from nuclei_core.access.passwords import hash_password

    print(hash_password(_read_password()))
    print(
        "set it as NUCLEI_PASSWORD_HASH, or in .streamlit/secrets.toml as "
        '[access] password_hash = "..."',
        file=sys.stderr,
    )
    return 0


def add_commands(commands) -> None:
    """Register ``hash-password``."""
    command = commands.add_parser(
        "hash-password",
        help="print the hash of the lab password read on standard input (to serve the app)",
    )
    command.set_defaults(handler=_hash_password)
