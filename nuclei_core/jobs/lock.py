"""The single-job lock: at most one training job runs at a time, across processes.

The rule is kept by an exclusive ``flock`` on ``data_folder()/training.lock``:
the starter takes it, the worker inherits the same open file description
(its number is in ``$NUCLEI_JOB_LOCK_FD``) and holds it for as long as it
lives, and the operating system releases it when the worker ends, even by
``SIGKILL``.  A ``threading.Lock`` serialises the Streamlit sessions (threads)
of one server.  The holder writes who it is into the lock file, only read to
name the running job in an error message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from nuclei_core.errors import JobBusyError, StorageError
from nuclei_core.jobs.paths import lock_path
from nuclei_core.locations import LOCK_FD_ENV
from nuclei_core.registry import ACTIVE_STATUSES, Registry

LOCK_WAIT_S = 2.0
"""How long a starter retries a lock that a dead-run check holds for a moment."""

_LOCK_RETRY_S = 0.05
_START_LOCK = threading.Lock()  # Streamlit sessions of one server are threads of one process


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


def acquire_lock(wait_s: float) -> int | None:
    """Return a descriptor holding the single-job lock, or ``None`` if it stays busy.

    The lock is retried for ``wait_s`` seconds because
    :func:`~nuclei_core.jobs.mark_dead_jobs` holds it for a moment while it
    checks for dead runs.  The caller closes the descriptor.

    Examples
    --------
    >>> fd = acquire_lock(0.0)
    >>> acquire_lock(0.0) is None  # taken: a second descriptor cannot have it
    True
    >>> os.close(fd)
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


@contextlib.contextmanager
def holding_lock(wait_s: float) -> Iterator[int | None]:
    """Serialise this server's threads and try the single-job lock for ``wait_s`` seconds.

    Yields the locked descriptor (closed when the block ends; a worker
    started inside keeps the lock through its inherited copy), or ``None``
    if another process holds the lock.

    Examples
    --------
    >>> with holding_lock(0.0) as fd:
    ...     fd is not None
    True
    """
    with _START_LOCK:
        fd = acquire_lock(wait_s)
        if fd is None:
            yield None
            return
        try:
            yield fd
        finally:
            os.close(fd)


def write_lock_info(fd: int, info: dict[str, Any]) -> None:
    """Write who holds the lock into the lock file (best effort, only read for messages).

    Examples
    --------
    >>> with holding_lock(0.0) as fd:
    ...     write_lock_info(fd, {"name": "unet demo"})
    >>> read_lock_info()
    {'name': 'unet demo'}
    """
    with contextlib.suppress(OSError):
        data = json.dumps(info).encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)


def read_lock_info() -> dict[str, Any]:
    """Return what the lock holder wrote into the lock file (``{}`` if unreadable).

    Examples
    --------
    >>> read_lock_info()
    {}
    """
    try:
        info = json.loads(lock_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def busy_error(registry: Registry) -> JobBusyError:
    """Build the JobBusyError naming the job that holds the lock.

    Examples
    --------
    >>> print(busy_error(registry))
    a training job is already running: unknown job (started at an unknown time)
    """
    info = read_lock_info()
    name, started = info.get("name"), info.get("started_at")
    if not name:
        active = registry.list_runs(status=ACTIVE_STATUSES)
        if active:
            name, started = active[0].name, active[0].started_at or active[0].created_at
    return JobBusyError(
        f"a training job is already running: {name or 'unknown job'} "
        f"(started {started or 'at an unknown time'})"
    )


def worker_lock() -> tuple[int, bool]:
    """Return the descriptor holding the single-job lock in the worker, and how it got it.

    A worker started by :func:`~nuclei_core.jobs.start_training` inherited the
    starter's locked descriptor (taking the lock again on it succeeds at
    once); one started by hand takes the lock itself or raises JobBusyError.

    Returns
    -------
    fd : int
        The locked descriptor.
    inherited : bool
        Whether it came from the starter (which then must be waited for).

    Raises
    ------
    JobBusyError
        If another process holds the lock.

    Examples
    --------
    >>> fd, inherited = worker_lock()  # started by hand: takes the lock itself
    >>> inherited
    False
    >>> os.close(fd)
    """
    inherited = os.environ.pop(LOCK_FD_ENV, "")
    if inherited.isdigit():
        fd = int(inherited)
        with contextlib.suppress(OSError):
            os.set_inheritable(fd, False)  # nothing the worker starts may keep the lock
            if _try_flock(fd):
                return fd, True
    fd = acquire_lock(LOCK_WAIT_S)
    if fd is None:
        raise JobBusyError(f"another training job holds {lock_path()}; this worker does not start")
    return fd, False
