"""Runs in the registry: add, find, list, rename and delete them, and move them through
their statuses (the ``runs`` table).

:class:`RunTable` is the middle layer of :class:`nuclei_core.registry.Registry`, on
top of the SQLite file (:class:`~nuclei_core.registry.database.RegistryDatabase`).
Every method is one short transaction.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from nuclei_core.checks import (
    check_choice,
    check_dict,
    check_int,
    check_name,
    check_optional_int,
    check_optional_path,
    check_optional_str,
)
from nuclei_core.errors import InputError, InputTypeError
from nuclei_core.registry.cards import utc_now
from nuclei_core.registry.database import (
    ACTIVE_MODEL_KEY,
    ENDED_STATUSES,
    STATUSES,
    RegistryDatabase,
    Run,
)
from nuclei_core.storage import to_json

UPDATABLE_FIELDS = ("model_path", "card_path", "best_epoch", "final_metrics", "owner")
"""Fields :meth:`Registry.update_run` accepts."""


def _check_status(status: Any) -> str:
    """One of :data:`~nuclei_core.registry.database.STATUSES`."""
    return check_choice(status, "status", STATUSES)


class RunTable(RegistryDatabase):
    """The runs of the registry; the middle layer of :class:`~nuclei_core.registry.Registry`.

    Examples
    --------
    >>> isinstance(registry, RunTable), registry.list_runs()
    (True, [])
    """

    def create_run(
        self,
        name: str,
        architecture: str | None,
        params: Mapping[str, Any] | None,
        dataset: str | os.PathLike[str] | None,
        status: str = "queued",
        owner: str | None = None,
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
        owner : str, optional
            The signed-in user who starts it (``None``: a shared run).

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
        >>> registry.create_run("baseline", "unet", {"lr": 1e-3}, "stage1_train").name
        'baseline'
        """
        wanted = check_name(name, "name")
        architecture = check_optional_str(architecture, "architecture")
        params_json = to_json(check_dict(params, "params"))
        dataset_text = check_optional_path(dataset, "dataset")
        status = _check_status(status)
        owner = check_optional_str(owner, "owner")
        now = utc_now()
        with self._session(write=True) as connection:
            cursor = connection.execute(
                "INSERT INTO runs (name, architecture, params_json, dataset, status, created_at,"
                " started_at, finished_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self._unique_name(connection, wanted),
                    architecture,
                    params_json,
                    dataset_text,
                    status,
                    now,
                    now if status == "running" else None,
                    now if status in ENDED_STATUSES else None,
                    owner,
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
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.get_run(run.id) == run
        True
        """
        run_id = check_int(run_id, "run_id")
        with self._session() as connection:
            return self._fetch(connection, run_id)

    def find_run_by_name(self, name: str) -> Run | None:
        """Return the run called ``name`` (surrounding blanks ignored), or ``None``.

        Examples
        --------
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
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> run = registry.set_status(run.id, "running", pid=os.getpid())
        >>> run.started_at is not None, run.finished_at is None
        (True, True)
        """
        run_id = check_int(run_id, "run_id")
        status = _check_status(status)
        pid = check_optional_int(pid, "pid")
        message = check_optional_str(message, "message")
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
        """Set some of ``model_path``, ``card_path``, ``best_epoch``, ``final_metrics``, ``owner``.

        Parameters
        ----------
        run_id : int
            The run.
        **fields
            ``model_path``/``card_path``: str, path or ``None``;
            ``best_epoch``: int or ``None``; ``final_metrics``: dict or ``None``;
            ``owner``: str or ``None`` (``None`` shares the run with every user).

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
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.update_run(run.id, best_epoch=3, final_metrics={"dice": 0.8}).final_metrics
        {'dice': 0.8}
        """
        run_id = check_int(run_id, "run_id")
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
                columns[name] = check_optional_path(fields[name], name)
        if "owner" in fields:
            columns["owner"] = check_optional_str(fields["owner"], "owner")
        if "best_epoch" in fields:
            columns["best_epoch"] = check_optional_int(fields["best_epoch"], "best_epoch")
        if "final_metrics" in fields:
            metrics = fields["final_metrics"]
            columns["final_metrics_json"] = (
                None if metrics is None else to_json(check_dict(metrics, "final_metrics"))
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
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.rename_run(run.id, "  best so far ").name
        'best so far'
        """
        run_id = check_int(run_id, "run_id")
        wanted = check_name(new_name, "new_name")
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
        >>> run = registry.create_run("baseline", "unet", {}, "stage1_train")
        >>> registry.delete_run(run.id).name, registry.list_runs()
        ('baseline', [])
        """
        run_id = check_int(run_id, "run_id")
        with self._session(write=True) as connection:
            run = self._fetch(connection, run_id)
            connection.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            connection.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            connection.execute(
                "DELETE FROM settings WHERE key = ? AND value = ?",
                (ACTIVE_MODEL_KEY, str(run_id)),
            )
            return run
