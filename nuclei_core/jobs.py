"""Training jobs: one training run at a time, in its own OS process.

The dashboard never trains inside a Streamlit script: :func:`start_training`
checks the parameters and the dataset, creates a registry run and starts
``python -m nuclei_core.jobs RUN_ID`` as a separate process in its own
session, so a page reload, a second browser tab or a restart of the app finds
the job still running.  The worker (:func:`run_worker`) trains with
:func:`nuclei_core.train.train`, adds every epoch to the registry and keeps a
small ``progress.json`` up to date; the app polls :func:`job_status` and
:func:`running_job`, and ends a job with :func:`stop_training` (clean stop at
the next batch) or :func:`kill_training` (signals, as a last resort).

Everything a job writes lives in its run folder ``data_dir()/runs/<run id>``:
``train.log`` (the worker's stdout and stderr), ``progress.json``, ``STOP``
(the stop request), and what :func:`~nuclei_core.train.train` writes (model,
card, checkpoints, history, TensorBoard logs).

Only one job runs at a time.  The rule is kept by an exclusive ``flock`` on
``data_dir()/training.lock``: the starter takes it, the worker inherits the
same open file description and holds it for as long as it lives, and the
operating system releases it when the worker ends, even by ``SIGKILL``.  A
``threading.Lock`` serialises the Streamlit sessions (threads) of one server.
A run whose process is gone is marked ``failed`` by :func:`mark_dead_jobs`
(which :func:`running_job` calls); a run that is still being started (no pid
yet) is never touched while the lock is held.

Examples
--------
>>> from nuclei_core.train import TrainConfig
>>> config = TrainConfig(data="data/stage1_train", out="", epochs=20)  # doctest: +SKIP
>>> run = start_training(config)  # doctest: +SKIP
>>> job_status(run.id)["status"]  # doctest: +SKIP
'queued'
>>> stop_training(run.id)  # doctest: +SKIP
True
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nuclei_core.errors import InputTypeError, JobBusyError, NucleiError, StorageError
from nuclei_core.registry import (
    ACTIVE_STATUSES,
    REGISTRY_FILE_NAME,
    Registry,
    Run,
    pid_alive,
    utc_now,
)
from nuclei_core.storage import (
    DATA_DIR_ENV,
    atomic_write_json,
    atomic_write_text,
    data_dir,
    ensure_dir,
)
from nuclei_core.train import TrainConfig, TrainingListener, check_dataset, train

LOCK_FILE_NAME = "training.lock"
"""File in :func:`~nuclei_core.storage.data_dir` whose ``flock`` is the single-job lock."""

RUNS_FOLDER_NAME = "runs"
"""Folder in :func:`~nuclei_core.storage.data_dir` that holds one folder per job."""

PROGRESS_FILE_NAME = "progress.json"
"""Progress file in a run folder, rewritten by the worker at most every 0.5 s."""

STOP_FILE_NAME = "STOP"
"""File in a run folder whose existence asks the worker to stop."""

LOG_FILE_NAME = "train.log"
"""The worker's stdout and stderr, in its run folder."""

LOCK_FD_ENV = "NUCLEI_JOB_LOCK_FD"
"""Environment variable naming the lock descriptor a worker inherits from its starter."""

PROGRESS_INTERVAL_S = 0.5
"""Least time between two progress writes (epoch ends and status lines always write)."""

_LOCK_WAIT_S = 2.0  # how long a starter retries a lock that a dead-run check holds briefly
_LOCK_RETRY_S = 0.05
_START_LOCK = threading.Lock()  # Streamlit sessions of one server are threads of one process
_CHILDREN: dict[int, subprocess.Popen] = {}  # workers this process started, to reap them
_CHILDREN_LOCK = threading.Lock()


class _Terminated(BaseException):
    """Raised in the worker by its SIGTERM handler, so it can record why it ended."""


# -- paths -------------------------------------------------------------------------------


def runs_dir() -> Path:
    """Return the folder that holds the run folders, ``data_dir()/runs``.

    Returns
    -------
    pathlib.Path
        The folder (created if needed).

    Examples
    --------
    >>> runs_dir().name  # doctest: +SKIP
    'runs'
    """
    return ensure_dir(data_dir() / RUNS_FOLDER_NAME)


def run_dir(run_id: int) -> Path:
    """Return the folder of a training job, ``data_dir()/runs/<run_id>`` (not created).

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
    >>> run_dir(7).parts[-2:]  # doctest: +SKIP
    ('runs', '7')
    """
    return data_dir() / RUNS_FOLDER_NAME / str(_check_run_id(run_id))


def lock_path() -> Path:
    """Return the single-job lock file, ``data_dir()/training.lock``.

    Examples
    --------
    >>> lock_path().name  # doctest: +SKIP
    'training.lock'
    """
    return data_dir() / LOCK_FILE_NAME


def _check_run_id(run_id: Any) -> int:
    """Return ``run_id`` if it is an int (not a bool), else raise InputTypeError."""
    if isinstance(run_id, bool) or not isinstance(run_id, int):
        raise InputTypeError(f"run_id must be an int, not {type(run_id).__name__}")
    return run_id


def _registry(registry: Registry | None) -> Registry:
    """Return ``registry``, or the default one in the data folder."""
    if registry is None:
        return Registry()
    if not isinstance(registry, Registry):
        raise InputTypeError(f"registry must be a Registry, not {type(registry).__name__}")
    return registry


# -- the single-job lock -----------------------------------------------------------------


def _open_lock() -> int:
    """Open (creating) the lock file; the descriptor is not inherited by children."""
    path = lock_path()
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise StorageError(f"cannot open {path}: {error.strerror or error}") from error


def _try_flock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` without waiting; ``False`` if someone holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise StorageError(f"cannot lock {lock_path()}: {error.strerror or error}") from error
    return True


def _acquire_lock(wait_s: float) -> int | None:
    """Return a descriptor holding the single-job lock, or ``None`` if it stays busy.

    The lock is retried for ``wait_s`` seconds because :func:`mark_dead_jobs`
    holds it for a moment while it checks for dead runs.
    """
    fd = _open_lock()
    deadline = time.monotonic() + wait_s
    try:
        while not _try_flock(fd):
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(_LOCK_RETRY_S)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_lock_info(fd: int, info: dict[str, Any]) -> None:
    """Write who holds the lock into the lock file (best effort, only read for messages)."""
    with contextlib.suppress(OSError):
        data = json.dumps(info).encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)


def _read_lock_info() -> dict[str, Any]:
    """Return what the lock holder wrote into the lock file (``{}`` if unreadable)."""
    try:
        info = json.loads(lock_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _busy_error(registry: Registry) -> JobBusyError:
    """Build the JobBusyError naming the job that holds the lock."""
    info = _read_lock_info()
    name, started = info.get("name"), info.get("started_at")
    if not name:
        active = registry.list_runs(status=ACTIVE_STATUSES)
        if active:
            name, started = active[0].name, active[0].started_at or active[0].created_at
    return JobBusyError(
        f"a training job is already running: {name or 'unknown job'} "
        f"(started {started or 'at an unknown time'})"
    )


# -- dead runs and the running job -------------------------------------------------------


def _reap_children() -> None:
    """Collect the exit status of finished workers this process started (no zombies)."""
    with _CHILDREN_LOCK:
        for pid, process in list(_CHILDREN.items()):
            if process.poll() is not None:
                del _CHILDREN[pid]


def mark_dead_jobs(registry: Registry | None = None) -> list[Run]:
    """Mark queued/running runs whose training process is gone as ``failed``.

    If the single-job lock is free, no job is alive, so every queued or
    running run is marked (the lock is held meanwhile, so no job can start
    half-way through).  If the lock is held, only runs with a recorded pid
    that is no longer alive are marked: a run being started has no pid yet
    and is left alone.  The app may call this once when it starts;
    :func:`running_job` calls it every time.

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
    >>> [run.status for run in mark_dead_jobs()]  # doctest: +SKIP
    ['failed']
    """
    registry = _registry(registry)
    _reap_children()
    with _START_LOCK:
        fd = _acquire_lock(0.0)
        if fd is not None:
            try:
                return registry.mark_dead_runs(is_alive=lambda pid: False)
            finally:
                os.close(fd)
    marked = []
    for run in registry.list_runs(status=ACTIVE_STATUSES):
        if run.pid is not None and not pid_alive(run.pid):
            message = f"training process ended unexpectedly (pid {run.pid})"
            marked.append(registry.set_status(run.id, "failed", message=message))
    return marked


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
    >>> running_job() is None  # doctest: +SKIP
    True
    """
    registry = _registry(registry)
    mark_dead_jobs(registry)
    for run in registry.list_runs(status=ACTIVE_STATUSES):
        if run.pid is None or pid_alive(run.pid):
            return run
    return None


# -- starting ----------------------------------------------------------------------------


def _default_registry_path() -> Path:
    return data_dir() / REGISTRY_FILE_NAME


def _fresh_run_dir(run_id: int) -> Path:
    """Create the run folder; a leftover folder of a deleted run with this id is moved aside."""
    folder = run_dir(run_id)
    if folder.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        aside = folder.with_name(f"{folder.name}.replaced-{stamp}")
        try:
            folder.rename(aside)
        except OSError as error:
            raise StorageError(f"cannot move old run folder {folder} aside: {error}") from error
    return ensure_dir(folder)


def _worker_env(lock_fd: int) -> dict[str, str]:
    """Environment of a worker: same data folder, importable package, unbuffered output."""
    env = dict(os.environ)
    env[DATA_DIR_ENV] = str(data_dir())
    env[LOCK_FD_ENV] = str(lock_fd)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    project_root = str(Path(__file__).resolve().parent.parent)
    paths = [project_root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _run_name(config: TrainConfig) -> str:
    """The wanted run name: the config's, else ``<architecture> <dataset folder>``."""
    if config.name and config.name.strip():
        return config.name.strip()
    folder = config.data_folders()[0]
    return f"{config.architecture} {Path(folder).expanduser().name or folder}"


def start_training(config: TrainConfig, registry: Registry | None = None) -> Run:
    """Check a training configuration and start it as a background job.

    The parameters and the dataset split are checked first (nothing is
    created if they are bad).  Then the single-job lock is taken, a registry
    run is created (status ``queued``), ``config.out`` is set to the run's
    folder ``data_dir()/runs/<run id>`` (an ``out`` given by the caller is
    ignored) and ``python -m nuclei_core.jobs <run id>`` is started in a new
    session with its output going to ``train.log``.  The worker's pid is in
    the registry before this returns; the worker sets ``running`` itself.

    Parameters
    ----------
    config : TrainConfig
        The training parameters.  Stored as the run's ``params`` (without
        ``out``, which is always the run folder).
    registry : Registry, optional
        Default: the registry in the data folder.

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
    >>> from nuclei_core.train import TrainConfig
    >>> run = start_training(TrainConfig(data="data/stage1_train", out=""))  # doctest: +SKIP
    >>> run.status, run.pid is not None  # doctest: +SKIP
    ('queued', True)
    """
    if not isinstance(config, TrainConfig):
        raise InputTypeError(f"config must be a TrainConfig, not {type(config).__name__}")
    config.check()
    check_dataset(config)
    registry = _registry(registry)
    with _START_LOCK:
        fd = _acquire_lock(_LOCK_WAIT_S)
        if fd is None:
            raise _busy_error(registry)
        try:
            return _create_and_spawn(config, registry, fd)
        finally:
            os.close(fd)  # the worker keeps the lock through its inherited copy


def _create_and_spawn(config: TrainConfig, registry: Registry, lock_fd: int) -> Run:
    """Create the run and start its worker; called with the lock held."""
    params = dataclasses.asdict(config)
    params.pop("out", None)
    data = os.pathsep.join(str(folder) for folder in config.data_folders())
    run = registry.create_run(_run_name(config), config.architecture, params, data)
    try:
        folder = _fresh_run_dir(run.id)
    except NucleiError as error:
        registry.set_status(run.id, "failed", message=str(error))
        raise
    config.out = str(folder)
    _write_lock_info(lock_fd, {"run_id": run.id, "name": run.name, "started_at": run.created_at})
    command = [sys.executable, "-m", "nuclei_core.jobs", str(run.id)]
    if registry.path != _default_registry_path():
        command += ["--registry", str(registry.path)]
    try:
        with open(folder / LOG_FILE_NAME, "ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_worker_env(lock_fd),
                pass_fds=(lock_fd,),
                start_new_session=True,
            )
    except OSError as error:
        message = f"cannot start the training process: {error.strerror or error}"
        registry.set_status(run.id, "failed", message=message)
        raise NucleiError(message) from error
    with _CHILDREN_LOCK:
        _CHILDREN[process.pid] = process
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
    _write_lock_info(lock_fd, info)
    return run


# -- status, stop, kill ------------------------------------------------------------------


def _read_progress(folder: Path) -> dict[str, Any]:
    """Return the progress file's content, or ``{}`` if missing or unreadable."""
    try:
        progress = json.loads((folder / PROGRESS_FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return progress if isinstance(progress, dict) else {}


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
    >>> job_status(run.id)["status"]  # doctest: +SKIP
    'running'
    """
    run = _registry(registry).get_run(_check_run_id(run_id))
    folder = run_dir(run.id)
    progress = _read_progress(folder)
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
    >>> stop_training(run.id)  # doctest: +SKIP
    True
    """
    run = _registry(registry).get_run(_check_run_id(run_id))
    if not run.is_active:
        return False
    folder = ensure_dir(run_dir(run.id))
    atomic_write_text(folder / STOP_FILE_NAME, f"stop requested at {utc_now()}\n")
    return True


def _is_worker_of(pid: int, run_id: int) -> bool:
    """Whether ``pid`` is a live ``nuclei_core.jobs`` worker of this run (not a reused pid)."""
    import psutil

    try:
        command = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return False
    return "nuclei_core.jobs" in command and str(run_id) in command


def _signal_worker(pid: int, signum: int) -> None:
    """Send a signal to the worker's process group (its own session), or to it alone."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has ended (zombies count as ended); ``True`` if it did."""
    deadline = time.monotonic() + timeout
    while True:
        _reap_children()
        if not pid_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


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
    >>> kill_training(run.id).status  # doctest: +SKIP
    'failed'
    """
    registry = _registry(registry)
    run = registry.get_run(_check_run_id(run_id))
    pid = run.pid
    if pid is not None and _is_worker_of(pid, run.id):
        _signal_worker(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            _signal_worker(pid, signal.SIGKILL)
            if not _wait_gone(pid, 10.0):
                raise NucleiError(f"training process {pid} of run {run.id} does not end")
    run = registry.get_run(run.id)
    if run.is_active and (run.pid is None or run.pid == pid):
        run = registry.set_status(run.id, "failed", message="training process killed")
    return run


# -- the worker --------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    """A one-line description of an exception."""
    text = str(error).strip().splitlines()
    detail = text[0] if text else ""
    if isinstance(error, NucleiError):
        return detail or type(error).__name__
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__


class _JobListener(TrainingListener):
    """Writes epochs to the registry and throttled progress to ``progress.json``."""

    def __init__(self, run_id: int, registry: Registry, folder: Path, config: TrainConfig):
        self.run_id = run_id
        self.registry = registry
        self.path = folder / PROGRESS_FILE_NAME
        self.epochs = config.epochs
        self.budget_s = config.time_budget_minutes * 60 if config.time_budget_minutes else None
        self.started = time.monotonic()
        self.epoch = 0  # 0-based epoch in progress
        self.step = 0
        self.steps = 0
        self.message = "starting"
        self.metrics: dict[str, Any] = {}
        self.last_write = 0.0
        # (time, fraction) at the first batch and at the end of the first epoch: the speed
        # is measured from the latest one passed, so graph building does not inflate the ETA
        self.origins: list[tuple[float, float]] = []
        self.missed: set[int] = set()  # epochs the registry did not take

    def fraction(self) -> float:
        """Share of the planned epochs done."""
        done = self.epoch + (self.step / self.steps if self.steps else 0.0)
        return min(1.0, max(0.0, done / self.epochs)) if self.epochs else 0.0

    def eta_seconds(self) -> float | None:
        """Time left, from the speed since the first batch or, later, the first epoch's end."""
        now, fraction = time.monotonic(), self.fraction()
        passed = [origin for origin in self.origins if origin[1] < fraction and origin[0] < now]
        if not passed:
            return None
        origin_time, origin_fraction = passed[-1]
        eta = (now - origin_time) * (1.0 - fraction) / (fraction - origin_fraction)
        if self.budget_s is not None:
            eta = min(eta, max(0.0, self.budget_s - (now - origin_time)))
        return round(eta, 1)

    def write(self, force: bool = False, eta: float | None = None) -> None:
        """Rewrite the progress file (atomically), at most every 0.5 s unless forced."""
        now = time.monotonic()
        if not force and now - self.last_write < PROGRESS_INTERVAL_S:
            return
        self.last_write = now
        progress = {
            "run_id": self.run_id,
            "epoch": self.epoch + 1 if self.steps else 0,
            "epochs": self.epochs,
            "step": self.step,
            "steps": self.steps,
            "fraction": round(self.fraction(), 4),
            "message": self.message,
            "eta_seconds": self.eta_seconds() if eta is None else eta,
            "elapsed_seconds": round(now - self.started, 1),
            "metrics": self.metrics,
            "updated_at": utc_now(),
        }
        with contextlib.suppress(NucleiError):  # progress is a convenience, never fatal
            atomic_write_json(self.path, progress)

    def on_status(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        self.message = message
        self.write(force=True)

    def on_batch_end(self, epoch: int, step: int, steps: int, logs: dict) -> None:
        self.epoch, self.step, self.steps = epoch, step, steps
        if not self.origins:
            self.origins.append((time.monotonic(), self.fraction()))
        self.message = f"epoch {epoch + 1}/{self.epochs}, step {step}/{steps}"
        self.write()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        try:
            self.registry.add_epoch(self.run_id, epoch + 1, logs)
        except NucleiError as error:  # a busy registry must not end a long training
            self.missed.add(epoch + 1)
            print(f"epoch {epoch + 1} not recorded yet: {error}", file=sys.stderr, flush=True)
        self.epoch, self.step = epoch, self.steps
        if len(self.origins) == 1:
            self.origins.append((time.monotonic(), self.fraction()))
        self.metrics = {key: value for key, value in logs.items() if key != "epoch"}
        shown = ", ".join(
            f"{key} {value:.4g}" if isinstance(value, (int, float)) else f"{key} {value}"
            for key, value in self.metrics.items()
        )
        self.message = f"epoch {epoch + 1}/{self.epochs} done"
        print(f"epoch {epoch + 1}: {shown}", file=sys.stderr, flush=True)
        self.write(force=True)

    def record_missed_epochs(self, history: list[dict]) -> None:
        """Add the epochs whose registry write failed during training (from the history)."""
        for row in history:
            if row.get("epoch") in self.missed:
                self.registry.add_epoch(self.run_id, row["epoch"], row)

    def finish(self, message: str) -> None:
        """Write the last progress line of the job."""
        self.message = message
        self.write(force=True, eta=0.0)


def _worker_lock() -> tuple[int, bool]:
    """Return the descriptor holding the single-job lock in the worker, and how it got it.

    A worker started by :func:`start_training` inherited the starter's
    locked descriptor (taking the lock again on it succeeds at once); one
    started by hand takes the lock itself or raises JobBusyError.

    Returns
    -------
    fd : int
        The locked descriptor.
    inherited : bool
        Whether it came from :func:`start_training` (which then must be waited for).
    """
    inherited = os.environ.pop(LOCK_FD_ENV, "")
    if inherited.isdigit():
        fd = int(inherited)
        with contextlib.suppress(OSError):
            os.set_inheritable(fd, False)  # nothing the worker starts may keep the lock
            if _try_flock(fd):
                return fd, True
    fd = _acquire_lock(_LOCK_WAIT_S)
    if fd is None:
        raise JobBusyError(f"another training job holds {lock_path()}; this worker does not start")
    return fd, False


def _wait_for_starter() -> None:
    """Block until the starter has recorded this process (it then closes our stdin)."""
    with contextlib.suppress(OSError, ValueError):
        while sys.stdin.buffer.read(65536):
            pass


def _config_from_run(run: Run, folder: Path) -> TrainConfig:
    """Rebuild the run's TrainConfig from its stored params; ``out`` is the run folder."""
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    params = {key: value for key, value in run.params.items() if key in known}
    params.update(out=str(folder), name=run.name)
    return TrainConfig(**params)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated(signum)


def run_worker(run_id: int, registry: Registry | None = None) -> int:
    """Train a queued run in this process (the body of ``python -m nuclei_core.jobs``).

    Holds the single-job lock, marks the run ``running`` with this pid, trains
    it (epochs go to the registry, progress to ``progress.json``, a ``STOP``
    file stops it) and ends it ``finished``, ``stopped`` or ``failed`` (with
    a one-line message; the traceback goes to stderr, i.e. ``train.log``).

    Parameters
    ----------
    run_id : int
        The run to train; it must be queued or running.
    registry : Registry, optional
        Default: the registry in the data folder.

    Returns
    -------
    int
        Exit status: 0 finished or stopped, 1 failed or not startable, 143 terminated.

    Examples
    --------
    >>> run_worker(run.id)  # doctest: +SKIP
    0
    """
    registry = _registry(registry)
    try:
        lock_fd, from_starter = _worker_lock()
    except JobBusyError as error:
        print(error, file=sys.stderr, flush=True)
        return 1
    try:
        if from_starter:
            _wait_for_starter()
        return _train_run(run_id, registry, lock_fd)
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(lock_fd, 0)
        os.close(lock_fd)


def _train_run(run_id: int, registry: Registry, lock_fd: int) -> int:
    """Train the run while holding the lock; see :func:`run_worker`."""
    run = registry.get_run(run_id)
    if not run.is_active:
        print(f"run {run_id} is {run.status}; nothing to do", file=sys.stderr, flush=True)
        return 1
    folder = ensure_dir(run_dir(run_id))
    stop_file = folder / STOP_FILE_NAME
    run = registry.set_status(run_id, "running", pid=os.getpid())
    _write_lock_info(
        lock_fd, {"run_id": run.id, "name": run.name, "started_at": run.started_at, "pid": run.pid}
    )
    print(f"{utc_now()} run {run.id} ({run.name}): training in pid {run.pid}", file=sys.stderr)
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        signal.signal(signal.SIGTERM, _on_sigterm)
    listener: _JobListener | None = None
    try:
        config = _config_from_run(run, folder)
        listener = _JobListener(run.id, registry, folder, config)
        if stop_file.exists():
            message = "stopped on request before training started"
            listener.finish(message)
            registry.set_status(run.id, "stopped", message=message)
            return 0
        listener.write(force=True)
        result = train(config, listener, should_stop=stop_file.exists)
        listener.record_missed_epochs(result.history)
        registry.update_run(
            run.id,
            model_path=result.model_path,
            card_path=result.card_path,
            best_epoch=result.best_epoch,
            final_metrics=result.final_metrics,
        )
        how = "stopped on request" if result.status == "stopped" else "finished"
        message = f"{how} after {len(result.history)} epochs; best epoch {result.best_epoch}"
        listener.finish(message)
        registry.set_status(run.id, result.status, message=message)
        print(f"{utc_now()} {message}", file=sys.stderr, flush=True)
        return 0
    except _Terminated:
        _end_failed(registry, run.id, listener, "training process terminated (SIGTERM)")
        return 143
    except BaseException as error:  # every failure must reach the registry
        traceback.print_exc()
        if stop_file.exists() and not (folder / "checkpoint_best.keras").is_file():
            message = "stopped on request before the first epoch ended; no model saved"
            if listener is not None:
                listener.finish(message)
            registry.set_status(run.id, "stopped", message=message)
            return 0
        _end_failed(registry, run.id, listener, _one_line(error))
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        return 1
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _end_failed(registry: Registry, run_id: int, listener: _JobListener | None, message: str):
    """Record a failure in the progress file and the registry (best effort)."""
    print(f"{utc_now()} failed: {message}", file=sys.stderr, flush=True)
    if listener is not None:
        listener.finish(f"failed: {message}")
    with contextlib.suppress(NucleiError):
        registry.set_status(run_id, "failed", message=message)


def main(argv: list[str] | None = None) -> int:
    """Command line of the worker: ``python -m nuclei_core.jobs RUN_ID [--registry FILE]``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status of :func:`run_worker`.

    Examples
    --------
    >>> main(["12"])  # doctest: +SKIP
    0
    """
    parser = argparse.ArgumentParser(
        prog="python -m nuclei_core.jobs", description="Train one queued registry run."
    )
    parser.add_argument("run_id", type=int, help="registry id of the run to train")
    parser.add_argument("--registry", help="registry file (default: the data folder's)")
    args = parser.parse_args(argv)
    registry = Registry(args.registry) if args.registry else None
    return run_worker(args.run_id, registry)


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


if __name__ == "__main__":
    raise SystemExit(main())
