"""Tests of training jobs (``nuclei_core.jobs``): start, single-job lock, status, stop, kill.

Training processes take a while to start (they import TensorFlow), so the three
slow scenarios (a job that finishes, one that is stopped, one that is killed
with SIGKILL) are started together by the module fixture ``jobs``, each in its
own data folder (its own lock, registry and run folders), and the tests then
check one scenario each.  Models are tiny (depth 2, 4 filters, 32-pixel crops)
and the dataset is 6 generated 48 x 48 images.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image
from support import is_zombie, wait_for

from nuclei_core import jobs
from nuclei_core.errors import ConfigError, DatasetError, JobBusyError
from nuclei_core.registry import Registry, Run
from nuclei_core.training import TrainConfig

DATA_ENV = "NUCLEI_DATA_DIR"
LONG_EPOCHS = 10_000  # a job that only ends when it is stopped or killed


def make_dataset(root: Path, count: int = 6, size: int = 48) -> Path:
    """Write ``count`` images with a few bright discs and their 16-bit label PNGs."""
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:size, :size]
    (root / "inputs").mkdir(parents=True)
    (root / "masks").mkdir()
    for index in range(count):
        labels = np.zeros((size, size), np.uint16)
        for label in range(1, 4):
            row, col = rng.integers(8, size - 8, 2)
            radius = rng.integers(4, 7)
            labels[(rows - row) ** 2 + (cols - col) ** 2 <= radius**2] = label
        image = np.where(labels > 0, 200, 20) + rng.integers(0, 20, labels.shape)
        Image.fromarray(image.astype(np.uint8)).save(root / "inputs" / f"img{index}.png")
        Image.fromarray(labels).save(root / "masks" / f"img{index}.png")
    return root


def tiny_config(dataset_folder: Path, **changes) -> TrainConfig:
    """A training configuration that trains in a second per epoch on a CPU."""
    values = dict(
        data=str(dataset_folder),
        out="",
        epochs=2,
        batch_size=2,
        crop=32,
        depth=2,
        base_filters=4,
        patience=5,
    )
    values.update(changes)
    return TrainConfig(**values)


def wait_until_ended(run_id: int, registry: Registry) -> Run:
    """Wait until a run is no longer queued/running and return it."""
    log = jobs.run_dir(run_id) / jobs.LOG_FILE_NAME

    def ended():
        run = registry.get_run(run_id)
        return None if run.is_active else run

    return wait_for(ended, f"run {run_id} to end", log)


def wait_for_epochs(run_id: int, registry: Registry, count: int = 1) -> list[dict]:
    """Wait until a run has ``count`` epochs in the registry (it must still be running)."""
    log = jobs.run_dir(run_id) / jobs.LOG_FILE_NAME

    def enough():
        assert registry.get_run(run_id).is_active, log.read_text(errors="replace")[-3000:]
        rows = registry.epochs(run_id)
        return rows if len(rows) >= count else None

    return wait_for(enough, f"{count} epoch(s) of run {run_id}", log)


def load_model(path: Path):
    """``nuclei_core.network.model.load_model`` (imports TensorFlow, so only when needed)."""
    from nuclei_core.network.model import load_model as load

    return load(path)


@dataclasses.dataclass
class Scenario:
    """A data folder with the job started in it."""

    folder: Path
    run: Run | None = None
    config: TrainConfig | None = None
    outcomes: list = dataclasses.field(default_factory=list)

    def registry(self) -> Registry:
        return Registry(self.folder / "registry.sqlite3")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny generated dataset (flat layout: inputs/ and masks/)."""
    return make_dataset(tmp_path_factory.mktemp("dataset") / "data")


@pytest.fixture(scope="module")
def jobs_started(
    dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Scenario]]:
    """Start the slow jobs together, one per data folder, and kill what is left at the end.

    ``race``: two threads call ``start_training`` at the same moment (2 epochs);
    ``stop`` and ``kill``: jobs that run until a test ends them.
    """
    scenarios = {name: Scenario(tmp_path_factory.mktemp(name)) for name in ("race", "stop", "kill")}
    with pytest.MonkeyPatch.context() as patch:
        race = scenarios["race"]
        patch.setenv(DATA_ENV, str(race.folder))
        barrier = threading.Barrier(2)

        def start() -> None:
            config = tiny_config(dataset)
            barrier.wait()
            try:
                race.outcomes.append(jobs.start_training(config))
            except Exception as error:  # recorded for the test to check
                race.outcomes.append(error)

        threads = [threading.Thread(target=start) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        started = [outcome for outcome in race.outcomes if isinstance(outcome, Run)]
        race.run = started[0] if started else None
        for name in ("stop", "kill"):
            patch.setenv(DATA_ENV, str(scenarios[name].folder))
            scenarios[name].config = tiny_config(dataset, epochs=LONG_EPOCHS, patience=LONG_EPOCHS)
            scenarios[name].run = jobs.start_training(scenarios[name].config)
    yield scenarios
    for scenario in scenarios.values():
        registry = scenario.registry()
        for run in registry.list_runs(status=("queued", "running")):
            jobs.kill_training(run.id, timeout=5, registry=registry)


# -- starting and the single-job lock ----------------------------------------------------


def test_two_threads_starting_at_once_start_exactly_one_job(jobs_started, monkeypatch):
    race = jobs_started["race"]
    monkeypatch.setenv(DATA_ENV, str(race.folder))
    runs = [outcome for outcome in race.outcomes if isinstance(outcome, Run)]
    refusals = [outcome for outcome in race.outcomes if isinstance(outcome, JobBusyError)]
    assert len(race.outcomes) == 2
    assert len(runs) == 1 and len(refusals) == 1, race.outcomes
    assert runs[0].name in str(refusals[0])
    assert [run.id for run in race.registry().list_runs()] == [runs[0].id]
    assert runs[0].status == "queued" and runs[0].pid is not None


def test_second_start_while_a_job_runs_is_refused(jobs_started, dataset, monkeypatch):
    scenario = jobs_started["stop"]
    monkeypatch.setenv(DATA_ENV, str(scenario.folder))
    registry = scenario.registry()
    assert jobs.running_job(registry).id == scenario.run.id
    with pytest.raises(JobBusyError, match="already running: .*started") as refused:
        jobs.start_training(tiny_config(dataset))
    assert scenario.run.name in str(refused.value)
    assert [run.id for run in registry.list_runs()] == [scenario.run.id]
    assert registry.get_run(scenario.run.id).is_active


def test_start_training_leaves_the_callers_config_as_it_was(jobs_started, dataset):
    for name in ("stop", "kill"):
        scenario = jobs_started[name]
        assert scenario.config == tiny_config(dataset, epochs=LONG_EPOCHS, patience=LONG_EPOCHS)
        assert scenario.config.out == "" and scenario.run.id is not None


@pytest.mark.parametrize(
    ("changes", "error", "reason"),
    [
        ({"epochs": 0}, ConfigError, "epochs must be at least 1"),
        ({"batch_size": 6}, ConfigError, "batch size 6 is larger than"),
        ({"crop": 64}, ConfigError, "crop 64 is larger than every training image"),
        ({"data": "no such folder"}, DatasetError, "does not exist"),
    ],
)
def test_bad_parameters_are_refused_before_anything_starts(
    changes, error, reason, dataset, tmp_path, monkeypatch
):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    children_before = {child.pid for child in psutil.Process().children()}
    with pytest.raises(error, match=reason):
        jobs.start_training(tiny_config(dataset, **changes))
    assert {child.pid for child in psutil.Process().children()} <= children_before
    assert not (tmp_path / "registry.sqlite3").exists()
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "training.lock").exists()


def test_lock_held_by_another_process_refuses_start_until_it_ends(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    holder_code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, str(jobs.lock_path())],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(JobBusyError, match="a training job is already running"):
            jobs.start_training(tiny_config(dataset))
        assert Registry().list_runs() == []
    finally:
        holder.kill()
        holder.wait()
    fd = os.open(jobs.lock_path(), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the kill left it locked
    finally:
        os.close(fd)


def test_run_being_started_is_not_marked_dead_while_the_lock_is_held(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    registry = Registry()
    starting = registry.create_run("starting", "unet", {"epochs": 2}, "data")  # no pid yet
    dead = registry.create_run("dead", "unet", {"epochs": 2}, "data")
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    registry.set_status(dead.id, "running", pid=ended.pid)
    fd = os.open(jobs.lock_path(), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a starter between create_run and recording the pid
        assert jobs.running_job(registry).id == starting.id
        assert registry.get_run(starting.id).status == "queued"
        assert registry.get_run(dead.id).status == "failed"
    finally:
        os.close(fd)
    assert jobs.running_job(registry) is None  # lock free: nobody is training
    assert registry.get_run(starting.id).status == "failed"


def test_run_that_finishes_during_the_dead_run_check_keeps_its_status(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    registry = Registry()
    run = registry.create_run("finishing", "unet", {"epochs": 2}, "data")
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    run = registry.set_status(run.id, "running", pid=ended.pid)
    finished = "finished after 2 epochs; best epoch 2"

    def finishes_while_checked(pid: int) -> bool:
        """The worker records 'finished' and exits between list_runs and the pid check."""
        registry.set_status(run.id, "finished", message=finished)
        return False

    monkeypatch.setattr(jobs.control, "pid_alive", finishes_while_checked)
    fd = os.open(jobs.lock_path(), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the worker holds the lock until it exits
        assert jobs.mark_dead_jobs(registry) == []
    finally:
        os.close(fd)
    after = registry.get_run(run.id)
    assert (after.status, after.message) == ("finished", finished)


def test_job_status_has_safe_defaults_before_and_while_progress_is_unreadable(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    registry = Registry()
    run = registry.create_run("waiting", "unet", {"epochs": 7}, "data")
    status = jobs.job_status(run.id, registry)
    assert status["status"] == "queued" and status["epochs"] == 7
    assert (status["epoch"], status["step"], status["eta_seconds"]) == (0, 0, None)
    assert status["updated_at"] is None and status["stop_requested"] is False
    folder = jobs.run_dir(run.id)
    folder.mkdir(parents=True)
    (folder / jobs.PROGRESS_FILE_NAME).write_text('{"epoch": 3, "ste')  # half written
    assert jobs.job_status(run.id, registry)["epoch"] == 0
    assert jobs.stop_training(run.id, registry) is True
    assert jobs.job_status(run.id, registry)["stop_requested"] is True
    registry.set_status(run.id, "failed", message="disk full")
    assert jobs.job_status(run.id, registry)["message"] == "disk full"
    assert jobs.stop_training(run.id, registry) is False


# -- the jobs started by the fixture -----------------------------------------------------


def test_stop_training_ends_the_job_stopped_with_a_loadable_best_checkpoint(
    jobs_started, monkeypatch
):
    scenario = jobs_started["stop"]
    monkeypatch.setenv(DATA_ENV, str(scenario.folder))
    registry = scenario.registry()
    run_id = scenario.run.id
    wait_for_epochs(run_id, registry)
    progress = jobs.job_status(run_id, registry)
    assert progress["status"] == "running" and progress["epoch"] >= 1
    assert progress["updated_at"] is not None and progress["epochs"] == LONG_EPOCHS
    assert jobs.stop_training(run_id, registry) is True
    run = wait_until_ended(run_id, registry)
    assert run.status == "stopped", run.message
    epochs = registry.epochs(run_id)
    assert 1 <= len(epochs) < LONG_EPOCHS
    folder = jobs.run_dir(run_id)
    load_model(folder / "checkpoint_best.keras")
    assert run.model_path == str(folder / "model.keras")
    load_model(run.model_path)
    assert 1 <= run.best_epoch <= len(epochs)
    assert jobs.running_job(registry) is None


def test_sigkill_mid_run_marks_the_run_failed_and_frees_the_lock(
    jobs_started, dataset, monkeypatch
):
    scenario = jobs_started["kill"]
    monkeypatch.setenv(DATA_ENV, str(scenario.folder))
    registry = scenario.registry()
    run_id = scenario.run.id
    wait_for_epochs(run_id, registry)
    log = jobs.run_dir(run_id) / jobs.LOG_FILE_NAME
    wait_for(lambda: jobs.job_status(run_id, registry)["epoch"] >= 2, "epoch 2 to start", log)
    pid = registry.get_run(run_id).pid
    os.kill(pid, signal.SIGKILL)  # while epoch 2 or later is being trained
    wait_for(lambda: not psutil.pid_exists(pid) or is_zombie(pid), f"pid {pid} to die")
    epochs_before = registry.epochs(run_id)

    assert jobs.running_job(registry) is None
    run = registry.get_run(run_id)
    assert run.status == "failed" and str(pid) in run.message
    assert registry.epochs(run_id) == epochs_before and len(epochs_before) >= 1
    load_model(jobs.run_dir(run_id) / "checkpoint_best.keras")

    again = jobs.start_training(tiny_config(dataset))  # the lock is free again
    assert again.id != run_id and again.pid is not None
    killed = jobs.kill_training(again.id, timeout=5, registry=registry)
    assert killed.status == "failed"
    assert not psutil.pid_exists(again.pid) or is_zombie(again.pid)


def test_started_job_finishes_with_its_epochs_in_the_registry(jobs_started, monkeypatch):
    scenario = jobs_started["race"]
    assert scenario.run is not None, scenario.outcomes
    monkeypatch.setenv(DATA_ENV, str(scenario.folder))
    registry = scenario.registry()
    run = wait_until_ended(scenario.run.id, registry)
    folder = jobs.run_dir(run.id)
    assert run.status == "finished", (run.message, (folder / "train.log").read_text()[-3000:])
    assert [row["epoch"] for row in registry.epochs(run.id)] == [1, 2]
    assert all("loss" in row and "val_dice" in row for row in registry.epochs(run.id))
    assert run.model_path == str(folder / "model.keras")
    assert run.card_path == str(folder / "model.json")
    assert run.best_epoch in (1, 2) and "val_loss" in run.final_metrics
    model = load_model(run.model_path)
    assert model.output_shape[-1] == 2
    assert run.params["epochs"] == 2 and run.params["crop"] == 32 and "out" not in run.params
    status = jobs.job_status(run.id, registry)
    assert (status["epoch"], status["epochs"], status["fraction"]) == (2, 2, 1.0)
    assert status["message"].startswith("finished")
    assert "finished after 2 epochs" in (folder / jobs.LOG_FILE_NAME).read_text()
    assert jobs.running_job(registry) is None
