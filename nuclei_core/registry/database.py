"""The registry's SQLite file: schema, migrations, connections, transactions and rows.

:class:`RegistryDatabase` is the bottom layer of :class:`nuclei_core.registry.Registry`:
it opens the file in WAL mode, so readers never wait for the writer, brings its
schema up to :data:`SCHEMA_VERSION` (the version reached is kept in ``PRAGMA
user_version``; ``_MIGRATIONS[n]`` goes from version ``n`` to ``n + 1``), and gives
every operation its own short-lived connection through one transaction helper,
``_session``: writes run in ``BEGIN IMMEDIATE`` transactions that wait up to 10 s
for a lock instead of failing with "database is locked", and SQLite errors become
a :class:`~nuclei_core.errors.StorageError` naming the file.  Rows of ``runs``
come back as :class:`Run` records.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nuclei_core.errors import InputError, StorageError
from nuclei_core.locations import data_folder
from nuclei_core.storage import ensure_dir

STATUSES = ("queued", "running", "finished", "failed", "stopped")
"""Every status a run can have."""

ACTIVE_STATUSES = ("queued", "running")
"""Statuses of a run whose training process should still be alive."""

ENDED_STATUSES = ("finished", "failed", "stopped")
"""Statuses that set ``finished_at``."""

REGISTRY_FILE_NAME = "registry.sqlite3"
"""File name of the default registry inside :func:`nuclei_core.locations.data_folder`."""

SCHEMA_VERSION = 2
"""Schema version this code writes (``PRAGMA user_version``)."""

ACTIVE_MODEL_KEY = "active_model_id"
"""Key in the ``settings`` table whose value is the active model's run id."""

_BUSY_TIMEOUT_S = 10.0
_WAL_RETRY_S = 0.02

_SCHEMA_V1 = (
    """
    CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT UNIQUE NOT NULL,
        architecture TEXT,
        params_json TEXT NOT NULL DEFAULT '{}',
        dataset TEXT,
        status TEXT NOT NULL DEFAULT 'queued'
            CHECK (status IN ('queued', 'running', 'finished', 'failed', 'stopped')),
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        model_path TEXT,
        card_path TEXT,
        pid INTEGER,
        message TEXT,
        best_epoch INTEGER,
        final_metrics_json TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS epochs (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        metrics_json TEXT NOT NULL,
        PRIMARY KEY (run_id, epoch)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS settings (
        key TEXT PRIMARY KEY,
        value TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status)",
)

_OWNERS_V2 = (
    # who made a run (a signed-in user's name); NULL: shared, made before users or published
    "ALTER TABLE runs ADD COLUMN owner TEXT",
)

_MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1, _OWNERS_V2)
"""``_MIGRATIONS[n]`` takes the schema from version ``n`` to ``n + 1``; one per version."""


@dataclass(frozen=True)
class Run:
    """One training run as stored in the registry (a row of ``runs``).

    Timestamps are ISO-8601 UTC strings (``None`` until the event happened);
    ``params`` and ``final_metrics`` are decoded dicts (empty when unset); ``owner`` is
    the user who made it (:mod:`nuclei_core.access.users`), ``None`` for a shared run.

    Examples
    --------
    >>> run = registry.create_run("baseline", "unet", {"epochs": 2}, "stage1_train")
    >>> run.name, run.status, run.params, run.is_active
    ('baseline', 'queued', {'epochs': 2}, True)
    """

    id: int
    name: str
    architecture: str | None
    params: dict[str, Any] = field(hash=False)
    dataset: str | None
    status: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    model_path: str | None
    card_path: str | None
    pid: int | None
    message: str | None
    best_epoch: int | None
    final_metrics: dict[str, Any] = field(hash=False)
    owner: str | None = None

    @property
    def is_active(self) -> bool:
        """Whether the run is queued or running (its process should be alive)."""
        return self.status in ACTIVE_STATUSES


def default_registry_path() -> Path:
    """Return the data folder's registry file, ``data_folder()/registry.sqlite3``.

    Examples
    --------
    >>> default_registry_path() == registry.path
    True
    """
    return ensure_dir(data_folder()) / REGISTRY_FILE_NAME


def _switch_to_wal(connection: sqlite3.Connection) -> None:
    """Put the file in WAL mode, retrying while another connection switches it.

    SQLite answers ``PRAGMA journal_mode = WAL`` with "database is locked" at
    once, without its busy handler, when several connections open a new file
    together (two sessions starting a job at the same moment); so the switch is
    retried until the busy timeout.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(_WAL_RETRY_S)


class RegistryDatabase:
    """The registry's SQLite file; the base of :class:`~nuclei_core.registry.Registry`.

    Parameters
    ----------
    path : str or path-like, optional
        The database file; default :func:`default_registry_path`.  Its folder
        is created if needed; the file and its schema too.

    Raises
    ------
    StorageError
        If the file is not a SQLite database, was written by a newer schema,
        or its folder is not writable.

    Examples
    --------
    >>> import tempfile
    >>> database = RegistryDatabase(Path(tempfile.mkdtemp()) / "registry.sqlite3")
    >>> database.path.name
    'registry.sqlite3'
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            path = default_registry_path()
        self._path = Path(path).expanduser().absolute()
        ensure_dir(self._path.parent)
        self._open()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self._path)!r})"

    # -- connections ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """Open a connection in autocommit mode with the busy timeout and foreign keys."""
        connection = sqlite3.connect(self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            connection.row_factory = sqlite3.Row
            connection.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            connection.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            connection.close()
            raise
        return connection

    @contextlib.contextmanager
    def _session(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """Yield a fresh connection; with ``write`` inside one ``BEGIN IMMEDIATE`` transaction.

        The transaction commits when the block ends and rolls back if it raises;
        SQLite errors become :class:`StorageError` naming the file.
        """
        try:
            connection = self._connect()
            try:
                if write:
                    with connection:
                        connection.execute("BEGIN IMMEDIATE")
                        yield connection
                else:
                    yield connection
            finally:
                connection.close()
        except sqlite3.Error as error:
            raise self._storage_error(error) from error

    def _storage_error(self, error: sqlite3.Error) -> StorageError:
        """Turn a SQLite error into a one-line StorageError naming the file."""
        text = str(error)
        if "not a database" in text or "malformed" in text:
            return StorageError(
                f"registry file {self._path} is not a usable SQLite database ({text}); "
                "move it away to start a new registry"
            )
        return StorageError(f"registry {self._path}: {text}")

    def _open(self) -> None:
        """Switch the file to WAL mode and bring its schema up to :data:`SCHEMA_VERSION`."""
        with self._session() as connection:
            _switch_to_wal(connection)
            version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        with self._session(write=True) as connection:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StorageError(
                    f"registry {self._path} has schema version {version}, newer than "
                    f"{SCHEMA_VERSION}; update nuclei_core"
                )
            for statements in _MIGRATIONS[version:]:
                for statement in statements:
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- rows ----------------------------------------------------------------------------

    def _decode(self, text: str | None, what: str) -> dict[str, Any]:
        """Decode a JSON object column (``None`` gives ``{}``)."""
        if text is None:
            return {}
        try:
            value = json.loads(text)
        except ValueError as error:
            raise StorageError(f"registry {self._path}: {what} is not valid JSON") from error
        if not isinstance(value, dict):
            raise StorageError(f"registry {self._path}: {what} is not a JSON object")
        return value

    def _run_from_row(self, row: sqlite3.Row) -> Run:
        """Build a :class:`Run` from a ``runs`` row."""
        return Run(
            id=row["id"],
            name=row["name"],
            architecture=row["architecture"],
            params=self._decode(row["params_json"], f"params of run {row['id']}"),
            dataset=row["dataset"],
            status=row["status"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            model_path=row["model_path"],
            card_path=row["card_path"],
            pid=row["pid"],
            message=row["message"],
            best_epoch=row["best_epoch"],
            final_metrics=self._decode(
                row["final_metrics_json"], f"final metrics of run {row['id']}"
            ),
            owner=row["owner"],
        )

    def _fetch(self, connection: sqlite3.Connection, run_id: int) -> Run:
        """Return run ``run_id`` or raise InputError."""
        row = connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise InputError(f"no run with id {run_id}")
        return self._run_from_row(row)

    @staticmethod
    def _unique_name(
        connection: sqlite3.Connection, name: str, exclude_id: int | None = None
    ) -> str:
        """Return ``name``, or ``name (2)``, ``name (3)``... whichever is free."""
        candidate, counter = name, 1
        while True:
            row = connection.execute(
                "SELECT id FROM runs WHERE name = ? AND id IS NOT ?", (candidate, exclude_id)
            ).fetchone()
            if row is None:
                return candidate
            counter += 1
            candidate = f"{name} ({counter})"
