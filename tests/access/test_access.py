"""Tests of nuclei_core.access: the lab password's hash and how a server may be used."""

from __future__ import annotations

import pytest

from nuclei_core.access.passwords import check_stored_hash, hash_password, verify_password
from nuclei_core.access.serving import decide_access, is_loopback
from nuclei_core.errors import ConfigError, InputError


def test_each_hash_has_its_own_salt_and_checks_only_its_password():
    first, second = hash_password("same password"), hash_password("same password")
    assert first != second  # salted
    assert verify_password("same password", first) and verify_password("same password", second)
    assert not verify_password("same passwor", first) and not verify_password("", first)
    assert not verify_password("x" * 5000, first)  # an absurd length is a wrong password


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "my password",
        "scrypt$16384$8$1$c2FsdA$aGFzaA",  # a hash too short
        "bcrypt$16384$8$1$c2FsdHNhbHRzYWx0$" + "A" * 43,
        "scrypt$1000$8$1$c2FsdHNhbHRzYWx0$" + "A" * 43,  # N not a power of two
        "scrypt$16384$8$1$***$" + "A" * 43,
        "scrypt$65536$8$1$c2FsdHNhbHRzYWx0$" + "A" * 43,  # 64 MiB and more: hashlib would raise
        "scrypt$1048576$32$1$c2FsdHNhbHRzYWx0$" + "A" * 43,  # 4 GiB
    ],
)
def test_a_configured_hash_that_is_not_one_is_refused_without_showing_it(stored):
    with pytest.raises(ConfigError) as raised:
        check_stored_hash(stored)
    assert "nuclei hash-password" in str(raised.value)
    assert not stored or stored not in str(raised.value)


def test_the_largest_hash_the_check_accepts_verifies():
    """Every hash the check accepts can be verified: none fails at sign-in in hashlib."""
    import base64
    import hashlib

    salt = b"saltsaltsalt"
    n, r = 2**15, 8  # 32 MiB, under the 64 MiB limit
    digest = hashlib.scrypt(b"correct horse", salt=salt, n=n, r=r, p=1, maxmem=2**26, dklen=32)
    encode = lambda data: base64.urlsafe_b64encode(data).decode().rstrip("=")  # noqa: E731
    stored = f"scrypt${n}${r}$1${encode(salt)}${encode(digest)}"
    check_stored_hash(stored)
    assert verify_password("correct horse", stored)


def test_a_short_password_is_refused():
    with pytest.raises(InputError, match="at least 8"):
        hash_password("1234567")


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("192.168.1.5", False), ("lab-server", False),
     ("", False), (None, False)],
)  # fmt: skip
def test_only_loopback_addresses_count_as_this_machine(address, loopback):
    assert is_loopback(address) is loopback


def test_the_access_rule():
    stored = hash_password("lab password")
    assert decide_access("127.0.0.1", None, False, False).mode == "open"
    assert decide_access("0.0.0.0", None, False, False).mode == "refused"
    assert decide_access("0.0.0.0", None, False, True).mode == "anonymous"
    assert decide_access("0.0.0.0", stored, False, True).mode == "password"
    assert decide_access("127.0.0.1", stored, False, False).password_hash == stored
    assert decide_access("0.0.0.0", stored, True, False).mode == "single-sign-on"
    with pytest.raises(ConfigError):
        decide_access("127.0.0.1", "pasted password", False, False)


def test_server_paths_stay_in_their_roots_whatever_the_spelling(tmp_path):
    from nuclei_core.access.roots import check_server_path

    root = (tmp_path / "imports").resolve()
    (root / "plate").mkdir(parents=True)
    (root / "plate" / "a.png").write_bytes(b"png")
    outside = tmp_path / "secret"
    outside.mkdir()
    (root / "link").symlink_to(outside)  # a link that points out of the root
    roots = [("imports/", root)]
    assert check_server_path("plate", roots) == root / "plate"
    assert check_server_path(str(root / "plate" / "a.png"), roots) == root / "plate" / "a.png"
    assert check_server_path("plate/../plate", roots) == root / "plate"
    refused = ["/etc/passwd", "/etc", "../secret", "plate/../../secret", "link", "link/x.png",
               str(outside), "/does/not/exist", "~"]  # fmt: skip
    messages = set()
    for text in refused:
        with pytest.raises(InputError) as raised:
            check_server_path(text, roots)
        messages.add(str(raised.value))
    assert messages == {"this server reads only from imports/; that path is outside"}


def test_the_allowed_roots_are_imports_the_samples_and_the_configured_ones(tmp_path, monkeypatch):
    from nuclei_core.access.roots import allowed_roots

    monkeypatch.setenv("NUCLEI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NUCLEI_ALLOWED_ROOTS", f"{tmp_path / 'scans'}:{tmp_path / 'plates'}")
    folders = [folder for _, folder in allowed_roots()]
    assert folders[0] == (tmp_path / "data" / "imports").resolve()
    assert folders[2:] == [(tmp_path / "scans").resolve(), (tmp_path / "plates").resolve()]
