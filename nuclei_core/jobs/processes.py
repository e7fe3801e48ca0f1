"""The worker process: start it in its own session, recognise it, signal it, wait for it.

A worker is ``python -m nuclei_core.jobs RUN_ID`` started in a new session
(its own process group) with its output going to the run's ``train.log``.
It is only ever signalled after its command line was checked, so a pid that
the system reused for another program is left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from nuclei_core.errors import NucleiError
from nuclei_core.jobs.paths import LOG_FILE_NAME
from nuclei_core.locations import DATA_DIR_ENV, LOCK_FD_ENV, PROJECT_ROOT, data_folder
from nuclei_core.registry import pid_alive
from nuclei_core.storage import ensure_dir

WORKER_MODULE = "nuclei_core.jobs"
"""The module ``python -m`` runs as a worker (also how a worker's command line is recognised)."""

_CHILDREN: dict[int, subprocess.Popen] = {}  # workers this process started, to reap them
_CHILDREN_LOCK = threading.Lock()


def reap_children() -> None:
    """Collect the exit status of finished workers this process started (no zombies).

    Examples
    --------
    >>> reap_children()
    """
    with _CHILDREN_LOCK:
        for pid, process in list(_CHILDREN.items()):
            if process.poll() is not None:
                del _CHILDREN[pid]


def worker_env(lock_fd: int) -> dict[str, str]:
    """Environment of a worker: same data folder, importable package, unbuffered output.

    Examples
    --------
    >>> env = worker_env(5)
    >>> env["NUCLEI_JOB_LOCK_FD"], env["PYTHONUNBUFFERED"]
    ('5', '1')
    """
    env = dict(os.environ)
    env[DATA_DIR_ENV] = str(ensure_dir(data_folder()))
    env[LOCK_FD_ENV] = str(lock_fd)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    paths = [str(PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def spawn_worker(
    run_id: int, folder: Path, lock_fd: int, registry_path: Path | None = None
) -> subprocess.Popen:
    """Start ``python -m nuclei_core.jobs RUN_ID`` in a new session, output to ``train.log``.

    The worker inherits the locked descriptor ``lock_fd`` and waits until
    its stdin is closed before it touches the registry: the caller records
    the pid first, then closes ``process.stdin``.

    Parameters
    ----------
    run_id : int
        The queued run.
    folder : pathlib.Path
        The run folder (``train.log`` is appended to).
    lock_fd : int
        The descriptor holding the single-job lock.
    registry_path : pathlib.Path, optional
        A registry other than the data folder's default.

    Returns
    -------
    subprocess.Popen
        The worker, with a pipe on its stdin.

    Raises
    ------
    OSError
        If the process cannot be started.
    """
    command = [sys.executable, "-m", WORKER_MODULE, str(run_id)]
    if registry_path is not None:
        command += ["--registry", str(registry_path)]
    with open(folder / LOG_FILE_NAME, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=worker_env(lock_fd),
            pass_fds=(lock_fd,),
            start_new_session=True,
        )
    with _CHILDREN_LOCK:
        _CHILDREN[process.pid] = process
    return process


def is_worker_of(pid: int, run_id: int) -> bool:
    """Whether ``pid`` is a live ``nuclei_core.jobs`` worker of this run (not a reused pid).

    Examples
    --------
    >>> is_worker_of(os.getpid(), 1)
    False
    """
    try:
        command = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return False
    return WORKER_MODULE in command and str(run_id) in command


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
        reap_children()
        if not pid_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def end_worker(pid: int, run_id: int, timeout: float) -> None:
    """SIGTERM the worker, then SIGKILL if it is still alive after ``timeout`` seconds.

    Raises
    ------
    NucleiError
        If the process is still alive 10 s after SIGKILL.
    """
    _signal_worker(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout):
        _signal_worker(pid, signal.SIGKILL)
        if not _wait_gone(pid, 10.0):
            raise NucleiError(f"training process {pid} of run {run_id} does not end")
