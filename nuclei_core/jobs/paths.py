"""Where a training job keeps its files: one folder per run, the lock file, the names inside.

Everything a job writes lives in its run folder ``data_folder()/runs/<run id>``:
``train.log`` (the worker's stdout and stderr), ``progress.json``, ``STOP``
(the stop request), and what :func:`~nuclei_core.training.train` writes (model,
card, checkpoints, history, TensorBoard logs).  The single-job lock is the
file ``data_folder()/training.lock``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nuclei_core.checks import check_int
from nuclei_core.errors import StorageError
from nuclei_core.locations import data_folder
from nuclei_core.storage import ensure_dir

LOCK_FILE_NAME = "training.lock"
"""File in :func:`~nuclei_core.locations.data_folder` whose ``flock`` is the single-job lock."""

RUNS_FOLDER_NAME = "runs"
"""Folder in :func:`~nuclei_core.locations.data_folder` that holds one folder per job."""

PROGRESS_FILE_NAME = "progress.json"
"""Progress file in a run folder, rewritten by the worker at most every 0.5 s."""

STOP_FILE_NAME = "STOP"
"""File in a run folder whose existence asks the worker to stop."""

LOG_FILE_NAME = "train.log"
"""The worker's stdout and stderr, in its run folder."""


def runs_dir() -> Path:
    """Return the folder that holds the run folders, ``data_folder()/runs``.

    Returns
    -------
    pathlib.Path
        The folder (created if needed).

    Examples
    --------
    >>> runs_dir().name, runs_dir().is_dir()
    ('runs', True)
    """
    return ensure_dir(data_folder() / RUNS_FOLDER_NAME)


def run_dir(run_id: int) -> Path:
    """Return the folder of a training job, ``data_folder()/runs/<run_id>`` (not created).

    Parameters
    ----------
    run_id : int
        The registry run id.

    Returns
    -------
    pathlib.Path
        The job's folder: log, progress, stop flag, model, card and checkpoints.

    Examples
    --------
    >>> run_dir(7).parts[-2:]
    ('runs', '7')
    """
    return ensure_dir(data_folder()) / RUNS_FOLDER_NAME / str(check_int(run_id, "run_id"))


def lock_path() -> Path:
    """Return the single-job lock file, ``data_folder()/training.lock``.

    Examples
    --------
    >>> lock_path().name
    'training.lock'
    """
    return ensure_dir(data_folder()) / LOCK_FILE_NAME


def fresh_run_dir(run_id: int) -> Path:
    """Create a run's folder; a leftover folder of a deleted run with this id is moved aside.

    Raises
    ------
    StorageError
        If the leftover folder cannot be moved or the new one cannot be created.

    Examples
    --------
    >>> fresh_run_dir(3).is_dir()
    True
    """
    folder = run_dir(run_id)
    if folder.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        aside = folder.with_name(f"{folder.name}.replaced-{stamp}")
        try:
            folder.rename(aside)
        except OSError as error:
            raise StorageError(f"cannot move old run folder {folder} aside: {error}") from error
    return ensure_dir(folder)


def read_progress(folder: Path) -> dict[str, Any]:
    """Return the progress file's content in a run folder, or ``{}`` if missing or unreadable.

    Examples
    --------
    >>> read_progress(run_dir(3))
    {}
    """
    try:
        progress = json.loads((folder / PROGRESS_FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return progress if isinstance(progress, dict) else {}
