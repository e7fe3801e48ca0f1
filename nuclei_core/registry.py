"""Run registry: training runs and their per-epoch metrics in one SQLite file.

The registry is what the dashboard's pages and the training process share:
the training process creates a run, moves it through its statuses and adds
one row of metrics per epoch, while the app lists runs, draws curves and picks
the active model.  It is a SQLite database (standard library ``sqlite3``) in
WAL mode, so readers never wait for the writer, and every operation opens its
own short-lived connection, so one :class:`Registry` object can be shared by
threads and several processes can use the same file at once.  Write
operations run in ``BEGIN IMMEDIATE`` transactions and wait up to 10 s for a
lock instead of failing with "database is locked".

Schema changes are applied on open from ``_MIGRATIONS``; the version reached
is kept in ``PRAGMA user_version``.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
>>> run = registry.create_run("baseline", "unet", {"epochs": 2}, "stage1_train")
>>> registry.add_epoch(run.id, 1, {"loss": 0.4, "val_dice": 0.71})
>>> registry.epochs(run.id)
[{'epoch': 1, 'loss': 0.4, 'val_dice': 0.71}]
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nuclei_core.errors import InputError, InputTypeError, StorageError
from nuclei_core.storage import data_dir, ensure_dir, to_json

STATUSES = ("queued", "running", "finished", "failed", "stopped")
"""Every status a run can have."""

ACTIVE_STATUSES = ("queued", "running")
"""Statuses of a run whose training process should still be alive."""

ENDED_STATUSES = ("finished", "failed", "stopped")
"""Statuses that set ``finished_at``."""

REGISTRY_FILE_NAME = "registry.sqlite3"
"""File name of the default registry inside :func:`nuclei_core.storage.data_dir`."""

SCHEMA_VERSION = 1
"""Schema version this code writes (``PRAGMA user_version``)."""

UPDATABLE_FIELDS = ("model_path", "card_path", "best_epoch", "final_metrics")
"""Fields :meth:`Registry.update_run` accepts."""

_ACTIVE_MODEL_KEY = "active_model_id"
_BUSY_TIMEOUT_S = 10.0

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

_MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1,)
"""``_MIGRATIONS[n]`` takes the schema from version ``n`` to ``n + 1``; one per version."""


@dataclass(frozen=True)
class Run:
    """One training run as stored in the registry (a row of ``runs``).

    Timestamps are ISO-8601 UTC strings (``None`` until the event happened);
    ``params`` and ``final_metrics`` are decoded dicts (empty when unset).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
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

    @property
    def is_active(self) -> bool:
        """Whether the run is queued or running (its process should be alive)."""
        return self.status in ACTIVE_STATUSES


def utc_now() -> str:
    """Return the current time as an ISO-8601 UTC string, to the second.

    Examples
    --------
    >>> utc_now().endswith("+00:00")
    True
    """
    return datetime.now(UTC).isoformat(timespec="seconds")


def _normalise_time(value: Any) -> str:
    """Return ``value`` (ISO-8601 text, maybe naive or ``Z``) as UTC text; now if unusable."""
    if not isinstance(value, str) or not value.strip():
        return utc_now()
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return utc_now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def pid_alive(pid: int) -> bool:
    """Return whether a process with this id exists and is not a zombie.

    Parameters
    ----------
    pid : int
        Process id.

    Returns
    -------
    bool
        ``False`` for ids <= 0, finished processes and unreaped zombies.

    Examples
    --------
    >>> pid_alive(os.getpid())
    True
    """
    if pid <= 0:
        return False
    try:
        import psutil
    except ImportError:
        return _pid_alive_by_signal(pid)
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _pid_alive_by_signal(pid: int) -> bool:
    """Fallback for :func:`pid_alive` without psutil: ``os.kill(pid, 0)``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _check_run_id(run_id: Any) -> int:
    """Return ``run_id`` if it is an int (not a bool), else raise InputTypeError."""
    if isinstance(run_id, bool) or not isinstance(run_id, int):
        raise InputTypeError(f"run_id must be an int, not {type(run_id).__name__}")
    return run_id


def _check_name(name: Any, argument: str) -> str:
    """Return a run name stripped of surrounding blanks; reject empty or non-str."""
    if not isinstance(name, str):
        raise InputTypeError(f"{argument} must be a str, not {type(name).__name__}")
    cleaned = name.strip()
    if not cleaned:
        raise InputError(f"{argument} is empty")
    return cleaned


def _check_status(status: Any) -> str:
    """Return ``status`` if it is one of :data:`STATUSES`, else raise InputError."""
    if status not in STATUSES:
        raise InputError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    return status


def _check_dict(value: Any, argument: str) -> dict[str, Any]:
    """Return a mapping argument as a plain dict (``None`` gives ``{}``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputTypeError(f"{argument} must be a dict, not {type(value).__name__}")
    return dict(value)


def _check_optional_int(value: Any, argument: str) -> int | None:
    """Return ``value`` if it is ``None`` or an int (numpy ints included)."""
    if value is None:
        return None
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InputTypeError(f"{argument} must be an int, not {type(value).__name__}")
    return int(value.__index__())


def _optional_str(value: Any, argument: str) -> str | None:
    """Return ``value`` if it is ``None`` or a str, else raise InputTypeError."""
    if value is None or isinstance(value, str):
        return value
    raise InputTypeError(f"{argument} must be a str, not {type(value).__name__}")


def _optional_text(value: Any, argument: str) -> str | None:
    """Return a str or path-like argument as text (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise InputTypeError(f"{argument} must be a str or path, not {type(value).__name__}")


def _same_path(first: str, second: str) -> bool:
    """Whether two stored paths name the same file (exact text or same real path)."""
    return first == second or os.path.realpath(first) == os.path.realpath(second)


class Registry:
    """The run registry in one SQLite file; safe to share between threads and processes.

    Parameters
    ----------
    path : str or path-like, optional
        The database file; default ``data_dir() / "registry.sqlite3"``.  Its
        folder is created if needed; the file and its schema too.

    Raises
    ------
    StorageError
        If the file is not a SQLite database, was written by a newer schema,
        or its folder is not writable.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
    >>> first = registry.create_run("unet", "unet", {}, "stage1_train")
    >>> second = registry.create_run("unet", "unet", {}, "stage1_train")
    >>> [run.name for run in registry.list_runs()]
    ['unet (2)', 'unet']
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            path = data_dir() / REGISTRY_FILE_NAME
        self._path = Path(path).expanduser().absolute()
        ensure_dir(self._path.parent)
        self._open()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def __repr__(self) -> str:
        return f"Registry({str(self._path)!r})"

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
            connection.execute("PRAGMA journal_mode = WAL").fetchone()
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

    # -- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        name: str,
        architecture: str | None,
        params: Mapping[str, Any] | None,
        dataset: str | os.PathLike[str] | None,
        status: str = "queued",
    ) -> Run:
        """Add a run; a taken name gets a suffix `` (2)``, `` (3)``...

        Parameters
        ----------
        name : str
            Wanted run name (surrounding blanks removed).
        architecture : str or None
            Model architecture, e.g. ``"unet"``.
        params : dict
            Training parameters (stored as JSON; numpy numbers allowed).
        dataset : str or path-like or None
            Dataset name or folder.
        status : str, default "queued"
            Initial status; ``running`` sets ``started_at``, an ended status
            sets ``finished_at``.

        Returns
        -------
        Run
            The new run.

        Raises
        ------
        InputError, InputTypeError
            If an argument is empty, of the wrong type, or an unknown status.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
        >>> registry.create_run("baseline", "unet", {"lr": 1e-3}, "stage1_train").name
        'baseline'
        """
        wanted = _check_name(name, "name")
        architecture = _optional_str(architecture, "architecture")
        params_json = to_json(_check_dict(params, "params"))
        dataset_text = _optional_text(dataset, "dataset")
        status = _check_status(status)
        now = utc_now()
        with self._session(write=True) as connection:
            cursor = connection.execute(
                "INSERT INTO runs (name, architecture, params_json, dataset, status, created_at,"
                " started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self._unique_name(connection, wanted),
                    architecture,
                    params_json,
                    dataset_text,
                    status,
                    now,
                    now if status == "running" else None,
                    now if status in ENDED_STATUSES else None,
                ),
            )
            return self._fetch(connection, cursor.lastrowid)

    def get_run(self, run_id: int) -> Run:
        """Return the run with id ``run_id``.

        Raises
        ------
        InputError
            If there is no such run.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.get_run(run.id) == run
        True
        """
        run_id = _check_run_id(run_id)
        with self._session() as connection:
            return self._fetch(connection, run_id)

    def find_run_by_name(self, name: str) -> Run | None:
        """Return the run called ``name`` (surrounding blanks ignored), or ``None``.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
        >>> registry.find_run_by_name("nothing") is None
        True
        """
        if not isinstance(name, str):
            raise InputTypeError(f"name must be a str, not {type(name).__name__}")
        with self._session() as connection:
            row = connection.execute(
                "SELECT * FROM runs WHERE name = ?", (name.strip(),)
            ).fetchone()
            return None if row is None else self._run_from_row(row)

    def list_runs(self, status: str | Iterable[str] | None = None) -> list[Run]:
        """Return runs, newest first, optionally only those with the given status(es).

        Parameters
        ----------
        status : str or iterable of str, optional
            Keep only runs with this status (or any of these statuses).

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
        >>> _ = registry.create_run("old", "unet", {}, "stage1_train", status="finished")
        >>> _ = registry.create_run("new", "unet", {}, "stage1_train")
        >>> [run.name for run in registry.list_runs(status=["queued", "running"])]
        ['new']
        """
        query, arguments = "SELECT * FROM runs", ()
        if status is not None:
            wanted = (status,) if isinstance(status, str) else tuple(status)
            arguments = tuple(_check_status(each) for each in wanted)
            query += f" WHERE status IN ({', '.join('?' * len(arguments)) or 'NULL'})"
        query += " ORDER BY created_at DESC, id DESC"
        with self._session() as connection:
            return [self._run_from_row(row) for row in connection.execute(query, arguments)]

    def set_status(
        self, run_id: int, status: str, message: str | None = None, pid: int | None = None
    ) -> Run:
        """Change a run's status, message and (optionally) process id.

        Becoming ``running`` sets ``started_at`` (to the latest start) and
        clears ``finished_at``; becoming ``finished``/``failed``/``stopped`` sets
        ``finished_at``; going back to ``queued`` clears ``finished_at``.

        Parameters
        ----------
        run_id : int
            The run.
        status : str
            One of :data:`STATUSES`.
        message : str, optional
            Replaces the run's message (``None`` clears it).
        pid : int, optional
            Training process id; ``None`` keeps the stored one.

        Returns
        -------
        Run
            The updated run.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> run = registry.set_status(run.id, "running", pid=os.getpid())
        >>> run.started_at is not None, run.finished_at is None
        (True, True)
        """
        run_id = _check_run_id(run_id)
        status = _check_status(status)
        pid = _check_optional_int(pid, "pid")
        if message is not None and not isinstance(message, str):
            raise InputTypeError(f"message must be a str, not {type(message).__name__}")
        now = utc_now()
        with self._session(write=True) as connection:
            current = self._fetch(connection, run_id)
            started_at, finished_at = current.started_at, current.finished_at
            if status == "running" and current.status != "running":
                started_at, finished_at = now, None
            elif status == "queued":
                finished_at = None
            elif status in ENDED_STATUSES and (current.status != status or finished_at is None):
                finished_at = now
            connection.execute(
                "UPDATE runs SET status = ?, message = ?, pid = ?, started_at = ?,"
                " finished_at = ? WHERE id = ?",
                (
                    status,
                    message,
                    current.pid if pid is None else pid,
                    started_at,
                    finished_at,
                    run_id,
                ),
            )
            return self._fetch(connection, run_id)

    def update_run(self, run_id: int, **fields: Any) -> Run:
        """Set some of ``model_path``, ``card_path``, ``best_epoch``, ``final_metrics``.

        Parameters
        ----------
        run_id : int
            The run.
        **fields
            ``model_path``/``card_path``: str, path or ``None``;
            ``best_epoch``: int or ``None``; ``final_metrics``: dict or ``None``.

        Returns
        -------
        Run
            The updated run.

        Raises
        ------
        InputError
            If there is no such run or a field name is unknown.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.update_run(run.id, best_epoch=3, final_metrics={"dice": 0.8}).final_metrics
        {'dice': 0.8}
        """
        run_id = _check_run_id(run_id)
        columns = self._update_columns(fields)
        with self._session(write=True) as connection:
            self._fetch(connection, run_id)
            if columns:
                assignments = ", ".join(f"{column} = ?" for column in columns)
                connection.execute(
                    f"UPDATE runs SET {assignments} WHERE id = ?", (*columns.values(), run_id)
                )
            return self._fetch(connection, run_id)

    @staticmethod
    def _update_columns(fields: Mapping[str, Any]) -> dict[str, Any]:
        """Check :meth:`update_run` fields and map them to column values."""
        unknown = sorted(set(fields) - set(UPDATABLE_FIELDS))
        if unknown:
            raise InputError(
                f"cannot update {', '.join(unknown)}; allowed: {', '.join(UPDATABLE_FIELDS)}"
            )
        columns: dict[str, Any] = {}
        for name in ("model_path", "card_path"):
            if name in fields:
                columns[name] = _optional_text(fields[name], name)
        if "best_epoch" in fields:
            columns["best_epoch"] = _check_optional_int(fields["best_epoch"], "best_epoch")
        if "final_metrics" in fields:
            metrics = fields["final_metrics"]
            columns["final_metrics_json"] = (
                None if metrics is None else to_json(_check_dict(metrics, "final_metrics"))
            )
        return columns

    def rename_run(self, run_id: int, new_name: str) -> Run:
        """Rename a run.

        Raises
        ------
        InputError
            If there is no such run, ``new_name`` is empty, or another run has it.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.rename_run(run.id, "  best so far ").name
        'best so far'
        """
        run_id = _check_run_id(run_id)
        wanted = _check_name(new_name, "new_name")
        with self._session(write=True) as connection:
            self._fetch(connection, run_id)
            if self._unique_name(connection, wanted, exclude_id=run_id) != wanted:
                raise InputError(f"new_name {wanted!r} is taken by another run")
            connection.execute("UPDATE runs SET name = ? WHERE id = ?", (wanted, run_id))
            return self._fetch(connection, run_id)

    def delete_run(self, run_id: int) -> Run:
        """Delete a run and its epochs; clear it as active model if it was.

        Files are not touched: the returned run names them (``model_path``,
        ``card_path``) so the caller can delete them.

        Returns
        -------
        Run
            The run as it was before deletion.

        Raises
        ------
        InputError
            If there is no such run.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.delete_run(run.id).name, registry.list_runs()
        ('baseline', [])
        """
        run_id = _check_run_id(run_id)
        with self._session(write=True) as connection:
            run = self._fetch(connection, run_id)
            connection.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            connection.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            connection.execute(
                "DELETE FROM settings WHERE key = ? AND value = ?",
                (_ACTIVE_MODEL_KEY, str(run_id)),
            )
            return run

    # -- epochs --------------------------------------------------------------------------

    def add_epoch(self, run_id: int, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Store (or replace) the metrics of one epoch of a run.

        Parameters
        ----------
        run_id : int
            The run.
        epoch : int
            Epoch number (>= 0).
        metrics : dict
            E.g. ``loss``, ``accuracy``, ``iou``, ``dice``, their ``val_``
            versions, ``lr``, ``seconds``; numpy numbers allowed.  An ``epoch``
            key is ignored (the argument wins).

        Raises
        ------
        InputError
            If there is no such run or ``epoch`` is negative.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.add_epoch(run.id, 0, {"loss": 0.9})
        >>> registry.add_epoch(run.id, 0, {"loss": 0.8})
        >>> registry.epochs(run.id)
        [{'epoch': 0, 'loss': 0.8}]
        """
        run_id = _check_run_id(run_id)
        epoch_number = self._check_epoch(epoch)
        metrics_json = self._metrics_json(metrics, "metrics")
        with self._session(write=True) as connection:
            self._fetch(connection, run_id)
            connection.execute(
                "INSERT INTO epochs (run_id, epoch, metrics_json) VALUES (?, ?, ?)"
                " ON CONFLICT (run_id, epoch) DO UPDATE SET metrics_json = excluded.metrics_json",
                (run_id, epoch_number, metrics_json),
            )

    @staticmethod
    def _check_epoch(epoch: Any, argument: str = "epoch") -> int:
        """Return ``epoch`` as an int >= 0 or raise."""
        number = _check_optional_int(epoch, argument)
        if number is None:
            raise InputTypeError(f"{argument} must be an int, not None")
        if number < 0:
            raise InputError(f"{argument} must be >= 0, not {number}")
        return number

    @staticmethod
    def _metrics_json(metrics: Any, argument: str) -> str:
        """Encode a metrics mapping (minus any ``epoch`` key) as JSON."""
        values = _check_dict(metrics, argument)
        values.pop("epoch", None)
        return to_json(values)

    def epochs(self, run_id: int) -> list[dict[str, Any]]:
        """Return a run's per-epoch metrics ordered by epoch, each with an ``epoch`` key.

        An unknown run (e.g. one deleted while a page polls it) gives ``[]``.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.add_epoch(run.id, 2, {"dice": 0.7})
        >>> registry.add_epoch(run.id, 1, {"dice": 0.6})
        >>> [row["epoch"] for row in registry.epochs(run.id)]
        [1, 2]
        """
        run_id = _check_run_id(run_id)
        with self._session() as connection:
            rows = connection.execute(
                "SELECT epoch, metrics_json FROM epochs WHERE run_id = ? ORDER BY epoch",
                (run_id,),
            ).fetchall()
        return [
            {
                "epoch": row["epoch"],
                **self._decode(row["metrics_json"], f"epoch {row['epoch']} of run {run_id}"),
            }
            for row in rows
        ]

    # -- active model --------------------------------------------------------------------

    def set_active_model(self, run_id: int | None) -> None:
        """Make a run's model the one the app predicts with (``None`` clears it).

        Raises
        ------
        InputError
            If there is no such run.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.set_active_model(run.id)
        >>> registry.active_model().name
        'baseline'
        """
        if run_id is not None:
            _check_run_id(run_id)
        with self._session(write=True) as connection:
            if run_id is None:
                connection.execute("DELETE FROM settings WHERE key = ?", (_ACTIVE_MODEL_KEY,))
                return
            self._fetch(connection, run_id)
            connection.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_ACTIVE_MODEL_KEY, str(run_id)),
            )

    def active_model(self) -> Run | None:
        """Return the run whose model is active, or ``None`` if none is (or it was deleted).

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3").active_model() is None
        True
        """
        with self._session() as connection:
            row = connection.execute(
                "SELECT runs.* FROM settings JOIN runs ON runs.id = CAST(settings.value AS INTEGER)"
                " WHERE settings.key = ?",
                (_ACTIVE_MODEL_KEY,),
            ).fetchone()
            return None if row is None else self._run_from_row(row)

    # -- maintenance ---------------------------------------------------------------------

    def mark_dead_runs(self, is_alive: Callable[[int], bool] | None = None) -> list[Run]:
        """Mark queued/running runs whose training process is gone as ``failed``.

        A run without a pid counts as dead.  Each run is only changed if it is
        still queued/running with the same pid, so a run that just moved on is
        left alone.  Call this when the app starts.

        Parameters
        ----------
        is_alive : callable, optional
            ``is_alive(pid) -> bool``; default :func:`pid_alive`.

        Returns
        -------
        list of Run
            The runs that were marked failed.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> [dead.message for dead in registry.mark_dead_runs()]
        ['training process ended unexpectedly (no pid recorded)']
        """
        checker = pid_alive if is_alive is None else is_alive
        marked = []
        for run in self.list_runs(status=ACTIVE_STATUSES):
            if run.pid is not None and checker(run.pid):
                continue
            detail = "no pid recorded" if run.pid is None else f"pid {run.pid}"
            with self._session(write=True) as connection:
                cursor = connection.execute(
                    "UPDATE runs SET status = 'failed', message = ?, finished_at = ?"
                    " WHERE id = ? AND pid IS ? AND status IN ('queued', 'running')",
                    (f"training process ended unexpectedly ({detail})", utc_now(), run.id, run.pid),
                )
                if cursor.rowcount:
                    marked.append(self._fetch(connection, run.id))
        return marked

    def register_model_card(
        self,
        card: Mapping[str, Any],
        model_path: str | os.PathLike[str],
        card_path: str | os.PathLike[str] | None,
        name: str | None = None,
    ) -> Run:
        """Add an existing trained model as a ``finished`` run, from its model card.

        Idempotent: if a run already has this ``model_path`` (same text or same
        real path), that run is returned unchanged.

        Parameters
        ----------
        card : dict
            The model card: ``name``, ``architecture``, ``params``, ``dataset``,
            ``created_at``, ``history`` (per-epoch dicts with an ``epoch``
            key), ``best_epoch``, ``final_metrics``.  Missing keys are allowed.
        model_path : str or path-like
            The model file.
        card_path : str or path-like or None
            The card's JSON file.
        name : str, optional
            Run name; default the card's name, else the model file's stem.  A
            taken name gets a suffix.

        Returns
        -------
        Run
            The registered (or already registered) run.

        Raises
        ------
        InputError, InputTypeError
            If the card's ``params``/``final_metrics`` are not dicts or a
            ``history`` entry has no integer ``epoch``.

        Examples
        --------
        >>> import tempfile
        >>> from pathlib import Path
        >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
        >>> card = {"name": "shipped", "history": [{"epoch": 1, "loss": 0.3}]}
        >>> run = registry.register_model_card(card, "models/shipped.keras", None)
        >>> run.status, registry.register_model_card(card, "models/shipped.keras", None) == run
        ('finished', True)
        """
        if not isinstance(card, Mapping):
            raise InputTypeError(f"card must be a dict, not {type(card).__name__}")
        model_text = _optional_text(model_path, "model_path")
        if model_text is None:
            raise InputTypeError("model_path must be a str or path, not None")
        card_text = _optional_text(card_path, "card_path")
        source = card_text or "card"
        wanted = _check_name(name or card.get("name") or Path(model_text).stem, "name")
        history = self._card_history(card.get("history"), source)
        created_at = _normalise_time(card.get("created_at"))
        values = (
            _optional_str(card.get("architecture"), f"{source}: architecture"),
            to_json(_check_dict(card.get("params"), f"{source}: params")),
            _optional_text(card.get("dataset"), f"{source}: dataset"),
            created_at,
            created_at,
            model_text,
            card_text,
            _check_optional_int(card.get("best_epoch"), f"{source}: best_epoch"),
            to_json(_check_dict(card.get("final_metrics"), f"{source}: final_metrics")),
        )
        with self._session(write=True) as connection:
            existing = self._find_by_model_path(connection, model_text)
            if existing is not None:
                return existing
            cursor = connection.execute(
                "INSERT INTO runs (name, architecture, params_json, dataset, status, created_at,"
                " finished_at, model_path, card_path, best_epoch, final_metrics_json)"
                " VALUES (?, ?, ?, ?, 'finished', ?, ?, ?, ?, ?, ?)",
                (self._unique_name(connection, wanted), *values),
            )
            connection.executemany(
                "INSERT OR REPLACE INTO epochs (run_id, epoch, metrics_json) VALUES (?, ?, ?)",
                [(cursor.lastrowid, epoch, metrics) for epoch, metrics in history],
            )
            return self._fetch(connection, cursor.lastrowid)

    def _card_history(self, history: Any, source: str) -> list[tuple[int, str]]:
        """Check a model card's ``history`` and return ``(epoch, metrics_json)`` pairs."""
        if history is None:
            return []
        if not isinstance(history, (list, tuple)):
            raise InputTypeError(f"{source}: history must be a list, not {type(history).__name__}")
        pairs = []
        for index, entry in enumerate(history):
            argument = f"{source}: history[{index}]"
            if not isinstance(entry, Mapping) or "epoch" not in entry:
                raise InputError(f"{argument} has no 'epoch'")
            epoch = self._check_epoch(entry["epoch"], f"{argument}['epoch']")
            pairs.append((epoch, self._metrics_json(entry, argument)))
        return pairs

    def _find_by_model_path(self, connection: sqlite3.Connection, model_path: str) -> Run | None:
        """Return the run whose ``model_path`` names the same file, if any."""
        rows = connection.execute("SELECT * FROM runs WHERE model_path IS NOT NULL ORDER BY id")
        for row in rows:
            if _same_path(row["model_path"], model_path):
                return self._run_from_row(row)
        return None


__all__ = [
    "ACTIVE_STATUSES",
    "ENDED_STATUSES",
    "REGISTRY_FILE_NAME",
    "SCHEMA_VERSION",
    "STATUSES",
    "UPDATABLE_FIELDS",
    "Registry",
    "Run",
    "pid_alive",
    "utc_now",
]
