"""Training jobs that wait for their turn: a server's queue in front of the single-job lock.

Only one training job runs at a time (:mod:`nuclei_core.jobs.lock`). A dashboard that
serves a lab lets a second training or fine-tune wait instead of refusing it: a
:class:`TrainingQueue` keeps the configurations in arrival order, and its thread starts
the first (:func:`nuclei_core.jobs.start_training`) as soon as no job runs. A signed-in
user has at most one job waiting or running (:meth:`TrainingQueue.add` refuses a second),
and at most :data:`MAX_WAITING` jobs wait on a server. The queue lives in the server's
memory: a restart forgets the jobs still waiting, never one that started.

Examples
--------
>>> started = []
>>> queue = TrainingQueue(registry, start=lambda config, registry, owner: started.append(owner))
>>> queue.waiting()
[]
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from nuclei_core.errors import JobBusyError, NucleiError, one_line
from nuclei_core.registry import ACTIVE_STATUSES, Registry
from nuclei_core.training import TrainConfig, check_dataset

__all__ = ["MAX_WAITING", "TrainingQueue", "Waiting"]

MAX_WAITING = 8
"""The most training jobs that wait on one server."""
KEEP_ENDED = 50
"""Waiting jobs that started (or could not) kept for their pages to read."""


@dataclass
class Waiting:
    """A training job in the queue: its configuration, who asked, and how it went."""

    ticket: int
    config: TrainConfig
    owner: str | None
    name: str
    run_id: int | None = None  # the run, once it started
    error: str | None = None  # why it could not start


class TrainingQueue:
    """Training configurations waiting in arrival order for the single-job lock.

    Parameters
    ----------
    registry : Registry
        Where the runs are created.
    start : callable, optional
        ``start(config, registry, owner) -> Run``; default
        :func:`nuclei_core.jobs.start_training`.
    poll_s : float, default 2.0
        How often the thread tries the first job while another runs.
    """

    def __init__(self, registry: Registry, start: Callable | None = None, poll_s: float = 2.0):
        self.registry = registry
        self._start = start
        self.poll_s = poll_s
        self._waiting: list[Waiting] = []
        self._ended: dict[int, Waiting] = {}
        self._tickets = itertools.count(1)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, config: TrainConfig, owner: str | None, name: str | None = None) -> Waiting:
        """Check ``config`` (as :func:`~nuclei_core.jobs.start_training` does) and queue it.

        Raises
        ------
        ConfigError, DatasetError
            Bad parameters or dataset, before anything is queued.
        JobBusyError
            ``owner`` (a signed-in user) has a job waiting or running already, or
            :data:`MAX_WAITING` jobs wait.
        """
        config.check()
        check_dataset(config)
        with self._lock:
            if owner is not None:
                self._refuse_a_second(owner)
            if len(self._waiting) >= MAX_WAITING:
                raise JobBusyError(
                    f"{MAX_WAITING} training jobs wait already (at most {MAX_WAITING}); "
                    "start yours when one has run"
                )
            shown = (name or config.name or config.architecture).strip()
            item = Waiting(next(self._tickets), config, owner, shown)
            self._waiting.append(item)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name="training queue"
                )
                self._thread.start()
        return item

    def _refuse_a_second(self, owner: str) -> None:
        mine = [item.name for item in self._waiting if item.owner == owner]
        mine += [
            run.name
            for run in self.registry.list_runs(status=ACTIVE_STATUSES)
            if run.owner == owner
        ]
        if mine:
            raise JobBusyError(
                f"you have a training job already ({mine[0]}): one at a time; stop it or "
                "wait for it to end"
            )

    def cancel(self, ticket: int) -> bool:
        """Take a job out of the queue before it starts; ``False`` if it is not waiting."""
        with self._lock:
            for item in self._waiting:
                if item.ticket == ticket:
                    self._waiting.remove(item)
                    return True
        return False

    def waiting(self) -> list[Waiting]:
        """The jobs waiting, first to start first."""
        with self._lock:
            return list(self._waiting)

    def place(self, ticket: int) -> int | None:
        """1 for the job that starts next, 2 after it ...; ``None`` when not waiting."""
        with self._lock:
            tickets = [item.ticket for item in self._waiting]
        return tickets.index(ticket) + 1 if ticket in tickets else None

    def ended(self, ticket: int) -> Waiting | None:
        """A job that left the queue by starting (``run_id``) or failing to (``error``)."""
        with self._lock:
            return self._ended.get(ticket)

    def _run(self) -> None:
        """The thread: start the first job whenever the lock is free, until none waits."""
        from nuclei_core import jobs

        start = self._start or jobs.start_training
        while True:
            with self._lock:
                if not self._waiting:
                    self._thread = None
                    return
                first = self._waiting[0]
            try:
                run = start(first.config, self.registry, owner=first.owner)
            except JobBusyError:
                time.sleep(self.poll_s)
                continue
            except NucleiError as error:
                first.error = one_line(error)
            else:
                first.run_id = run.id
            with self._lock:
                if first in self._waiting:
                    self._waiting.remove(first)
                self._ended[first.ticket] = first
                while len(self._ended) > KEEP_ENDED:
                    self._ended.pop(next(iter(self._ended)))
