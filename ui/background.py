"""Work of a browser session that runs in a background thread, in turn with other sessions'.

The Segment and Browse pages wait for their turn in the same queue in the foreground
(:func:`turn`).

:class:`BackgroundJob` is the base of the folder batch (``ui.batch.BatchJob``) and the
whole slide (``ui.slide_job.SlideJob``): a daemon thread that first waits for its turn in
the server's :class:`~nuclei_core.jobs.queue.WorkQueue` (:func:`work_queue`, at most
``NUCLEI_MAX_JOBS`` at once, the others in arrival order), then runs :meth:`work`. The
job lives in ``st.session_state``, so it goes on while its user is on another page, and
the page shows its place in the queue (:attr:`BackgroundJob.ahead`) until it starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import threading
import time
from collections.abc import Iterator

import streamlit as st

from nuclei_core import locations
from nuclei_core.errors import one_line
from nuclei_core.jobs.queue import QueueLeft, WorkQueue

_WAIT_S = 0.25


@st.cache_resource(show_spinner=False)
def work_queue() -> WorkQueue:
    """The server's queue of segmentations, folder batches and slides (one per process)."""
    return WorkQueue(locations.max_jobs())


def release_memory() -> None:
    """Give back to the system the memory that finished work freed.

    glibc keeps the freed heap pages of every thread's arena, and each script run and job
    is a thread: the Segment page's memory grew by about 25 MB with every 4096 x 4096 image
    without this (1649 to 2139 MB over 20, and 1703 MB when the session had ended against
    929 before), and stayed flat with it. Elsewhere than glibc it does nothing.
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, looked up once (``find_library`` runs ``ldconfig``), or None."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: macOS, musl
        return None


@contextlib.contextmanager
def turn(bar) -> Iterator[None]:
    """Wait for a turn in the server's queue, showing the place on ``bar`` (an
    ``st.progress``), run the block, leave: the Segment and Browse pages' own work.

    Leaving the page or changing a widget while waiting stops the script at the next
    update of ``bar`` (Streamlit's rerun), which gives the place back.
    """
    queue = work_queue()
    ticket = queue.join()
    try:
        while ahead := queue.ahead(ticket):
            bar.progress(0.0, text=waiting_text(ahead))
            time.sleep(_WAIT_S)
        yield
    finally:
        queue.leave(ticket)


class BackgroundJob:
    """Wait for a turn in ``queue`` (none: at once), then run :meth:`work` in a thread.

    Subclasses define :meth:`work` (which looks at :attr:`stop_requested` between steps)
    and may define :meth:`error_text` and :meth:`finish`. ``error`` is the error's line,
    ``stopped`` whether a stop ended it early, ``seconds`` its running time.

    Examples
    --------
    >>> class Sleep(BackgroundJob):
    ...     def work(self):
    ...         time.sleep(0.01)
    >>> job = Sleep().start()
    >>> job.wait(5), job.error, job.stopped
    (True, None, False)
    """

    thread_name = "nuclei-job"
    stop_label = "Stop"  # the Stop button of :func:`follow`, its key and what the job is
    stop_key = "job_stop"
    what = "job"

    def __init__(self) -> None:
        self.error: str | None = None
        self.stopped = False
        self.started = time.monotonic()
        self.seconds = 0.0
        self._queue: WorkQueue | None = None
        self._ticket: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name=self.thread_name, daemon=True)

    def start(self, queue: WorkQueue | None = None):
        """Join ``queue`` and start the thread; the job itself."""
        self._queue = queue
        self._ticket = queue.join() if queue is not None else None
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            if self._queue is not None:
                self._queue.wait_turn(self._ticket, self._stop)
            self.started = time.monotonic()
            self.work()
        except QueueLeft:
            self.stopped = True
        except Exception as error:  # noqa: BLE001 - the thread's end: report, do not lose it
            self.error = self.error_text(error)
        finally:
            if self._queue is not None:
                self._queue.leave(self._ticket)
                self._ticket = None
            self.seconds = time.monotonic() - self.started
            self.finish()
            release_memory()

    def work(self) -> None:
        raise NotImplementedError

    def fraction(self) -> float:
        """How much is done, 0 to 1 (the progress bar of :func:`follow`)."""
        return 0.0

    def progress_text(self) -> str:
        """The progress bar's text."""
        return f"The {self.what} runs…"

    def error_text(self, error: BaseException) -> str:
        """What the page says when :meth:`work` raised ``error``."""
        return one_line(error)

    def finish(self) -> None:
        """Runs last in the thread, after :meth:`work` ended in any way."""

    @property
    def ahead(self) -> int:
        """Jobs ahead of this one in the queue (0 once it runs or when there is no queue)."""
        ticket, queue = self._ticket, self._queue
        if ticket is None or queue is None or not self.running:
            return 0
        try:
            return queue.ahead(ticket)
        except ValueError:  # it has just left
            return 0

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask the job to stop after its current step (or to leave the queue)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the job to end; ``True`` when it has."""
        self._thread.join(timeout)
        return not self.running


def waiting_text(ahead: int) -> str:
    """The line a queued job shows.

    Examples
    --------
    >>> waiting_text(1)
    'Waiting for its turn: 1 job on this server runs first.'
    >>> waiting_text(3)
    'Waiting for its turn: 3 jobs on this server run first.'
    """
    jobs = f"{ahead} job{'s' if ahead != 1 else ''}"
    return f"Waiting for its turn: {jobs} on this server run{'s' if ahead == 1 else ''} first."


def follow(job: BackgroundJob, poll_seconds: float = 1.0) -> None:
    """The job's place in the queue, its progress bar and a Stop button, refreshed every
    ``poll_seconds`` in a fragment while it runs; the whole page reruns once when it ends
    (and then shows the results)."""
    running = job.running

    @st.fragment(run_every=poll_seconds if running else None)
    def progress() -> None:
        if not job.running:
            if running:
                st.rerun()
            return
        if job.ahead:
            st.info(waiting_text(job.ahead))
        st.progress(job.fraction(), text=job.progress_text())
        st.button(job.stop_label, key=job.stop_key, on_click=job.stop)
        st.caption(f"You can use the other pages meanwhile; the {job.what} goes on.")

    progress()
