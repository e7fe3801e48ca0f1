"""A first-come, first-served queue that lets at most a few jobs of a server run at once.

Training has its own rule (one job, a file lock: :mod:`nuclei_core.jobs.lock`); the work
a dashboard runs in its own process (folder batches, whole slides) takes a place in one
:class:`WorkQueue` per server, sized by ``NUCLEI_MAX_JOBS``
(:func:`nuclei_core.locations.max_jobs`). A job waits for its turn in arrival order, can
say how many jobs are ahead of it, and can give up its place while waiting.

Examples
--------
>>> queue = WorkQueue(slots=1)
>>> first, second = queue.join(), queue.join()
>>> queue.ahead(first), queue.ahead(second)
(0, 1)
>>> queue.leave(first); queue.ahead(second)
0
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from nuclei_core.checks import check_int
from nuclei_core.errors import InputError

__all__ = ["QueueLeft", "WorkQueue"]

_POLL_S = 0.2


class QueueLeft(Exception):
    """A job gave up its place before its turn came (its stop was asked for)."""


class WorkQueue:
    """At most ``slots`` jobs run at once; the others wait in the order they came.

    Parameters
    ----------
    slots : int
        How many jobs run at once (1 or more).
    """

    def __init__(self, slots: int) -> None:
        slots = check_int(slots, "slots")
        if slots < 1:
            raise InputError(f"slots must be 1 or more, got {slots}")
        self.slots = slots
        self._order: list[int] = []  # tickets waiting or running, in arrival order
        self._tickets = 0
        self._condition = threading.Condition()

    def join(self) -> int:
        """Take a place at the end of the queue; the ticket that names it."""
        with self._condition:
            self._tickets += 1
            self._order.append(self._tickets)
            return self._tickets

    def ahead(self, ticket: int) -> int:
        """How many jobs must end before ``ticket``'s turn (0: it runs now)."""
        with self._condition:
            return max(0, self._order.index(ticket) - self.slots + 1)

    def leave(self, ticket: int) -> None:
        """Give the place back (the job ended or gave up); the next job's turn may come."""
        with self._condition:
            if ticket in self._order:
                self._order.remove(ticket)
            self._condition.notify_all()

    def wait_turn(self, ticket: int, stop: threading.Event | None = None) -> None:
        """Return when ``ticket``'s turn has come; ``stop`` set while waiting gives the place
        back and raises :class:`QueueLeft`."""
        with self._condition:
            while self._order.index(ticket) >= self.slots:
                if stop is not None and stop.is_set():
                    self.leave(ticket)
                    raise QueueLeft("left the queue before its turn")
                self._condition.wait(_POLL_S)

    @contextlib.contextmanager
    def place(self, stop: threading.Event | None = None) -> Iterator[int]:
        """Wait for a turn (:meth:`wait_turn`), run the block, leave.

        Examples
        --------
        >>> queue = WorkQueue(slots=2)
        >>> with queue.place() as ticket:
        ...     queue.ahead(ticket)
        0
        """
        ticket = self.join()
        try:
            self.wait_turn(ticket, stop)
            yield ticket
        finally:
            self.leave(ticket)
