"""Starting, watching, stopping and killing the training job: the bodies of the package.

See :mod:`nuclei_core.jobs` for how a job runs; this module holds its functions, and
the package hands their names on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any

from nuclei_core.errors import InputTypeError, NucleiError
from nuclei_core.jobs.lock import LOCK_WAIT_S, busy_error, holding_lock, write_lock_info
from nuclei_core.jobs.paths import (
    LOCK_FILE_NAME,
    LOG_FILE_NAME,
    PROGRESS_FILE_NAME,
    STOP_FILE_NAME,
    fresh_run_dir,
    lock_path,
    read_progress,
    run_dir,
    runs_dir,
)
from nuclei_core.jobs.processes import end_worker, is_worker_of, reap_children, spawn_worker
from nuclei_core.jobs.worker import run_worker
from nuclei_core.registry import (
    ACTIVE_STATUSES,
    Registry,
    Run,
    default_registry_path,
    pid_alive,
    registry_or_default,
)
from nuclei_core.registry.cards import utc_now
from nuclei_core.storage import atomic_write_text, ensure_dir
from nuclei_core.training import TrainConfig, check_dataset

# -- dead runs and the running job -------------------------------------------------------


def mark_dead_jobs(registry: Registry | None = None) -> list[Run]:
    """Mark queued/running runs whose training process is gone as ``failed``.

    If the single-job lock is free, no job is alive, so every queued or
    running run is marked (the lock is held meanwhile, so no job can start
    half-way through).  If the lock is held, only runs with a recorded pid
    that is no longer alive are marked: a run being started has no pid yet
    and is left alone.  A run is only changed if it is still queued/running
    with the same pid, so one that ends during the check keeps its status.
    The app may call this once when it starts; :func:`running_job` calls it
    every time.

    Parameters
    ----------
    registry : Registry, optional
        Default: the registry in the data folder.

    Returns
    -------
    list of Run
        The runs that were marked failed.

    Examples
    --------
    >>> run = registry.create_run("crashed", "unet", {}, "data")
    >>> [dead.message for dead in mark_dead_jobs(registry)]
    ['training process ended unexpectedly (no pid recorded)']
    """
    registry = registry_or_default(registry)
    reap_children()
    with holding_lock(0.0) as fd:
        if fd is not None:
            return registry.mark_dead_runs(is_alive=lambda pid: False)
    return registry.mark_dead_runs(is_alive=pid_alive, skip_without_pid=True)


def running_job(registry: Registry | None = None) -> Run | None:
    """Return the training run now queued or running, or ``None``.

    Dead runs are marked failed first (see :func:`mark_dead_jobs`).  A run
    that is being started and has no pid yet counts as running.

    Parameters
    ----------
    registry : Registry, optional
        Default: the registry in the data folder.

    Returns
    -------
    Run or None
        The newest queued/running run whose process is alive (or not yet recorded).

    Examples
    --------
    >>> running_job() is None
    True
    """
    registry = registry_or_default(registry)
    mark_dead_jobs(registry)
    for run in registry.list_runs(status=ACTIVE_STATUSES):
        if run.pid is None or pid_alive(run.pid):
            return run
    return None


# -- starting ----------------------------------------------------------------------------


def _run_name(config: TrainConfig) -> str:
    """The wanted run name: the config's, else ``<architecture> <dataset folder>``."""
    if config.name and config.name.strip():
        return config.name.strip()
    folder = config.data_folders()[0]
    return f"{config.architecture} {Path(folder).expanduser().name or folder}"


def start_training(
    config: TrainConfig, registry: Registry | None = None, owner: str | None = None
) -> Run:
    """Check a training configuration and start it as a background job.

    The parameters and the dataset split are checked first (nothing is
    created if they are bad).  Then the single-job lock is taken, a registry
    run is created (status ``queued``) and ``python -m nuclei_core.jobs <run
    id>`` is started in a new session with its output going to ``train.log``.
    The job always writes to its run folder ``data_folder()/runs/<run id>``:
    ``config.out`` is ignored and ``config`` is left as it is.  The worker's
    pid is in the registry before this returns; the worker sets ``running``
    itself.

    Parameters
    ----------
    config : TrainConfig
        The training parameters.  Stored as the run's ``params`` (without
        ``out``, which is always the run folder).
    registry : Registry, optional
        Default: the registry in the data folder.
    owner : str, optional
        The signed-in user who starts it (:mod:`nuclei_core.access.users`); ``None``: a
        shared run.

    Returns
    -------
    Run
        The new run, ``queued``, with its pid.

    Raises
    ------
    ConfigError
        A parameter is out of range, the batch is larger than the training
        split, or the crop is larger than every training image.
    DatasetError
        The dataset folder has no usable image/mask pairs.
    JobBusyError
        Another training job is running.
    StorageError
        The data folder, the run folder or the registry cannot be written.
    NucleiError
        The worker process could not be started.

    Examples
    --------
    Bad parameters are refused before anything is created:

    >>> from nuclei_core.training import TrainConfig
    >>> start_training(TrainConfig(data="no/such/folder", out="", epochs=20), registry)
    Traceback (most recent call last):
    ...
    nuclei_core.errors.DatasetError: no/such/folder: dataset folder does not exist
    >>> registry.list_runs()
    []
    """
    if not isinstance(config, TrainConfig):
        raise InputTypeError(f"config must be a TrainConfig, not {type(config).__name__}")
    config.check()
    check_dataset(config)
    registry = registry_or_default(registry)
    with holding_lock(LOCK_WAIT_S) as fd:
        if fd is None:
            raise busy_error(registry)
        return _create_and_spawn(config, registry, fd, owner)


def _create_and_spawn(config: TrainConfig, registry: Registry, lock_fd: int, owner) -> Run:
    """Create the run and start its worker; called with the lock held."""
    params = dataclasses.asdict(config)
    params.pop("out", None)
    data = os.pathsep.join(str(folder) for folder in config.data_folders())
    run = registry.create_run(_run_name(config), config.architecture, params, data, owner=owner)
    try:
        folder = fresh_run_dir(run.id)
    except NucleiError as error:
        registry.set_status(run.id, "failed", message=str(error))
        raise
    write_lock_info(lock_fd, {"run_id": run.id, "name": run.name, "started_at": run.created_at})
    other_registry = None if registry.path == default_registry_path() else registry.path
    try:
        process = spawn_worker(run.id, folder, lock_fd, other_registry)
    except OSError as error:
        message = f"cannot start the training process: {error.strerror or error}"
        registry.set_status(run.id, "failed", message=message)
        raise NucleiError(message) from error
    try:
        # The worker waits for its stdin to close before it writes to the registry,
        # so this 'queued' cannot overwrite its 'running'.
        run = registry.set_status(run.id, "queued", pid=process.pid)
    except BaseException:
        process.kill()
        with contextlib.suppress(NucleiError):
            registry.set_status(run.id, "failed", message="could not record the training process")
        raise
    finally:
        with contextlib.suppress(OSError):
            process.stdin.close()
    info = {"run_id": run.id, "name": run.name, "started_at": run.created_at, "pid": run.pid}
    write_lock_info(lock_fd, info)
    return run


# -- status, stop, kill ------------------------------------------------------------------


def job_status(run_id: int, registry: Registry | None = None) -> dict[str, Any]:
    """Return a job's progress and registry status, for a page to show.

    Parameters
    ----------
    run_id : int
        The run.
    registry : Registry, optional
        Default: the registry in the data folder.

    Returns
    -------
    dict
        ``run_id``, ``name``, ``status`` (registry status), ``message`` (the
        run's message once it ended with one, else the worker's latest status
        line), ``pid``, ``epoch`` (1-based epoch in progress, 0 before
        training), ``epochs``, ``step``, ``steps``, ``fraction`` (0 to 1),
        ``eta_seconds`` (``None`` when unknown), ``elapsed_seconds``,
        ``metrics`` (the last epoch's), ``updated_at`` (``None`` before the
        first progress write), ``stop_requested``.  Safe defaults are used
        while the progress file does not exist yet.

    Raises
    ------
    InputError
        If there is no such run.

    Examples
    --------
    >>> run = registry.create_run("unet demo", "unet", {"epochs": 20}, "data")
    >>> status = job_status(run.id, registry)
    >>> status["status"], status["epoch"], status["epochs"], status["eta_seconds"]
    ('queued', 0, 20, None)
    """
    run = registry_or_default(registry).get_run(run_id)
    folder = run_dir(run.id)
    progress = read_progress(folder)
    epochs = progress.get("epochs", run.params.get("epochs", 0))
    default_message = "waiting for the training process" if run.status == "queued" else ""
    status = {
        "run_id": run.id,
        "name": run.name,
        "status": run.status,
        "message": progress.get("message") or default_message,
        "pid": run.pid,
        "epoch": progress.get("epoch", 0),
        "epochs": epochs,
        "step": progress.get("step", 0),
        "steps": progress.get("steps", 0),
        "fraction": progress.get("fraction", 0.0),
        "eta_seconds": progress.get("eta_seconds"),
        "elapsed_seconds": progress.get("elapsed_seconds", 0.0),
        "metrics": progress.get("metrics", {}),
        "updated_at": progress.get("updated_at"),
        "stop_requested": (folder / STOP_FILE_NAME).exists(),
    }
    if not run.is_active:
        status["eta_seconds"] = None
        if run.message:
            status["message"] = run.message
    return status


def stop_training(run_id: int, registry: Registry | None = None) -> bool:
    """Ask a job to stop cleanly: the worker stops after the current batch.

    The best checkpoint is kept and becomes the run's ``model.keras``; the
    run ends as ``stopped`` (stopped before the first epoch ended, it has
    no model).

    Parameters
    ----------
    run_id : int
        The run.
    registry : Registry, optional
        Default: the registry in the data folder.

    Returns
    -------
    bool
        ``True`` if the run was queued or running and the request was written,
        ``False`` if it had already ended.

    Raises
    ------
    InputError
        If there is no such run.

    Examples
    --------
    >>> run = registry.create_run("unet demo", "unet", {}, "data")
    >>> stop_training(run.id, registry), job_status(run.id, registry)["stop_requested"]
    (True, True)
    """
    run = registry_or_default(registry).get_run(run_id)
    if not run.is_active:
        return False
    folder = ensure_dir(run_dir(run.id))
    atomic_write_text(folder / STOP_FILE_NAME, f"stop requested at {utc_now()}\n")
    return True


def kill_training(run_id: int, timeout: float = 10.0, registry: Registry | None = None) -> Run:
    """End a job by force: SIGTERM, then SIGKILL if it is still alive after ``timeout``.

    A fallback for a worker that does not react to :func:`stop_training`.
    Only a process whose command line is this run's worker is signalled (a
    reused pid is left alone).  The run ends ``failed``; its epochs and
    checkpoints stay.

    Parameters
    ----------
    run_id : int
        The run.
    timeout : float, default 10.0
        Seconds to wait after SIGTERM before SIGKILL.
    registry : Registry, optional
        Default: the registry in the data folder.

    Returns
    -------
    Run
        The run after the process ended.

    Raises
    ------
    InputError
        If there is no such run.
    NucleiError
        If the process is still alive after SIGKILL.

    Examples
    --------
    >>> run = registry.create_run("stuck", "unet", {}, "data")
    >>> killed = kill_training(run.id, registry=registry)
    >>> killed.status, killed.message
    ('failed', 'training process killed')
    """
    registry = registry_or_default(registry)
    run = registry.get_run(run_id)
    pid = run.pid
    if pid is not None and is_worker_of(pid, run.id):
        end_worker(pid, run.id, timeout)
    run = registry.get_run(run.id)
    if run.is_active and (run.pid is None or run.pid == pid):
        run = registry.set_status(run.id, "failed", message="training process killed")
    return run


__all__ = [
    "LOCK_FILE_NAME",
    "LOG_FILE_NAME",
    "PROGRESS_FILE_NAME",
    "STOP_FILE_NAME",
    "job_status",
    "kill_training",
    "lock_path",
    "mark_dead_jobs",
    "run_dir",
    "run_worker",
    "running_job",
    "runs_dir",
    "start_training",
    "stop_training",
]
