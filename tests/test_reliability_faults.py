"""Reliability under faults (issue 5): killed processes, racing sessions, full or read-only disks.

* a training worker killed with SIGKILL mid-epoch leaves the active model, the best
  checkpoint and the run's epochs as they were (``tests/jobs/test_jobs.py`` covers the
  rest: run marked failed, lock freed, a new run starts);
* two app sessions asking to train at once get exactly one job, the other is told;
* a crash between writing and renaming leaves the previous model, card, CSV or
  PNG valid; a process killed while writing leaves the old file or the new one,
  never half of one; a registry writer killed mid-transaction leaves a sound database;
* a full disk or a read-only data folder gives a one-line StorageError and the
  files saved before stay intact, in the engine, the CLI, training and the app.

See ``tests/test_reliability.py`` for ``record`` and ``tests/reliability_report.py``.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from PIL import Image
from support import APP, ROOT, app_page, is_zombie, record, sha256, wait_for

from nuclei_core import storage
from nuclei_core.errors import StorageError
from nuclei_core.registry import Registry, cards
from nuclei_core.segmentation import measure

DATA_ENV = "NUCLEI_DATA_DIR"
APP_TIMEOUT = 90


DISK_FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
READ_ONLY = OSError(errno.EROFS, os.strerror(errno.EROFS))


def snapshot(folder: Path) -> dict[str, str]:
    """Hash of every file under ``folder`` (relative path -> sha256)."""
    return {
        str(path.relative_to(folder)): sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def fail_with(error: OSError):
    def failing(*args, **kwargs):
        raise error

    return failing


def nuclei_image(size=(64, 64), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: size[0], : size[1]]
    image = rng.normal(20, 4, size)
    labels = np.zeros(size, np.uint16)
    for label in range(1, 5):
        cy, cx = rng.uniform(10, size[0] - 10), rng.uniform(10, size[1] - 10)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= 30
        image[inside] = 200
        labels[inside] = label
    return np.clip(image, 0, 255).astype(np.uint8), labels


def write_dataset(root: Path, count: int, size=(64, 64)) -> Path:
    (root / "inputs").mkdir(parents=True)
    (root / "masks").mkdir()
    for index in range(count):
        image, labels = nuclei_image(size, seed=index)
        Image.fromarray(image).save(root / "inputs" / f"img{index:02d}.png")
        Image.fromarray(labels).save(root / "masks" / f"img{index:02d}.png")
    return root


def load_model(path):
    from nuclei_core.network.model import load_model as load

    return load(path)


# --------------------------------------------------------------------------- app sessions and jobs


def texts(elements) -> list[str]:
    return [str(element.value) for element in elements]


def train_page(data: Path, patch):
    """The Train page with its form filled for a tiny, endless training run."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=APP_TIMEOUT)
    at.run()
    at.switch_page(app_page("train")).run()
    assert not at.exception, at.exception
    at.text_input(key="train_data").set_value(str(data))
    at.text_input(key="train_name").set_value("endless")
    for key, value in {
        "train_epochs": 1000,
        "train_batch_size": 2,
        "train_crop": 32,
        "train_patience": 200,
        "train_val_fraction": 0.25,
        "train_depth": 2,
        "train_base_filters": 4,
    }.items():
        at.number_input(key=key).set_value(value)
    return at


@pytest.fixture(scope="module")
def app_job(tmp_path_factory, tiny_model_file):
    """Two app sessions on the Train page; the first starts a training job, the second
    clicks "Start training" in the same moment (it passed the "is a job running?" check
    before the first job was registered), so its job waits in the server's queue; it is
    cancelled from the page. The first job runs until a test kills it."""
    if not Path(APP).is_file():
        pytest.skip("app.py is not there")
    import streamlit as st

    from nuclei_core import jobs

    folder = tmp_path_factory.mktemp("app_job")
    data = write_dataset(folder / "dataset", count=20)
    scenario = {"folder": folder / "data", "data": data, "data_files": snapshot(data)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DATA_ENV, str(folder / "data"))
        patch.setenv("NUCLEI_DEFAULT_MODEL", str(folder / "no-default.keras"))
        patch.setenv("NUCLEI_SAMPLES_DIR", str(folder / "no-samples"))
        st.cache_resource.clear()
        registry = Registry(folder / "data" / "registry.sqlite3")
        active = registry.register_model_card({"name": "active"}, tiny_model_file, None)
        registry.set_active_model(active.id)
        scenario.update(registry=registry, active=active, active_hash=sha256(tiny_model_file))
        try:
            first, second = train_page(data, patch), train_page(data, patch)
            next(iter(first.get("form_submit_button"))).click().run()
            assert not first.exception and not first.error, texts(first.error)
            real_running_job = jobs.running_job
            patch.setattr(jobs, "running_job", lambda registry=None: None)
            next(iter(second.get("form_submit_button"))).click().run()
            patch.setattr(jobs, "running_job", real_running_job)
            scenario.update(second_errors=texts(second.error), second_said=texts(second.success))
            second.run()  # a later rerun of the second session shows the running job
            scenario["second_after"] = [str(element.value) for element in second.subheader]
            scenario["second_waiting"] = texts(second.caption)
            scenario["second_exception"] = second.exception
            # the second job waits for the first: take it out, or it starts when that ends
            for button in second.button:
                if button.key.startswith("train_cancel_"):
                    button.click().run()
            scenario["second_cancelled"] = texts(second.success)
            yield scenario
        finally:
            for run in registry.list_runs(status=("queued", "running")):
                jobs.kill_training(run.id, timeout=5, registry=registry)
            st.cache_resource.clear()


@pytest.mark.slow
def test_two_app_sessions_asking_to_train_at_once_start_exactly_one_job(app_job):
    registry = app_job["registry"]
    runs = [run for run in registry.list_runs() if run.name != "active"]
    assert len(runs) == 1 and runs[0].name == "endless" and runs[0].is_active
    assert not app_job["second_exception"] and not app_job["second_errors"]
    (said,) = app_job["second_said"]  # the second job waits its turn instead of starting
    assert said.startswith("endless waits for its turn (place 1)"), said
    assert "Training endless" in app_job["second_after"]
    assert "Waiting for their turn on this server: 1" in app_job["second_waiting"]
    assert "endless left the queue; it will not start." in app_job["second_cancelled"]
    record("fault-two-sessions", said, channel="app")


@pytest.mark.slow
def test_sigkill_mid_epoch_keeps_active_model_best_checkpoint_and_epochs(app_job, monkeypatch):
    from nuclei_core import jobs

    monkeypatch.setenv(DATA_ENV, str(app_job["folder"]))
    registry = app_job["registry"]
    run = next(run for run in registry.list_runs() if run.name == "endless")
    folder = jobs.run_dir(run.id)
    log = folder / jobs.LOG_FILE_NAME

    def new_epoch_recorded():
        assert registry.get_run(run.id).is_active, log.read_text(errors="replace")[-3000:]
        return len(registry.epochs(run.id)) >= 2

    # An epoch reaches the registry after its checkpoints and state.json are saved, so
    # right after a new epoch appears the worker is busy with the next one: kill it then.
    wait_for(new_epoch_recorded, "two epochs of the job", log)
    done = len(registry.epochs(run.id))
    wait_for(lambda: len(registry.epochs(run.id)) > done, "the next epoch", log)
    pid = registry.get_run(run.id).pid
    os.kill(pid, signal.SIGKILL)
    epochs_before = registry.epochs(run.id)
    wait_for(lambda: not psutil.pid_exists(pid) or is_zombie(pid), f"pid {pid} to end")

    assert jobs.running_job(registry) is None
    killed = registry.get_run(run.id)
    assert killed.status == "failed" and str(pid) in killed.message
    assert registry.epochs(run.id) == epochs_before  # every finished epoch kept
    active = registry.active_model()
    assert active.id == app_job["active"].id
    assert sha256(active.model_path) == app_job["active_hash"]
    load_model(active.model_path)
    best = load_model(folder / "checkpoint_best.keras")
    assert best.output_shape[-1] == 2
    state = json.loads((folder / "state.json").read_text())
    assert state["epoch"] >= 1 and state["best_epoch"] >= 1
    assert snapshot(app_job["data"]) == app_job["data_files"]  # the dataset is only read
    record(
        "fault-sigkill",
        f"run {killed.status}: {killed.message}; killed during epoch "
        f"{len(epochs_before) + 1}, epochs 1-{len(epochs_before)} kept",
        kept=3 + len(app_job["data_files"]),
    )


def test_read_only_data_folder_refuses_a_training_job_before_it_starts(
    tmp_path, monkeypatch, tiny_model_file
):
    from nuclei_core import jobs
    from nuclei_core.training import TrainConfig

    data = write_dataset(tmp_path / "dataset", count=6)
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv(DATA_ENV, str(folder))
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: False if str(path).startswith(str(folder)) else real_access(path, mode),
    )
    config = TrainConfig(data=str(data), out="", epochs=2, batch_size=2, crop=32, depth=2)
    children = {child.pid for child in psutil.Process().children()}
    with pytest.raises(StorageError, match=rf"folder {folder} is not writable") as caught:
        jobs.start_training(config)
    assert {child.pid for child in psutil.Process().children()} <= children
    assert list(folder.iterdir()) == []
    record("fault-read-only-data-folder", str(caught.value).replace(str(tmp_path) + os.sep, ""))


def test_app_with_a_read_only_data_folder_says_so_and_does_not_crash(tmp_path, monkeypatch):
    if not Path(APP).is_file():
        pytest.skip("app.py is not there")
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv(DATA_ENV, str(folder))
    monkeypatch.setenv("NUCLEI_DEFAULT_MODEL", str(tmp_path / "no-default.keras"))
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: False if str(path).startswith(str(folder)) else real_access(path, mode),
    )
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=APP_TIMEOUT)
    at.run()
    st.cache_resource.clear()
    assert not at.exception, at.exception
    errors = texts(at.error)
    assert len(errors) == 1 and f"folder {folder} is not writable" in errors[0], errors
    record("fault-read-only-app", errors[0].replace(str(tmp_path) + os.sep, ""), channel="app")


# --------------------------------------------------------------------------- atomic writes


def test_crash_between_model_write_and_rename_keeps_the_old_model(tiny_model_file, tmp_path):
    from nuclei_core.network.model import ModelConfig, build_unet, save_model

    target = tmp_path / "model.keras"
    target.write_bytes(tiny_model_file.read_bytes())
    before = sha256(target)
    bigger = build_unet(ModelConfig(depth=2, base_filters=8))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "replace", fail_with(OSError(errno.EIO, "crash before the rename")))
        with pytest.raises(StorageError, match=r"cannot write .*model\.keras: crash") as caught:
            save_model(bigger, target)
    assert sha256(target) == before and load_model(target).count_params() > 0
    assert [path.name for path in tmp_path.iterdir()] == ["model.keras"]  # no temporary left
    record("fault-atomic-model", str(caught.value).replace(str(tmp_path) + os.sep, ""), kept=1)


@pytest.mark.parametrize("writer", ["card", "csv", "png"])
def test_crash_between_write_and_rename_keeps_the_old_file(writer, tmp_path, monkeypatch):
    if writer == "card":
        target = tmp_path / "model.json"
        target.write_text('{"name": "old"}')

        def write():
            cards.write_card(tmp_path / "model.keras", {"name": "new"})

    elif writer == "csv":
        target = tmp_path / "nuclei.csv"
        target.write_text("label,area\n1,52\n")

        def write():
            measure.write_measurements_csv(pd.DataFrame({"label": [1], "area": [9]}), target)

    else:
        target = tmp_path / "cells_mask.png"
        target.write_bytes(b"\x89PNG old")

        def write():
            storage.atomic_write_bytes(target, b"\x89PNG new" * 1000)

    before = target.read_bytes()
    monkeypatch.setattr(os, "replace", fail_with(OSError(errno.EIO, "crash before the rename")))
    with pytest.raises(StorageError, match="crash before the rename") as caught:
        write()
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir()] == [target.name]
    record(f"fault-atomic-{writer}", str(caught.value).replace(str(tmp_path) + os.sep, ""), kept=1)


KILLED_WRITER = """
import sys
from pathlib import Path
from nuclei_core.storage import atomic_path

target = Path(sys.argv[1])
chunk = 1 << 20
for round_number in range(10_000):
    fill = b"AB"[round_number % 2 : round_number % 2 + 1]
    with atomic_path(target) as temporary:
        with open(temporary, "wb") as handle:
            for _ in range(24):
                handle.write(fill * chunk)
    if round_number == 0:
        print("first", flush=True)
"""


def test_process_killed_while_writing_leaves_a_whole_old_or_new_file(tmp_path):
    target = tmp_path / "model.keras"
    whole = {b"A" * (24 << 20), b"B" * (24 << 20)}
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    kills = 0
    try:
        assert writer.stdout.readline().strip() == b"first"
        for delay in (0.05, 0.13, 0.31):
            time.sleep(delay)
            assert target.read_bytes() in whole  # a reader never sees half a file
        writer.send_signal(signal.SIGKILL)
        kills += 1
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert target.read_bytes() in whole
    leftovers = [path.name for path in tmp_path.iterdir() if path != target]
    assert all(name.startswith(".model.") for name in leftovers)  # at most a temporary file
    seen = "the file is whole (old or new content); a temporary file may remain"
    record("fault-killed-writer", seen, kept=1)


REGISTRY_WRITER = """
import sys
from nuclei_core.registry import Registry

registry = Registry(sys.argv[1])
run = registry.create_run("writer", "unet", {}, "data", status="running")
for epoch in range(1, 100_000):
    registry.add_epoch(run.id, epoch, {"loss": 1.0 / epoch, "history": list(range(200))})
    if epoch == 5:
        print(run.id, flush=True)
"""


def test_registry_writer_killed_mid_transaction_leaves_a_sound_database(tmp_path):
    path = tmp_path / "registry.sqlite3"
    registry = Registry(path)
    keep = registry.create_run("kept", "unet", {"epochs": 3}, "data", status="finished")
    registry.add_epoch(keep.id, 1, {"loss": 0.5})
    registry.set_active_model(keep.id)
    writer = subprocess.Popen(
        [sys.executable, "-c", REGISTRY_WRITER, str(path)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        run_id = int(writer.stdout.readline())
        seen = 0
        for _ in range(20):  # readers meanwhile see whole, growing histories
            rows = registry.epochs(run_id)
            assert [row["epoch"] for row in rows] == list(range(1, len(rows) + 1))
            assert len(rows) >= seen
            seen = len(rows)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = registry.epochs(run_id)
    assert len(rows) >= seen and [row["epoch"] for row in rows] == list(range(1, len(rows) + 1))
    assert registry.active_model().id == keep.id and registry.epochs(keep.id)[0]["loss"] == 0.5
    assert registry.mark_dead_runs() and registry.get_run(run_id).status == "failed"
    record(
        "fault-registry-killed-writer",
        f"integrity_check ok; {len(rows)} committed epochs kept; run marked failed",
        kept=1,
    )


# --------------------------------------------------------------------------- disk full, read-only


@pytest.mark.parametrize(
    "case, target, error",
    [
        pytest.param(*row, id=row[0])
        for row in [
            ("fault-disk-full-model", "fsync", DISK_FULL),
            ("fault-read-only-model", "open", READ_ONLY),
        ]
    ],
)
def test_saving_a_model_on_a_full_or_read_only_disk(case, target, error, tiny_model_file, tmp_path):
    from nuclei_core.network.model import ModelConfig, build_unet, save_model

    saved = tmp_path / "model.keras"
    saved.write_bytes(tiny_model_file.read_bytes())
    before = sha256(saved)
    model = build_unet(ModelConfig(depth=2, base_filters=4))
    with pytest.MonkeyPatch.context() as patch:
        if target == "open":  # the temporary file cannot even be created
            import tempfile

            patch.setattr(tempfile, "NamedTemporaryFile", fail_with(error))
        else:
            patch.setattr(os, target, fail_with(error))
        with pytest.raises(StorageError) as caught:
            save_model(model, saved)
    message = str(caught.value)
    assert message == f"cannot write {saved}: {error.strerror}"
    assert sha256(saved) == before and load_model(saved) is not None
    assert [path.name for path in tmp_path.iterdir()] == ["model.keras"]
    record(case, message.replace(str(tmp_path) + os.sep, ""), kept=1)


def test_csv_on_a_full_disk_keeps_the_previous_table(tmp_path, monkeypatch):
    target = tmp_path / "nuclei.csv"
    target.write_text("label,area\n1,52\n")
    monkeypatch.setattr(os, "fsync", fail_with(DISK_FULL))
    with pytest.raises(StorageError, match="No space left on device") as caught:
        measure.write_measurements_csv(pd.DataFrame({"label": [1], "area": [9]}), target)
    monkeypatch.undo()
    assert target.read_text() == "label,area\n1,52\n"
    assert [path.name for path in tmp_path.iterdir()] == ["nuclei.csv"]
    record("fault-disk-full-csv", str(caught.value).replace(str(tmp_path) + os.sep, ""), kept=1)


def test_cli_predict_into_a_read_only_folder_names_each_file(
    tiny_model_file, tmp_path, monkeypatch, capsys
):
    from nuclei_core import cli

    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    out.mkdir()
    for index in range(2):
        Image.fromarray(nuclei_image(seed=index)[0]).save(images / f"cells{index}.png")
    (out / "cells0_mask.png").write_bytes(b"earlier result")
    before = snapshot(out)
    monkeypatch.setattr(os, "replace", fail_with(READ_ONLY))
    status = cli.main(["predict", str(images), "--out", str(out), "--model", str(tiny_model_file)])
    monkeypatch.undo()
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert status == 1 and "Traceback" not in stderr
    assert len(errors) == 2 and all("Read-only file system" in line for line in errors), stderr
    assert errors[0] == f"error: cannot write {out / 'cells0_mask.png'}: Read-only file system"
    assert snapshot(out) == before
    record(
        "fault-read-only-cli",
        errors[0].replace(str(tmp_path) + os.sep, ""),
        channel="cli",
        kept=len(before),
    )


@pytest.mark.slow
def test_disk_full_during_training_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from nuclei_core.training import TrainConfig, run

    data = write_dataset(tmp_path / "dataset", count=6, size=(48, 48))
    out = tmp_path / "run"
    config = TrainConfig(
        data=str(data),
        out=str(out),
        epochs=3,
        batch_size=2,
        crop=32,
        depth=2,
        base_filters=4,
        val_fraction=0.2,
        strategy="none",
    )

    class FullAfterFirstEpoch(run.TrainingListener):
        def on_epoch_end(self, epoch, logs):
            monkeypatch.setattr(os, "replace", fail_with(DISK_FULL))

    with pytest.raises(StorageError, match=r"No space left on device") as caught:
        run.train(config, listener=FullAfterFirstEpoch())
    monkeypatch.undo()
    message = str(caught.value)
    assert "\n" not in message and str(out) in message
    best = load_model(out / "checkpoint_best.keras")
    assert best.output_shape[-1] == 2
    state = json.loads((out / "state.json").read_text())
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert (out / "history.csv").read_text().count("\n") == 2
    record("fault-disk-full-training", message.replace(str(tmp_path) + os.sep, ""), kept=3)


def test_read_only_registry_folder_gives_a_storage_error(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(StorageError, match=rf"folder {folder} is not writable"):
        Registry(folder / "registry.sqlite3")
    monkeypatch.undo()
    assert list(folder.iterdir()) == []
