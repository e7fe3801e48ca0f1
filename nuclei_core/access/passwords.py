"""The shared lab password: a salted scrypt hash to configure, a check, a growing delay.

:func:`hash_password` gives the text an operator puts in ``NUCLEI_PASSWORD_HASH`` or
in ``.streamlit/secrets.toml`` (``[access] password_hash = "..."``): the scrypt
parameters, the salt and the hash, never the password (``nuclei hash-password``
prints it). :func:`verify_password` checks a password against it in constant time;
:func:`failure_delay` is how long a sign-in waits after repeated wrong passwords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from nuclei_core.errors import ConfigError, InputError, InputTypeError

SCHEME = "scrypt"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # about 16 MB and 50 ms per check
SALT_BYTES, HASH_BYTES = 16, 32
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_DELAY_S = 30.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


SCRYPT_MAX_MEMORY = 2**26
"""Most memory one sign-in's scrypt may take (64 MiB): a stored hash asking for more is refused
by :func:`check_stored_hash` (hashlib would raise at sign-in)."""


def _scrypt_memory(n: int, r: int, p: int) -> int:
    """The bytes OpenSSL's scrypt allocates for these parameters."""
    return 128 * r * (n + p + 2)


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=SCRYPT_MAX_MEMORY,
        dklen=HASH_BYTES,
    )


def _check_password(password) -> str:
    if not isinstance(password, str):
        raise InputTypeError(f"password must be a str, got {type(password).__name__}")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InputError(f"password is longer than {MAX_PASSWORD_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    """The salted scrypt hash of ``password``, as the configuration holds it.

    Raises
    ------
    InputError
        The password is shorter than :data:`MIN_PASSWORD_LENGTH` characters.

    Examples
    --------
    >>> stored = hash_password("correct horse")
    >>> stored.startswith("scrypt$16384$8$1$"), verify_password("correct horse", stored)
    (True, True)
    >>> hash_password("short")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: the password must have at least 8 characters, got 5
    """
    password = _check_password(password)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters, got {len(password)}"
        )
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _derive(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"{SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_stored_hash(stored) -> tuple[int, int, int, bytes, bytes]:
    """The parameters, salt and hash of a configured password hash, checked.

    Raises
    ------
    ConfigError
        Not a hash :func:`hash_password` wrote (the message says what is wrong, never
        the text itself: it may be a password pasted by mistake).

    Examples
    --------
    >>> check_stored_hash("hunter22")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.ConfigError: the configured password hash is not one 'nuclei hash-password' prints (expected scrypt$N$r$p$salt$hash)
    """  # noqa: E501
    problem = ConfigError(
        "the configured password hash is not one 'nuclei hash-password' prints "
        "(expected scrypt$N$r$p$salt$hash)"
    )
    parts = stored.strip().split("$") if isinstance(stored, str) else []
    if len(parts) != 6 or parts[0] != SCHEME or not all(part.isdigit() for part in parts[1:4]):
        raise problem
    n, r, p = (int(part) for part in parts[1:4])
    if n < 2**10 or n > 2**20 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise problem
    if _scrypt_memory(n, r, p) > SCRYPT_MAX_MEMORY:
        raise ConfigError(
            f"the configured password hash asks scrypt for {_scrypt_memory(n, r, p):,} bytes "
            f"(N={n}, r={r}, p={p}), over the limit of {SCRYPT_MAX_MEMORY:,}: make it again "
            "with 'nuclei hash-password'"
        )
    try:
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise problem from None
    if len(salt) < 8 or len(digest) != HASH_BYTES:
        raise problem
    return n, r, p, salt, digest


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one whose hash is ``stored`` (constant-time comparison).

    Raises
    ------
    ConfigError
        ``stored`` is not a hash :func:`hash_password` wrote.

    Examples
    --------
    >>> stored = hash_password("lab password")
    >>> verify_password("lab password", stored), verify_password("lab passwore", stored)
    (True, False)
    """
    n, r, p, salt, digest = check_stored_hash(stored)
    try:
        password = _check_password(password)
    except InputError:
        return False
    return hmac.compare_digest(_derive(password, salt, n, r, p), digest)


def failure_delay(failures: int) -> float:
    """Seconds a sign-in waits after ``failures`` wrong passwords in a row: 0 for the first
    two, then doubling from 1 s, at most :data:`MAX_DELAY_S`.

    Examples
    --------
    >>> [failure_delay(count) for count in (0, 1, 2, 3, 4, 10)]
    [0.0, 0.0, 1.0, 2.0, 4.0, 30.0]
    """
    if failures < 2:
        return 0.0
    return min(MAX_DELAY_S, 2.0 ** (failures - 2))
