"""Tests of nuclei_core.registry.catalogue: the bundled default model, models with a file, importing
and deleting model files."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from nuclei_core.errors import InputTypeError, ModelLoadError
from nuclei_core.registry import Registry, catalogue


@pytest.fixture
def data_folder(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv("NUCLEI_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def registry(data_folder):
    return Registry(data_folder / "registry.sqlite3")


def test_bootstrap_registers_the_default_model_from_its_card_once(registry, tmp_path):
    model = tmp_path / "bundled" / "default.keras"
    model.parent.mkdir()
    model.write_bytes(b"not loaded here")
    card = {"name": "shipped", "architecture": "unet", "final_metrics": {"val_dice": 0.8}}
    model.with_suffix(".json").write_text(json.dumps(card))
    first = catalogue.bootstrap_registry(registry, model)
    again = catalogue.bootstrap_registry(registry, model)
    assert first == again and [run.name for run in registry.list_runs()] == ["shipped"]
    assert registry.active_model().id == first.id
    assert first.card_path == str(model.with_suffix(".json").resolve())


def test_bootstrap_keeps_the_active_model_and_ignores_a_missing_file(registry, tmp_path):
    other = tmp_path / "other.keras"
    other.write_bytes(b"x")
    chosen = registry.register_model_card({"name": "chosen"}, other, None)
    registry.set_active_model(chosen.id)
    model = tmp_path / "default.keras"
    assert catalogue.bootstrap_registry(registry, model) is None
    model.write_bytes(b"x")
    catalogue.bootstrap_registry(registry, model)
    assert registry.active_model().id == chosen.id


def test_bootstrap_uses_the_configured_default_model(registry, tmp_path, monkeypatch):
    model = tmp_path / "configured.keras"
    model.write_bytes(b"x")
    monkeypatch.setenv("NUCLEI_DEFAULT_MODEL", str(model))
    assert catalogue.bootstrap_registry(registry).name == "configured"


def test_model_runs_are_the_finished_runs_with_a_file(registry, tmp_path):
    present = tmp_path / "present.keras"
    present.write_bytes(b"x")
    with_file = registry.register_model_card({"name": "with file"}, present, None)
    registry.register_model_card({"name": "file gone"}, tmp_path / "gone.keras", None)
    running = registry.create_run("running", "unet", {}, "data", status="running")
    registry.update_run(running.id, model_path=str(present))
    assert [run.id for run in catalogue.model_runs(registry)] == [with_file.id]


def test_model_file_key_follows_the_file(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"x")
    run = SimpleNamespace(name="m", model_path=str(path))
    key = catalogue.model_file_key(run)
    assert key[0] == str(path)
    path.unlink()
    with pytest.raises(ModelLoadError, match=r"model 'm': its file .*model\.keras is missing"):
        catalogue.model_file_key(run)


def test_validation_metrics_keeps_finite_validation_values_in_order():
    run = SimpleNamespace(
        final_metrics={"val_loss": 0.3, "val_iou": math.nan, "val_dice": 1, "dice": 0.9}
    )
    assert list(catalogue.validation_metrics(run).items()) == [("dice", 1.0), ("loss", 0.3)]
    assert catalogue.validation_metrics(SimpleNamespace(final_metrics=None)) == {}


def test_latest_training_run_is_the_last_started(registry, tmp_path):
    assert catalogue.latest_training_run(registry) is None
    first = registry.create_run("first", "unet", {}, "data", status="running")
    second = registry.create_run("second", "unet", {}, "data", status="queued")
    registry.register_model_card({"name": "uploaded"}, tmp_path / "u.keras", None)
    assert catalogue.latest_training_run(registry).id == first.id
    registry.set_status(second.id, "running")
    assert catalogue.latest_training_run(registry).id == second.id


@pytest.mark.parametrize(
    "data, name, error, message",
    [
        ("text", "m.keras", InputTypeError, "model data must be bytes, got str"),
        (b"x", "dir/weights.h5", ModelLoadError, "weights.h5: model files must end in .keras"),
        (b"", "empty.keras", ModelLoadError, "empty.keras: file is empty"),
    ],
)
def test_import_model_refusals(data, name, error, message, registry):
    with pytest.raises(error) as caught:
        catalogue.import_model(data, name, registry)
    assert str(caught.value) == message
    assert registry.list_runs() == []


def test_import_model_saves_registers_and_names_the_model(registry, tiny_model_file, data_folder):
    data = tiny_model_file.read_bytes()
    run = catalogue.import_model(data, "My model (v2).keras", registry, name=" mine ")
    assert run.name == "mine" and run.architecture == "unet"
    saved = data_folder / "models"
    assert [path.suffix for path in sorted(saved.iterdir())] == [".json", ".keras"]
    assert run.model_path.startswith(str(saved / "My-model-v2-"))
    assert catalogue.import_model(data, "My model (v2).keras", registry).id == run.id


def test_import_model_removes_a_refused_file_and_names_the_upload(registry, data_folder):
    with pytest.raises(ModelLoadError) as caught:
        catalogue.import_model(b"not a zip", "broken.keras", registry)
    assert str(caught.value).startswith("broken.keras: ")
    assert list((data_folder / "models").iterdir()) == []


def test_delete_model_deletes_only_files_in_the_data_folder(registry, data_folder, tmp_path):
    inside = data_folder / "models" / "inside.keras"
    inside.parent.mkdir(parents=True)
    inside.write_bytes(b"x")
    inside.with_suffix(".json").write_text("{}")
    export = data_folder / "models" / "inside.openvino" / "0123"
    export.mkdir(parents=True)
    (export / "model.xml").write_text("<net/>")
    outside = tmp_path / "outside.keras"
    outside.write_bytes(b"x")
    kept = registry.register_model_card({}, outside, None)
    removed = registry.register_model_card({}, inside, inside.with_suffix(".json"))
    assert catalogue.delete_model(registry, kept.id) == [] and outside.is_file()
    assert catalogue.delete_model(registry, removed.id) == [
        inside,
        inside.with_suffix(".json"),
        export.parent,
    ]
    assert not inside.exists() and not export.parent.exists() and registry.list_runs() == []


def test_the_bundled_default_model_cannot_be_deleted(registry, tmp_path, monkeypatch):
    from nuclei_core.errors import InputError

    bundled = tmp_path / "default.keras"
    bundled.write_bytes(b"model")
    monkeypatch.setenv("NUCLEI_DEFAULT_MODEL", str(bundled))
    run = catalogue.bootstrap_registry(registry, bundled)
    with pytest.raises(InputError, match="bundled default model and cannot be deleted"):
        catalogue.delete_model(registry, run.id)
    assert registry.get_run(run.id) is not None and bundled.is_file()
