"""The server's queue of training jobs (nuclei_core.jobs.waiting.TrainingQueue): jobs wait
while another runs and start in arrival order, a signed-in user has one job at a time,
cancelled jobs never start, a job that cannot start says why and the next one goes on."""

from __future__ import annotations

import threading
import time

import pytest

from nuclei_core.errors import ConfigError, JobBusyError, NucleiError
from nuclei_core.jobs.waiting import MAX_WAITING, TrainingQueue
from nuclei_core.registry import Registry
from nuclei_core.training import TrainConfig


def tiny_config(dataset, **changes) -> TrainConfig:
    values = dict(data=str(dataset), out="", epochs=2, batch_size=2, crop=32, depth=2)
    return TrainConfig(**(values | changes))


class FakeServer:
    """``start_training`` of a server whose single job runs while ``busy`` is set."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.busy = threading.Event()
        self.started: list[str] = []
        self.failing: set[str] = set()

    def start(self, config, registry, owner=None):
        if self.busy.is_set():
            raise JobBusyError("a training job is already running: other")
        if config.name in self.failing:
            raise NucleiError("cannot start the training process: no memory")
        self.started.append(config.name)
        return registry.create_run(config.name, "unet", {}, config.data, owner=owner)


@pytest.fixture
def server(tmp_path):
    return FakeServer(Registry(tmp_path / "registry.sqlite3"))


@pytest.fixture
def dataset(flat_dataset):
    return flat_dataset


QUEUES: list[TrainingQueue] = []


@pytest.fixture(autouse=True)
def empty_queues():
    """Cancel what a test left waiting, so no queue thread polls on after it."""
    yield
    while QUEUES:
        queue = QUEUES.pop()
        for item in queue.waiting():
            queue.cancel(item.ticket)


def queue_of(server) -> TrainingQueue:
    queue = TrainingQueue(server.registry, start=server.start, poll_s=0.01)
    QUEUES.append(queue)
    return queue


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def test_jobs_wait_while_one_runs_then_start_in_the_order_they_came(server, dataset):
    server.busy.set()
    queue = queue_of(server)
    items = [queue.add(tiny_config(dataset, name=f"job {n}"), owner=f"user{n}") for n in range(3)]
    time.sleep(0.1)
    assert server.started == [] and [queue.place(item.ticket) for item in items] == [1, 2, 3]
    server.busy.clear()
    wait_until(lambda: all(queue.ended(item.ticket) for item in items))
    assert server.started == ["job 0", "job 1", "job 2"]
    assert all(queue.ended(item.ticket).run_id is not None for item in items)
    assert queue.waiting() == [] and queue.place(items[0].ticket) is None


def test_a_signed_in_user_has_one_job_at_a_time(server, dataset):
    server.busy.set()
    queue = queue_of(server)
    queue.add(tiny_config(dataset, name="first"), owner="ada")
    with pytest.raises(JobBusyError, match=r"you have a training job already \(first\)"):
        queue.add(tiny_config(dataset, name="second"), owner="ada")
    server.registry.create_run("running", "unet", {}, "data", status="running", owner="bo")
    with pytest.raises(JobBusyError, match=r"already \(running\)"):
        queue.add(tiny_config(dataset, name="bo's second"), owner="bo")
    queue.add(tiny_config(dataset, name="local 1"), owner=None)  # the one local user
    queue.add(tiny_config(dataset, name="local 2"), owner=None)
    assert [item.name for item in queue.waiting()] == ["first", "local 1", "local 2"]


def test_a_cancelled_job_never_starts_and_the_next_moves_up(server, dataset):
    server.busy.set()
    queue = queue_of(server)
    first = queue.add(tiny_config(dataset, name="first"), owner="ada")
    second = queue.add(tiny_config(dataset, name="second"), owner="bo")
    assert queue.cancel(first.ticket) and not queue.cancel(first.ticket)
    assert queue.place(second.ticket) == 1
    server.busy.clear()
    wait_until(lambda: server.started == ["second"])
    time.sleep(0.05)
    assert server.started == ["second"] and queue.ended(first.ticket) is None


def test_a_job_that_cannot_start_says_why_and_the_next_goes_on(server, dataset):
    server.busy.set()
    server.failing.add("broken")
    queue = queue_of(server)
    broken = queue.add(tiny_config(dataset, name="broken"), owner="ada")
    queue.add(tiny_config(dataset, name="fine"), owner="bo")
    server.busy.clear()
    wait_until(lambda: server.started == ["fine"])
    wait_until(lambda: queue.ended(broken.ticket) is not None)
    assert queue.ended(broken.ticket).error == "cannot start the training process: no memory"
    assert queue.ended(broken.ticket).run_id is None


def test_bad_jobs_are_refused_before_they_wait_and_the_queue_is_bounded(server, dataset):
    server.busy.set()
    queue = queue_of(server)
    with pytest.raises(ConfigError, match="epochs must be at least 1"):
        queue.add(tiny_config(dataset, epochs=0), owner=None)
    for number in range(MAX_WAITING):
        queue.add(tiny_config(dataset, name=f"job {number}"), owner=None)
    with pytest.raises(JobBusyError, match=f"{MAX_WAITING} training jobs wait already"):
        queue.add(tiny_config(dataset, name="one too many"), owner=None)
    assert len(queue.waiting()) == MAX_WAITING
