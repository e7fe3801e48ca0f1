"""Tests of the run registry (``nuclei_core.registry``)."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import types
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nuclei_core import storage
from nuclei_core.errors import InputError, InputTypeError, StorageError
from nuclei_core.registry import SCHEMA_VERSION, Registry, Run

CARD = {
    "name": "shipped unet",
    "architecture": "unet",
    "params": {"epochs": 3, "learning_rate": 0.001},
    "dataset": "stage1_train",
    "created_at": "2024-05-01T14:30:00+02:00",
    "history": [
        {"epoch": 1, "loss": 0.5, "val_dice": 0.6},
        {"epoch": 0, "loss": 0.9, "val_dice": 0.4},
        {"epoch": 2, "loss": 0.3, "val_dice": 0.7},
    ],
    "best_epoch": 2,
    "final_metrics": {"val_dice": 0.7, "val_iou": 0.55},
}


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    """A fresh registry in the test's temporary folder."""
    return Registry(tmp_path / "registry.sqlite3")


def _new_run(registry: Registry, name: str = "baseline", **options) -> Run:
    """Create a run with default architecture, params and dataset."""
    return registry.create_run(name, "unet", {"epochs": 5}, "stage1_train", **options)


def _utc(text: str) -> datetime:
    """Parse a stored timestamp and check that it is UTC."""
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() == timedelta(0)
    return moment


def _dead_pid() -> int:
    """The pid of a process that has finished and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _write_epochs(path: str, run_id: int, count: int) -> None:
    """Writer process of the concurrency test: one small transaction per epoch."""
    writer = Registry(path)
    for epoch in range(count):
        writer.add_epoch(run_id, epoch, {"loss": 1.0 / (epoch + 1), "seconds": 0.01})


# -- schema and opening ------------------------------------------------------------------


def test_open_creates_schema_in_wal_mode(registry: Registry) -> None:
    with sqlite3.connect(registry.path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        journal_mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    connection.close()
    assert {"runs", "epochs", "settings"} <= tables
    assert journal_mode == "wal"
    assert version == SCHEMA_VERSION


def test_threads_opening_a_new_file_together_all_succeed(tmp_path: Path) -> None:
    # Two app sessions starting a job at once open a new registry together; SQLite
    # refuses a concurrent switch to WAL at once ("database is locked"), which made
    # one of them fail in CI.  Before the fix, about one trial in eight failed here.
    failures = []
    for trial in range(40):
        path = tmp_path / f"trial{trial}" / "registry.sqlite3"
        barrier = threading.Barrier(4)

        def open_and_list(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                Registry(path).list_runs()
            except StorageError as error:
                failures.append(error)

        threads = [threading.Thread(target=open_and_list) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []


def test_a_registry_of_before_users_gets_owners_and_keeps_its_runs(tmp_path: Path) -> None:
    """A schema-1 file (no ``owner`` column) is brought up to date; its runs are shared."""
    from nuclei_core.registry.database import _SCHEMA_V1

    path = tmp_path / "registry.sqlite3"
    connection = sqlite3.connect(path)
    for statement in _SCHEMA_V1:
        connection.execute(statement)
    connection.execute(
        "INSERT INTO runs (name, status, created_at, model_path) "
        "VALUES ('old', 'finished', '2026-01-01T00:00:00+00:00', 'm.keras')"
    )
    connection.execute("PRAGMA user_version = 1")
    connection.commit()
    connection.close()
    registry = Registry(path)
    (old,) = registry.list_runs()
    assert (old.name, old.owner, old.model_path) == ("old", None, "m.keras")
    mine = registry.create_run("mine", "unet", {}, "d", owner="ada@lab.org")
    assert registry.get_run(mine.id).owner == "ada@lab.org"
    assert registry.update_run(mine.id, owner=None).owner is None  # published
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    check.close()


def test_reopening_keeps_runs(registry: Registry) -> None:
    run = _new_run(registry)
    assert Registry(registry.path).get_run(run.id) == run


def test_default_path_is_in_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(storage.DATA_DIR_ENV, str(tmp_path / "data"))
    assert Registry().path == tmp_path / "data" / "registry.sqlite3"
    assert Registry().path.is_file()


def test_corrupt_file_raises_storage_error_and_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite3"
    garbage = b"this is not a SQLite database\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(StorageError, match=r"registry\.sqlite3.*not a usable SQLite database"):
        Registry(path)
    assert path.read_bytes() == garbage


def test_newer_schema_version_is_refused(registry: Registry) -> None:
    with sqlite3.connect(registry.path) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(StorageError, match="schema version"):
        Registry(registry.path)


def test_folder_in_the_way_raises_storage_error(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder")
    with pytest.raises(StorageError, match="blocker"):
        Registry(tmp_path / "blocker" / "registry.sqlite3")


# -- runs --------------------------------------------------------------------------------


def test_create_get_and_list(registry: Registry) -> None:
    first = _new_run(registry, "first")
    second = _new_run(registry, "second", status="running")
    assert first.status == "queued" and first.params == {"epochs": 5}
    assert first.dataset == "stage1_train" and first.architecture == "unet"
    assert registry.get_run(first.id) == first
    assert [run.name for run in registry.list_runs()] == ["second", "first"]
    assert registry.list_runs(status="running") == [second]
    assert registry.list_runs(status=["finished"]) == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.name = "changed"  # type: ignore[misc]


def test_get_unknown_run_raises_input_error(registry: Registry) -> None:
    with pytest.raises(InputError, match="no run with id 999"):
        registry.get_run(999)


def test_bad_arguments_are_rejected(registry: Registry) -> None:
    with pytest.raises(InputError, match="name is empty"):
        registry.create_run("   ", "unet", {}, "stage1_train")
    with pytest.raises(InputTypeError, match="params"):
        registry.create_run("run", "unet", ["not", "a", "dict"], "stage1_train")
    with pytest.raises(InputError, match="status"):
        registry.create_run("run", "unet", {}, "stage1_train", status="paused")
    assert registry.list_runs() == []


def test_duplicate_names_get_suffixes(registry: Registry) -> None:
    names = [_new_run(registry, "unet").name for _ in range(3)]
    assert names == ["unet", "unet (2)", "unet (3)"]
    assert registry.find_run_by_name("unet (2)").name == "unet (2)"
    assert registry.find_run_by_name("missing") is None


def test_names_from_threads_stay_unique(registry: Registry) -> None:
    names: list[str] = []
    workers = [
        threading.Thread(target=lambda: names.append(_new_run(registry, "same").name))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(names) == ["same", "same (2)", "same (3)", "same (4)"]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", " a ", "a (2)"]), min_size=1, max_size=6))
def test_created_names_are_distinct(wanted: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        registry = Registry(Path(folder) / "registry.sqlite3")
        runs = [_new_run(registry, name) for name in wanted]
        assert len({run.name for run in runs}) == len(runs)
        for run in runs:
            assert registry.find_run_by_name(run.name) == run


def test_rename_run(registry: Registry) -> None:
    run = _new_run(registry, "old")
    other = _new_run(registry, "other")
    assert registry.rename_run(run.id, " new ").name == "new"
    assert registry.rename_run(run.id, "new").name == "new"
    with pytest.raises(InputError, match="'other' is taken"):
        registry.rename_run(run.id, "other")
    with pytest.raises(InputError, match="new_name is empty"):
        registry.rename_run(run.id, "")
    assert registry.get_run(other.id).name == "other"
    assert registry.get_run(run.id).name == "new"


def test_delete_run_removes_epochs_and_returns_run(registry: Registry) -> None:
    run = _new_run(registry)
    kept = _new_run(registry, "kept")
    run = registry.update_run(run.id, model_path="models/baseline.keras")
    registry.add_epoch(run.id, 0, {"loss": 1.0})
    registry.add_epoch(kept.id, 0, {"loss": 2.0})
    assert registry.delete_run(run.id) == run
    with pytest.raises(InputError):
        registry.get_run(run.id)
    with sqlite3.connect(registry.path) as connection:
        left = connection.execute("SELECT run_id FROM epochs").fetchall()
    connection.close()
    assert left == [(kept.id,)]
    assert registry.list_runs() == [kept]


def test_update_run(registry: Registry) -> None:
    run = _new_run(registry)
    updated = registry.update_run(
        run.id,
        model_path=Path("models/run.keras"),
        card_path="models/run.json",
        best_epoch=4,
        final_metrics={"val_dice": 0.8},
    )
    assert (updated.model_path, updated.card_path) == ("models/run.keras", "models/run.json")
    assert (updated.best_epoch, updated.final_metrics) == (4, {"val_dice": 0.8})
    assert registry.get_run(run.id) == updated
    with pytest.raises(InputError, match="cannot update status"):
        registry.update_run(run.id, status="finished")


# -- epochs ------------------------------------------------------------------------------


def test_epochs_upsert_and_ordering(registry: Registry) -> None:
    run = _new_run(registry)
    for epoch in (3, 1, 2):
        registry.add_epoch(run.id, epoch, {"loss": float(epoch), "val_dice": 0.1 * epoch})
    registry.add_epoch(run.id, 1, {"loss": 0.5, "epoch": 99})
    rows = registry.epochs(run.id)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert rows[0] == {"epoch": 1, "loss": 0.5}
    assert rows[2] == {"epoch": 3, "loss": 3.0, "val_dice": pytest.approx(0.3)}
    assert registry.epochs(run.id + 1) == []


def test_epoch_metrics_accept_numpy_numbers(registry: Registry) -> None:
    numpy = pytest.importorskip("numpy")
    run = _new_run(registry)
    registry.add_epoch(run.id, numpy.int64(0), {"dice": numpy.float32(0.5), "lr": numpy.array(1.0)})
    assert registry.epochs(run.id) == [{"epoch": 0, "dice": 0.5, "lr": 1.0}]


def test_add_epoch_rejects_unknown_run_and_negative_epoch(registry: Registry) -> None:
    run = _new_run(registry)
    with pytest.raises(InputError, match="no run with id 42"):
        registry.add_epoch(42, 0, {"loss": 1.0})
    with pytest.raises(InputError, match="epoch must be >= 0"):
        registry.add_epoch(run.id, -1, {"loss": 1.0})
    assert registry.epochs(run.id) == []


# -- statuses ----------------------------------------------------------------------------


def test_status_transitions_set_timestamps(registry: Registry) -> None:
    run = _new_run(registry)
    assert (run.started_at, run.finished_at) == (None, None)
    running = registry.set_status(run.id, "running", pid=os.getpid())
    assert running.pid == os.getpid() and running.finished_at is None
    assert _utc(running.started_at) >= _utc(run.created_at)
    finished = registry.set_status(run.id, "finished", message="done")
    assert (finished.status, finished.message, finished.pid) == ("finished", "done", os.getpid())
    assert finished.started_at == running.started_at
    assert _utc(finished.finished_at) >= _utc(finished.started_at)
    resumed = registry.set_status(run.id, "running")
    assert resumed.finished_at is None and resumed.message is None
    stopped = registry.set_status(run.id, "stopped", message="stopped by user")
    assert stopped.finished_at is not None and stopped.message == "stopped by user"
    with pytest.raises(InputError, match="status must be one of"):
        registry.set_status(run.id, "done")
    assert registry.get_run(run.id) == stopped


def test_mark_dead_runs(registry: Registry) -> None:
    dead_pid = _dead_pid()
    dead = registry.set_status(_new_run(registry, "dead").id, "running", pid=dead_pid)
    alive = registry.set_status(_new_run(registry, "alive").id, "running", pid=os.getpid())
    no_pid = _new_run(registry, "no pid")
    finished = registry.set_status(_new_run(registry, "finished").id, "finished", pid=dead_pid)
    marked = registry.mark_dead_runs()
    assert sorted(run.id for run in marked) == sorted([dead.id, no_pid.id])
    dead = registry.get_run(dead.id)
    assert dead.status == "failed" and dead.finished_at is not None
    assert dead.message == f"training process ended unexpectedly (pid {dead_pid})"
    assert registry.get_run(no_pid.id).status == "failed"
    assert registry.get_run(alive.id) == alive
    assert registry.get_run(finished.id) == finished
    assert registry.mark_dead_runs() == []


def test_mark_dead_runs_uses_given_checker(registry: Registry) -> None:
    run = registry.set_status(_new_run(registry).id, "running", pid=os.getpid())
    asked: list[int] = []
    marked = registry.mark_dead_runs(is_alive=lambda pid: asked.append(pid) or False)
    assert asked == [os.getpid()]
    assert [each.id for each in marked] == [run.id]


# -- model cards and the active model ----------------------------------------------------


def test_register_model_card_is_idempotent(registry: Registry, tmp_path: Path) -> None:
    model_path = tmp_path / "models" / "shipped.keras"
    run = registry.register_model_card(CARD, model_path, tmp_path / "models" / "shipped.json")
    assert (run.name, run.status, run.architecture) == ("shipped unet", "finished", "unet")
    assert run.params == CARD["params"] and run.final_metrics == CARD["final_metrics"]
    assert run.best_epoch == 2 and run.model_path == str(model_path)
    assert run.created_at == "2024-05-01T12:30:00+00:00"
    assert [row["epoch"] for row in registry.epochs(run.id)] == [0, 1, 2]
    assert registry.epochs(run.id)[2] == {"epoch": 2, "loss": 0.3, "val_dice": 0.7}
    again = registry.register_model_card(CARD, str(model_path), None, name="other name")
    assert again == run
    assert registry.list_runs() == [run]


def test_register_model_card_rejects_bad_history(registry: Registry) -> None:
    card = {**CARD, "history": [{"loss": 0.5}]}
    with pytest.raises(InputError, match=r"card.json: history\[0\] has no 'epoch'"):
        registry.register_model_card(card, "models/bad.keras", "models/card.json")
    assert registry.list_runs() == []


def test_active_model_set_get_and_cleared_on_delete(registry: Registry) -> None:
    assert registry.active_model() is None
    first = _new_run(registry, "first")
    second = _new_run(registry, "second")
    registry.set_active_model(first.id)
    assert registry.active_model() == first
    registry.set_active_model(second.id)
    assert registry.active_model() == second
    registry.set_active_model(None)
    assert registry.active_model() is None
    registry.set_active_model(first.id)
    registry.delete_run(second.id)
    assert registry.active_model() == first
    registry.delete_run(first.id)
    assert registry.active_model() is None
    registry.set_active_model(_new_run(registry, "latest").id)
    registry.delete_run(registry.active_model().id)
    reused = _new_run(registry, "reuses the deleted id")
    assert registry.active_model() is None, f"run {reused.id} became active"
    with pytest.raises(InputError, match=f"no run with id {reused.id + 100}"):
        registry.set_active_model(reused.id + 100)


# -- concurrency -------------------------------------------------------------------------


def test_process_writes_while_test_reads(registry: Registry, monkeypatch) -> None:
    run = _new_run(registry)
    # A spawned child re-runs the parent's __main__ file; after an AppTest that is a
    # Streamlit script that only runs inside AppTest, so the child gets a bare __main__.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    context = multiprocessing.get_context("spawn")
    writer = context.Process(target=_write_epochs, args=(str(registry.path), run.id, 200))
    writer.start()
    deadline, seen, reads = time.monotonic() + 120, 0, 0
    try:
        while writer.is_alive() and time.monotonic() < deadline:
            rows = registry.epochs(run.id)
            assert [row["epoch"] for row in rows] == list(range(len(rows)))
            assert len(rows) >= seen
            seen, reads = len(rows), reads + 1
    finally:
        writer.join(timeout=30)
        if writer.is_alive():
            writer.terminate()
    assert writer.exitcode == 0, "writer process failed (see its traceback above)"
    assert reads > 0
    assert len(registry.epochs(run.id)) == 200


def test_a_card_trained_on_several_folders_registers(registry: Registry, tmp_path) -> None:
    # The default model's card names two dataset folders (train --data A B).
    model = tmp_path / "model.keras"
    model.write_bytes(b"not read here")
    card = {"name": "two sets", "dataset": ["data/dsb2018/stage1_train", "data/monuseg/train"]}
    run = registry.register_model_card(card, model, None)
    assert run.dataset == os.pathsep.join(card["dataset"])
