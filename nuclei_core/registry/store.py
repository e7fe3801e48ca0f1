"""The :class:`Registry`: the SQLite store of runs, epochs, models and the active model.

See :mod:`nuclei_core.registry` for what it records; this module holds the class and
its helpers, and the package hands their names on.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil

from nuclei_core.checks import (
    check_dict,
    check_int,
    check_name,
    check_optional_path,
    check_optional_str,
)
from nuclei_core.errors import InputTypeError
from nuclei_core.registry.cards import check_epoch, parse_card, utc_now
from nuclei_core.registry.database import (
    ACTIVE_MODEL_KEY,
    ACTIVE_STATUSES,
    ENDED_STATUSES,
    REGISTRY_FILE_NAME,
    SCHEMA_VERSION,
    STATUSES,
    Run,
    default_registry_path,
)
from nuclei_core.registry.runs import UPDATABLE_FIELDS, RunTable
from nuclei_core.storage import to_json


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
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _same_path(first: str, second: str) -> bool:
    """Whether two stored paths name the same file (exact text or same real path)."""
    return first == second or os.path.realpath(first) == os.path.realpath(second)


class Registry(RunTable):
    """The run registry in one SQLite file; safe to share between threads and processes.

    Runs are added, found and moved through their statuses by the methods of
    :class:`~nuclei_core.registry.runs.RunTable`; the file, its schema and the
    transactions are :class:`~nuclei_core.registry.database.RegistryDatabase`.

    Parameters
    ----------
    path : str or path-like, optional
        The database file; default :func:`default_registry_path`
        (``data_folder() / "registry.sqlite3"``).  Its folder is created if
        needed; the file and its schema too.

    Raises
    ------
    StorageError
        If the file is not a SQLite database, was written by a newer schema,
        or its folder is not writable.

    Examples
    --------
    >>> import tempfile
    >>> registry = Registry(Path(tempfile.mkdtemp()) / "registry.sqlite3")
    >>> first = registry.create_run("unet", "unet", {}, "stage1_train")
    >>> second = registry.create_run("unet", "unet", {}, "stage1_train")
    >>> [run.name for run in registry.list_runs()]
    ['unet (2)', 'unet']
    """

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
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.add_epoch(run.id, 0, {"loss": 0.9})
        >>> registry.add_epoch(run.id, 0, {"loss": 0.8})
        >>> registry.epochs(run.id)
        [{'epoch': 0, 'loss': 0.8}]
        """
        run_id = check_int(run_id, "run_id")
        epoch_number = check_epoch(epoch)
        metrics_json = self._metrics_json(metrics, "metrics")
        with self._session(write=True) as connection:
            self._fetch(connection, run_id)
            connection.execute(
                "INSERT INTO epochs (run_id, epoch, metrics_json) VALUES (?, ?, ?)"
                " ON CONFLICT (run_id, epoch) DO UPDATE SET metrics_json = excluded.metrics_json",
                (run_id, epoch_number, metrics_json),
            )

    @staticmethod
    def _metrics_json(metrics: Any, argument: str) -> str:
        """Encode a metrics mapping (minus any ``epoch`` key) as JSON."""
        values = check_dict(metrics, argument)
        values.pop("epoch", None)
        return to_json(values)

    def epochs(self, run_id: int) -> list[dict[str, Any]]:
        """Return a run's per-epoch metrics ordered by epoch, each with an ``epoch`` key.

        An unknown run (e.g. one deleted while a page polls it) gives ``[]``.

        Examples
        --------
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.add_epoch(run.id, 2, {"dice": 0.7})
        >>> registry.add_epoch(run.id, 1, {"dice": 0.6})
        >>> [row["epoch"] for row in registry.epochs(run.id)]
        [1, 2]
        """
        run_id = check_int(run_id, "run_id")
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
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.set_active_model(run.id)
        >>> registry.active_model().name
        'baseline'
        """
        if run_id is not None:
            check_int(run_id, "run_id")
        with self._session(write=True) as connection:
            if run_id is None:
                connection.execute("DELETE FROM settings WHERE key = ?", (ACTIVE_MODEL_KEY,))
                return
            self._fetch(connection, run_id)
            connection.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (ACTIVE_MODEL_KEY, str(run_id)),
            )

    def active_model(self) -> Run | None:
        """Return the run whose model is active, or ``None`` if none is (or it was deleted).

        Examples
        --------
        >>> registry.active_model() is None
        True
        """
        with self._session() as connection:
            row = connection.execute(
                "SELECT runs.* FROM settings JOIN runs ON runs.id = CAST(settings.value AS INTEGER)"
                " WHERE settings.key = ?",
                (ACTIVE_MODEL_KEY,),
            ).fetchone()
            return None if row is None else self._run_from_row(row)

    # -- maintenance ---------------------------------------------------------------------

    def mark_dead_runs(
        self, is_alive: Callable[[int], bool] | None = None, skip_without_pid: bool = False
    ) -> list[Run]:
        """Mark queued/running runs whose training process is gone as ``failed``.

        A run without a pid counts as dead unless ``skip_without_pid``.  Each
        run is only changed if it is still queued/running with the same pid,
        so a run that moved on meanwhile (finished, say) keeps its status.
        Call this when the app starts.

        Parameters
        ----------
        is_alive : callable, optional
            ``is_alive(pid) -> bool``; default :func:`pid_alive`.
        skip_without_pid : bool, default False
            Leave runs without a pid alone (a job being started has none yet).

        Returns
        -------
        list of Run
            The runs that were marked failed.

        Examples
        --------
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> [dead.message for dead in registry.mark_dead_runs()]
        ['training process ended unexpectedly (no pid recorded)']
        """
        checker = pid_alive if is_alive is None else is_alive
        marked = []
        for run in self.list_runs(status=ACTIVE_STATUSES):
            if run.pid is None and skip_without_pid:
                continue
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
        owner: str | None = None,
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
        owner : str, optional
            The signed-in user who adds it (``None``: shared with every user).

        Returns
        -------
        Run
            The registered (or already registered) run.

        Raises
        ------
        InputError, InputTypeError
            If the card is refused by :func:`~nuclei_core.registry.cards.parse_card`
            (``params``/``final_metrics`` not dicts, a ``history`` entry
            without an integer ``epoch``...).

        Examples
        --------
        >>> card = {"name": "shipped", "history": [{"epoch": 1, "loss": 0.3}]}
        >>> run = registry.register_model_card(card, "models/shipped.keras", None)
        >>> run.status, registry.register_model_card(card, "models/shipped.keras", None) == run
        ('finished', True)
        """
        model_text = check_optional_path(model_path, "model_path")
        if model_text is None:
            raise InputTypeError("model_path must be a str or path, not None")
        card_text = check_optional_path(card_path, "card_path")
        fields = parse_card(card, card_text or "card")
        wanted = check_name(name or fields.name or Path(model_text).stem, "name")
        history = [
            (epoch, self._metrics_json(metrics, "card history"))
            for epoch, metrics in fields.history
        ]
        values = (
            fields.architecture,
            to_json(fields.params),
            fields.dataset,
            fields.created_at,
            fields.created_at,
            model_text,
            card_text,
            fields.best_epoch,
            to_json(fields.final_metrics),
            check_optional_str(owner, "owner"),
        )
        with self._session(write=True) as connection:
            existing = self._find_by_model_path(connection, model_text)
            if existing is not None:
                return existing
            cursor = connection.execute(
                "INSERT INTO runs (name, architecture, params_json, dataset, status, created_at,"
                " finished_at, model_path, card_path, best_epoch, final_metrics_json, owner)"
                " VALUES (?, ?, ?, ?, 'finished', ?, ?, ?, ?, ?, ?, ?)",
                (self._unique_name(connection, wanted), *values),
            )
            connection.executemany(
                "INSERT OR REPLACE INTO epochs (run_id, epoch, metrics_json) VALUES (?, ?, ?)",
                [(cursor.lastrowid, epoch, metrics) for epoch, metrics in history],
            )
            return self._fetch(connection, cursor.lastrowid)

    def _find_by_model_path(self, connection: sqlite3.Connection, model_path: str) -> Run | None:
        """Return the run whose ``model_path`` names the same file, if any."""
        rows = connection.execute("SELECT * FROM runs WHERE model_path IS NOT NULL ORDER BY id")
        for row in rows:
            if _same_path(row["model_path"], model_path):
                return self._run_from_row(row)
        return None


def registry_or_default(registry: Registry | None = None) -> Registry:
    """Return ``registry``, or the registry of the data folder when it is ``None``.

    Raises
    ------
    InputTypeError
        If ``registry`` is neither ``None`` nor a :class:`Registry`.

    Examples
    --------
    >>> registry_or_default().path == default_registry_path()
    True
    """
    if registry is None:
        return Registry()
    if not isinstance(registry, Registry):
        raise InputTypeError(f"registry must be a Registry, not {type(registry).__name__}")
    return registry


__all__ = [
    "ACTIVE_STATUSES",
    "ENDED_STATUSES",
    "REGISTRY_FILE_NAME",
    "SCHEMA_VERSION",
    "STATUSES",
    "UPDATABLE_FIELDS",
    "Registry",
    "Run",
    "default_registry_path",
    "pid_alive",
    "registry_or_default",
    "utc_now",
]
