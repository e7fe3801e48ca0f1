"""Tests of the data folder and atomic writes (``nuclei_core.storage``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nuclei_core import locations, storage
from nuclei_core.errors import InputTypeError, StorageError


def test_data_folder_from_env_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(storage.DATA_DIR_ENV, str(tmp_path / "a" / "b"))
    assert storage.ensure_dir(locations.data_folder()) == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()
    monkeypatch.delenv(storage.DATA_DIR_ENV)
    monkeypatch.setattr(locations, "PROJECT_ROOT", tmp_path / "project")
    assert locations.data_folder() == tmp_path / "project" / ".nuclei_data"
    assert storage.ensure_dir(locations.data_folder()).is_dir()


def test_data_folder_that_cannot_be_created(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv(storage.DATA_DIR_ENV, str(tmp_path / "file" / "data"))
    with pytest.raises(StorageError, match="file"):
        storage.ensure_dir(locations.data_folder())


def test_atomic_writes_round_trip(tmp_path: Path) -> None:
    storage.atomic_write_bytes(tmp_path / "data.bin", b"\x00\x01")
    storage.atomic_write_text(tmp_path / "table.csv", "label,área\n1,2\n")
    storage.atomic_write_json(tmp_path / "card.json", {"z": 1, "a": [1.5, None]})
    assert (tmp_path / "data.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "table.csv").read_text(encoding="utf-8") == "label,área\n1,2\n"
    assert (tmp_path / "card.json").read_text() == (
        '{\n  "z": 1,\n  "a": [\n    1.5,\n    null\n  ]\n}\n'
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "card.json",
        "data.bin",
        "table.csv",
    ]


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_atomic_write_json_keeps_old_file_when_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "card.json"
    target.write_text('{"old": true}')

    def disk_full(*arguments, **keywords):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, disk_full)
    with pytest.raises(StorageError, match=r"cannot write .*card\.json: No space left on device"):
        storage.atomic_write_json(target, {"new": True})
    monkeypatch.undo()
    assert target.read_text() == '{"old": true}'
    assert [path.name for path in tmp_path.iterdir()] == ["card.json"]


def test_atomic_write_json_rejects_unserialisable(tmp_path: Path) -> None:
    with pytest.raises(InputTypeError, match=r"card\.json"):
        storage.atomic_write_json(tmp_path / "card.json", {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_on_success_and_cleans_up_on_error(tmp_path: Path) -> None:
    target = tmp_path / "model.weights.h5"
    target.write_bytes(b"old")
    with storage.atomic_path(target) as temp:
        assert temp.parent == tmp_path and temp.name.endswith(".weights.h5")
        temp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    with (
        pytest.raises(RuntimeError, match="training crashed"),
        storage.atomic_path(target) as temp,
    ):
        temp.write_bytes(b"half")
        raise RuntimeError("training crashed")
    with (
        pytest.raises(StorageError, match=r"model\.weights\.h5: No space left on device"),
        storage.atomic_path(target),
    ):
        raise OSError(28, "No space left on device")
    assert target.read_bytes() == b"new"
    assert [path.name for path in tmp_path.iterdir()] == ["model.weights.h5"]
