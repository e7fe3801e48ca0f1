"""The server's work queue (nuclei_core.jobs.queue) and the jobs of the app that wait in it
(ui.background.BackgroundJob): at most `slots` at once, first come first served, a stop
while waiting gives the place back."""

from __future__ import annotations

import threading
import time

import pytest

from nuclei_core.errors import InputError
from nuclei_core.jobs.queue import QueueLeft, WorkQueue
from ui.background import BackgroundJob


def run_together(slots: int, count: int = 6) -> tuple[int, list[int]]:
    """``count`` jobs that join in order and start their threads the other way round: the
    most that ran at once, and the order they started in."""
    queue = WorkQueue(slots=slots)
    running, most, started = [], [0], []
    lock = threading.Lock()

    def job(number: int, ticket: int) -> None:
        queue.wait_turn(ticket)
        try:
            with lock:
                running.append(number)
                started.append(number)
                most[0] = max(most[0], len(running))
            time.sleep(0.05)
            with lock:
                running.remove(number)
        finally:
            queue.leave(ticket)

    tickets = [queue.join() for _ in range(count)]
    threads = [
        threading.Thread(target=job, args=(number, ticket))
        for number, ticket in reversed(list(enumerate(tickets)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return most[0], started


def test_at_most_slots_jobs_run_at_once():
    most, started = run_together(slots=2)
    assert most == 2 and sorted(started) == list(range(6))


def test_jobs_run_in_the_order_they_came():
    assert run_together(slots=1) == (1, list(range(6)))


def test_a_stop_while_waiting_leaves_the_queue_and_the_next_one_moves_up():
    queue = WorkQueue(slots=1)
    first, second, third = queue.join(), queue.join(), queue.join()
    stop = threading.Event()
    stop.set()
    with pytest.raises(QueueLeft):
        queue.wait_turn(second, stop)
    assert queue.ahead(third) == 1
    queue.leave(first)
    assert queue.ahead(third) == 0


def test_slots_are_checked():
    with pytest.raises(InputError, match="slots must be 1 or more"):
        WorkQueue(0)


class Gate(BackgroundJob):
    """A job that runs until its gate opens."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()

    def work(self):
        self.gate.wait(10)


def test_a_job_of_the_app_shows_its_place_then_runs():
    queue = WorkQueue(slots=1)
    first, second = Gate().start(queue), Gate().start(queue)
    deadline = time.monotonic() + 5
    while second.ahead != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (first.ahead, second.ahead) == (0, 1)
    first.gate.set()
    assert first.wait(5)
    deadline = time.monotonic() + 5
    while second.ahead and time.monotonic() < deadline:
        time.sleep(0.01)
    assert second.ahead == 0 and second.running
    second.gate.set()
    assert second.wait(5) and not second.stopped


def test_a_job_stopped_in_the_queue_never_runs():
    queue = WorkQueue(slots=1)
    first, second = Gate().start(queue), Gate().start(queue)
    second.stop()
    assert second.wait(5) and second.stopped and second.error is None
    first.gate.set()
    assert first.wait(5)


class Bar:
    """An ``st.progress`` stand-in that records its texts and can stop the script."""

    def __init__(self, stop_after: int | None = None):
        self.texts: list[str] = []
        self.stop_after = stop_after

    def progress(self, value, text=""):
        self.texts.append(text)
        if self.stop_after is not None and len(self.texts) >= self.stop_after:
            raise KeyboardInterrupt("the user left the page")  # as Streamlit's StopException


def test_a_page_waits_for_its_turn_showing_its_place(monkeypatch):
    import ui.background as background

    queue = WorkQueue(slots=1)
    monkeypatch.setattr(background, "work_queue", lambda: queue)
    batch = queue.join()  # a folder batch holds the only slot
    ran, bar = [], Bar()

    def segment():
        with background.turn(bar):
            ran.append("segmented")

    thread = threading.Thread(target=segment)
    thread.start()
    deadline = time.monotonic() + 5
    while not bar.texts and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bar.texts[0] == "Waiting for its turn: 1 job on this server runs first." and not ran
    queue.leave(batch)
    thread.join(5)
    assert ran == ["segmented"]  # ran once the batch had left
    assert queue.ahead(queue.join()) == 0  # and gave its place back


def test_a_page_that_stops_while_waiting_gives_its_place_back(monkeypatch):
    import ui.background as background

    queue = WorkQueue(slots=1)
    monkeypatch.setattr(background, "work_queue", lambda: queue)
    queue.join()  # a folder batch holds the only slot
    with pytest.raises(KeyboardInterrupt), background.turn(Bar(stop_after=2)):
        pytest.fail("ran before its turn")
    later = queue.join()
    assert queue.ahead(later) == 1  # only the batch is ahead
