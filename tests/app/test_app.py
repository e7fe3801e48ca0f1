"""Tests of the Streamlit dashboard (`app.py`, `pages/`) with streamlit.testing.v1.AppTest.

Every test gets a fresh data folder (``NUCLEI_DATA_DIR`` = a temporary folder), no
bundled default model (``NUCLEI_DEFAULT_MODEL`` names a missing file) and its own
generated sample images (``NUCLEI_SAMPLES_DIR``), so nothing depends on the files
shipped in ``models/`` or ``sample_images/``.  Tests that segment use an untrained
tiny U-Net registered as the active model: it finds arbitrary nuclei, which is all
the page logic needs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support import downloads_of, png_bytes, start_app, texts

from nuclei_core.network import runtime
from nuclei_core.network.model import load_model
from nuclei_core.registry import Registry
from nuclei_core.segmentation.segment import nuclei_from_probabilities
from ui import progress, wording

TIMEOUT = 60  # seconds per script run; importing TensorFlow is slow on a loaded machine


def start(page: str | None = None) -> object:
    return start_app(page, TIMEOUT)


@pytest.fixture
def samples(fresh_environment, flat_dataset_factory):
    """Four generated 64 x 64 sample images (flat layout) in ``NUCLEI_SAMPLES_DIR``."""
    return flat_dataset_factory(fresh_environment / "samples", n_images=4)


def labels_of(metrics) -> list[str]:
    return [metric.label for metric in metrics]


# --------------------------------------------------------------------------- every page


@pytest.mark.parametrize(
    "page",
    [
        None,
        "pages/segment.py",
        "pages/browse.py",
        "pages/train.py",
        "pages/curves.py",
    ],
)
def test_page_renders_on_a_fresh_data_folder(page, fresh_environment):
    at = start(page)
    assert not at.error, texts(at.error)
    sidebar = texts(at.sidebar.warning)
    assert "No model is available" in sidebar
    assert (fresh_environment / "data" / "registry.sqlite3").is_file()


def test_app_registers_the_bundled_default_model_once(
    fresh_environment, tiny_model_file, monkeypatch
):
    default = fresh_environment / "bundled" / "default.keras"
    default.parent.mkdir()
    default.write_bytes(tiny_model_file.read_bytes())
    card = {"name": "default", "architecture": "unet", "final_metrics": {"val_dice": 0.81}}
    default.with_suffix(".json").write_text(json.dumps(card))
    monkeypatch.setenv("NUCLEI_DEFAULT_MODEL", str(default))
    at = start()
    start()
    registry = Registry(fresh_environment / "data" / "registry.sqlite3")
    assert [run.name for run in registry.list_runs()] == ["default"]
    assert registry.active_model().name == "default"
    sidebar = texts(at.sidebar.markdown) + texts(at.sidebar.caption)
    assert "default" in sidebar and "Dice 0.810" in sidebar
    model = runtime.load_inference_model(default)  # what the app runs, said without loading
    assert f"Runs on {runtime.describe(model)}" in sidebar


def test_app_marks_a_dead_training_run_failed(registry):
    run = registry.create_run("crashed", "unet", {}, "data", status="running")
    registry.set_status(run.id, "running", pid=2**22 + 12345)
    start()
    assert registry.get_run(run.id).status == "failed"


# --------------------------------------------------------------------------- segment page


def upload_image(at, make_sample, seed=3):
    image, labels = make_sample((64, 64), n_nuclei=5, seed=seed)
    at.file_uploader(key="segment_upload").upload("cells.png", png_bytes(image), "image/png")
    at.run()
    assert not at.exception, at.exception
    return image, labels


def test_segment_upload_gives_a_count_a_table_and_downloads(active_model, make_sample):
    at = start("pages/segment.py")
    upload_image(at, make_sample)
    assert not at.error, texts(at.error)
    count = next(metric for metric in at.metric if metric.label == "Nuclei found")
    table = at.dataframe[0].value
    assert {"label", "area_px", "centroid_x_px", "mean_intensity"} <= set(table.columns)
    assert len(table) == int(count.value)
    assert len(at.get("image")) >= 1
    downloads = downloads_of(at)
    assert {"Mask (PNG)", "Labels (16-bit PNG)", "Labels (TIFF)", "Measurements (CSV)"} <= set(
        downloads
    )
    # the count is the number of nuclei in the label image the page offers, numbered 1..N
    labels = np.asarray(Image.open(io.BytesIO(downloads["Labels (16-bit PNG)"][1])))
    found = np.unique(labels[labels > 0])
    assert found.tolist() == list(range(1, int(count.value) + 1))


def test_threshold_change_reuses_the_network_output(active_model, make_sample):
    at = start("pages/segment.py")
    upload_image(at, make_sample)
    first = at.session_state["segment_probabilities"]
    at.slider(key="segment_threshold").set_value(0.3).run()
    at.number_input(key="segment_min_size").set_value(0).run()
    assert not at.exception and not at.error
    assert at.session_state["segment_probabilities"][1] is first[1]
    at.checkbox(key="segment_tta").check().run()
    assert at.session_state["segment_probabilities"][0] != first[0]


def diameter_captions(at) -> list[str]:
    return [caption.value for caption in at.caption if "nucleus diameter" in caption.value.lower()]


def test_the_nucleus_diameter_is_estimated_unless_given(registry, trained_run, make_sample):
    card = json.loads(trained_run.result.card_path.read_text())  # its training diameter
    run = registry.register_model_card(card, trained_run.result.model_path, None)
    registry.set_active_model(run.id)
    at = start("pages/segment.py")
    image, _ = make_sample((96, 96), n_nuclei=12, radius=(3, 4), seed=7)  # small nuclei
    at.file_uploader(key="segment_upload").upload("small.png", png_bytes(image), "image/png")
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    (estimated,) = diameter_captions(at)
    assert estimated.startswith("Estimated nucleus diameter: ") and "enlarged" in estimated
    at.number_input(key="segment_diameter").set_value(12.0).run()
    assert not at.exception and not at.error
    (given,) = diameter_captions(at)
    assert given.startswith("Nucleus diameter 12 px (given); the image was enlarged")


def test_the_segment_page_keeps_only_nuclei_as_sure_as_the_model_card_asks(
    registry, trained_run, make_sample, tmp_path
):
    model = tmp_path / "model.keras"
    shutil.copy(trained_run.result.model_path, model)
    card = json.loads(trained_run.result.card_path.read_text())
    card["postprocess"] = {"min_confidence": 0.999}
    (tmp_path / "model.json").write_text(json.dumps(card))
    registry.set_active_model(registry.register_model_card(card, model, None).id)
    at = start("pages/segment.py")
    upload_image(at, make_sample)
    assert not at.exception and not at.error, texts(at.error)
    assert "at least 99.9 % sure of are left out" in texts(at.caption)
    probabilities, options, _ = at.session_state["segment_probabilities"][1]
    assert options.min_confidence == 0.999
    labels, _ = nuclei_from_probabilities(probabilities, np.zeros(probabilities.shape[:2]), options)
    (found,) = [metric.value for metric in at.metric if metric.label == "Nuclei found"]
    assert int(found) == int(labels.max())


def test_sample_image_can_be_picked(active_model, samples):
    at = start("pages/segment.py")
    at.radio(key="segment_source").set_value("Use a sample image").run()
    assert not at.exception and not at.error, texts(at.error)
    assert any(metric.label == "Nuclei found" for metric in at.metric)
    assert "DSB score" in labels_of(at.metric)  # the sample's own ground truth is used
    at.selectbox(key="segment_sample").select_index(2).run()
    assert not at.exception and not at.error
    assert "img02.png" in texts(at.caption)


@pytest.mark.parametrize("form", ["label image", "binary mask", "zip of masks"])
def test_ground_truth_upload_gives_metrics(form, active_model, make_sample):
    at = start("pages/segment.py")
    _, labels = upload_image(at, make_sample)
    if form == "label image":
        truth, name = png_bytes(labels.astype(np.uint16)), "truth.png"
    elif form == "binary mask":
        truth, name = png_bytes(((labels > 0) * 255).astype(np.uint8)), "mask.png"
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for label in range(1, int(labels.max()) + 1):
                archive.writestr(
                    f"masks/{label}.png", png_bytes(((labels == label) * 255).astype("u1"))
                )
        truth, name = buffer.getvalue(), "masks.zip"
    at.file_uploader(key="segment_truth").upload(name, truth, "application/octet-stream")
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    shown = labels_of(at.metric)
    for label in ("Pixel accuracy", "Foreground IoU", "Dice", "F1 @ IoU 0.5", "DSB score"):
        assert label in shown
    assert "Count error" in shown
    at.radio(key="segment_compare_view").set_value("Slider").run()
    assert not at.exception and not at.error


def test_unreadable_upload_shows_an_error_and_the_page_stays_usable(active_model, make_sample):
    at = start("pages/segment.py")
    at.file_uploader(key="segment_upload").upload("broken.png", b"\x89PNG not really", "image/png")
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "broken.png" in at.error[0].value
    assert "\n" not in at.error[0].value
    at.file_uploader(key="segment_upload").clear().upload(
        "cells.png", png_bytes(make_sample((64, 64), seed=4)[0]), "image/png"
    )
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert any(metric.label == "Nuclei found" for metric in at.metric)


def test_ground_truth_of_the_wrong_size_is_refused(active_model, make_sample):
    at = start("pages/segment.py")
    upload_image(at, make_sample)
    wrong = png_bytes(np.eye(32, dtype=np.uint8) * 255)
    at.file_uploader(key="segment_truth").upload("small.png", wrong, "image/png").run()
    assert not at.exception
    assert "small.png" in texts(at.error) and "differs from image size" in texts(at.error)
    assert any(metric.label == "Nuclei found" for metric in at.metric)


def test_segment_page_says_when_no_model_is_available():
    at = start("pages/segment.py")
    assert "No model is available" in texts(at.info)
    assert "draw the nuclei of an image yourself" in texts(at.caption)  # app/test_corrections.py
    assert not at.slider  # no threshold without a model


# --------------------------------------------------------------------------- browse page


def test_browse_scores_the_sample_folder_and_shows_one_image(active_model, samples):
    at = start("pages/browse.py")
    assert not at.error, texts(at.error)
    mean_dsb = next(metric for metric in at.metric if metric.label == "Mean DSB score")
    assert mean_dsb.proto.help == wording.HELP_TEXTS["dsb_score"]
    assert len(at.get("image")) >= 4
    assert "All 4 images, worst DSB score first." in texts(at.caption)
    at.button(key="browse_pick_img02").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.session_state["browse_selected"] == "img02"
    assert "img02 · " in texts(at.caption)  # the dialog over the gallery
    dsb = next(metric for metric in at.metric if metric.label == "DSB score")
    assert dsb.proto.help == wording.HELP_TEXTS["dsb_score"]
    at.run()  # any other change closes the dialog
    assert "img02 · " not in texts(at.caption)
    at.selectbox(key="browse_find").set_value("img01").run()
    assert "img01 · " in texts(at.caption)
    at.radio(key="browse_order").set_value("Best first").run()
    at.number_input(key="browse_shown").set_value(4).run()
    assert not at.exception and not at.error
    at.button_group(key="browse_kinds").set_value([]).run()
    assert "Choose at least one image type." in texts(at.info)


def test_browse_tells_the_samples_are_a_test_set_and_explains_splits_elsewhere(
    active_model, samples, fresh_environment, flat_dataset_factory
):
    at = start("pages/browse.py")
    assert "test-split images of the Data Science Bowl 2018" in texts(at.caption)
    assert not [box for box in at.selectbox if box.key == "browse_split"]  # scored whole
    other = flat_dataset_factory(fresh_environment / "other", n_images=4)
    at.text_input(key="browse_folder").set_value(str(other)).run()
    assert not at.exception and not at.error, texts(at.error)
    split = at.selectbox(key="browse_split")
    assert split.proto.help == wording.SPLIT_HELP and split.value == "all"
    assert "test split (never trained on)" in split.options
    table = at.get("dataframe")
    assert not table  # nothing is scored before the button is pressed
    assert at.button(key="browse_start")


def test_browse_refuses_a_missing_folder(active_model, samples, fresh_environment):
    at = start("pages/browse.py")
    at.text_input(key="browse_folder").set_value(str(fresh_environment / "nowhere")).run()
    assert not at.exception
    assert "does not exist" in texts(at.error)


# --------------------------------------------------------------------------- train and curves


def test_training_job_registers_a_run_whose_curves_show_its_epochs(
    fresh_environment, flat_dataset_factory, registry
):
    data = flat_dataset_factory(fresh_environment / "train_data", n_images=6)
    at = start("pages/train.py")
    at.text_input(key="train_data").set_value(str(data))
    at.text_input(key="train_name").set_value("tiny-run")
    at.number_input(key="train_epochs").set_value(2)
    at.number_input(key="train_batch_size").set_value(2)
    at.number_input(key="train_crop").set_value(32)
    at.number_input(key="train_patience").set_value(5)
    at.number_input(key="train_val_fraction").set_value(0.2)
    at.number_input(key="train_depth").set_value(2)
    at.number_input(key="train_base_filters").set_value(4)
    at.checkbox(key="train_distance").check()
    next(button for button in at.get("form_submit_button")).click().run()
    assert not at.exception and not at.error, texts(at.error)
    run = registry.find_run_by_name("tiny-run")
    assert run is not None

    deadline = time.monotonic() + 400
    while registry.get_run(run.id).is_active and time.monotonic() < deadline:
        time.sleep(2)
    run = registry.get_run(run.id)
    assert run.status == "finished", run.message
    assert [row["epoch"] for row in registry.epochs(run.id)] == [1, 2]
    assert load_model(run.model_path).output_shape[-1] == 3  # the distance map was asked for

    at = start("pages/train.py")
    assert "tiny-run" in texts(at.success)
    at.button(key="train_activate").click().run()
    assert at.session_state["session_model"][0] == run.id
    assert "tiny-run" in texts(at.sidebar.markdown)

    at.switch_page("pages/curves.py").run()
    assert not at.exception and not at.error, texts(at.error)
    assert "Best epoch of each run" in texts(at.subheader)
    table = at.dataframe[0].value
    row = table[table["run"] == "tiny-run"].iloc[0]
    assert row["epochs"] == 2 and row["best epoch"] in (1, 2)
    assert "validation loss" in table.columns and "val_loss" not in table.columns
    assert len(at.get("vega_lite_chart")) >= 3


def test_running_job_shows_progress_refuses_a_second_and_stops(
    fresh_environment, flat_dataset_factory, registry
):
    from nuclei_core import jobs
    from nuclei_core.errors import JobBusyError
    from nuclei_core.training import TrainConfig

    data = flat_dataset_factory(fresh_environment / "train_data", n_images=6)
    config = TrainConfig(
        data=str(data),
        out="",
        epochs=500,
        batch_size=2,
        crop=32,
        depth=2,
        base_filters=4,
        val_fraction=0.2,
        name="long-run",
    )
    run = jobs.start_training(config, registry)
    try:
        at = start("pages/train.py")
        assert "Training long-run" in texts(at.subheader)
        assert len(at.get("progress")) == 1
        (submit,) = at.get("form_submit_button")  # a second job from the page waits its turn
        assert submit.label.startswith("Queue training")
        with pytest.raises(JobBusyError):
            jobs.start_training(config, registry)  # the engine itself still refuses it
        at.button(key="train_stop").click().run()
        assert not at.exception
        assert "Stopping" in texts(at.info)
        deadline = time.monotonic() + 300
        while registry.get_run(run.id).is_active and time.monotonic() < deadline:
            time.sleep(1)
        assert registry.get_run(run.id).status == "stopped"
    finally:
        if registry.get_run(run.id).is_active:
            jobs.kill_training(run.id, registry=registry)
    at = start("pages/train.py")
    assert [button.label for button in at.get("form_submit_button")] == ["Start training"]
    assert "long-run" in texts(at.info) + texts(at.success)


@contextlib.contextmanager
def fake_running_job(registry, name: str = "fake-run"):
    """A run marked running in this (alive) process while the test holds the single-job lock,
    so the Train page shows its monitor without a training process; ended on leaving."""
    from nuclei_core.jobs.lock import acquire_lock

    fd = acquire_lock(5.0)
    assert fd is not None
    run = registry.create_run(name, "unet", {"epochs": 5}, "data", status="running")
    try:
        yield registry.set_status(run.id, "running", pid=os.getpid())
    finally:
        if registry.get_run(run.id).is_active:
            registry.set_status(run.id, "failed", message="test over")
        os.close(fd)


def test_stop_shows_stopping_at_once_and_on_every_refresh(registry):
    with fake_running_job(registry):
        at = start("pages/train.py")
        assert "Training fake-run" in texts(at.subheader)
        assert at.button(key="train_stop").label == "Stop training"
        at.button(key="train_stop").click().run()
        assert not at.exception
        assert progress.STOPPING_TEXT in texts(at.info)
        assert at.get("progress")[0].proto.text == progress.STOPPING_TEXT
        for _ in range(2):  # the refreshes that follow keep saying so until the job ends
            at.run()
            assert progress.STOPPING_TEXT in texts(at.info)
            assert at.button(key="train_stop").disabled


def test_training_form_keeps_its_fields_and_sends_the_time_budget(
    fresh_environment, flat_dataset_factory, registry, monkeypatch
):
    from nuclei_core import jobs
    from nuclei_core.errors import NucleiError

    data = flat_dataset_factory(fresh_environment / "train_data", n_images=6)
    sent = []

    def record(config, registry=None, owner=None):
        sent.append(config)
        raise NucleiError("recorded instead of started")

    monkeypatch.setattr(jobs, "start_training", record)
    at = start("pages/train.py")
    assert at.number_input(key="train_time_budget").value == 0
    at.text_input(key="train_data").set_value(str(data))
    at.text_input(key="train_name").set_value("kept-run")
    at.number_input(key="train_epochs").set_value(3)
    at.number_input(key="train_time_budget").set_value(10)
    next(button for button in at.get("form_submit_button")).click().run()
    assert "recorded instead of started" in texts(at.error)
    assert sent[0].epochs == 3 and sent[0].time_budget_minutes == 10.0

    with fake_running_job(registry, "beside-the-form"):
        at.run()
        (submit,) = at.get("form_submit_button")  # the form stays, to queue a second job
        assert submit.label.startswith("Queue training")
    at.run()
    assert at.get("form_submit_button")[0].label == "Start training"
    assert at.text_input(key="train_name").value == "kept-run"
    assert at.number_input(key="train_epochs").value == 3
    assert at.number_input(key="train_time_budget").value == 10
    assert at.text_input(key="train_data").value == str(data)


def test_a_training_started_while_another_runs_waits_its_turn_and_can_be_cancelled(
    fresh_environment, flat_dataset_factory, registry, monkeypatch
):
    from nuclei_core import jobs
    from nuclei_core.errors import JobBusyError

    def busy(config, registry=None, owner=None):
        raise JobBusyError("a training job is already running: fake-run")

    monkeypatch.setattr(jobs, "start_training", busy)
    data = flat_dataset_factory(fresh_environment / "train_data", n_images=6)
    with fake_running_job(registry):
        at = start("pages/train.py")
        at.text_input(key="train_data").set_value(str(data))
        at.text_input(key="train_name").set_value("second-run")
        at.number_input(key="train_crop").set_value(32)  # the images are 64 x 64
        at.get("form_submit_button")[0].click().run()
        assert not at.exception and not at.error, texts(at.error)
        assert "second-run waits for its turn (place 1)" in texts(at.success)
        assert "Waiting for their turn on this server: 1" in texts(at.caption)
        assert "1. second\\-run" in [block.value for block in at.markdown]  # as plain text
        (cancel,) = [button for button in at.button if button.key.startswith("train_cancel_")]
        cancel.click().run()
        assert "second-run left the queue; it will not start." in texts(at.success)
        assert "Waiting for their turn" not in texts(at.caption)


def test_curves_page_overlays_runs_and_offers_the_history(registry):
    for name, losses in (("first", [0.9, 0.5, 0.6]), ("second", [0.8, 0.4, 0.3])):
        run = registry.create_run(name, "unet", {}, "data", status="finished")
        for epoch, loss in enumerate(losses, start=1):
            registry.add_epoch(run.id, epoch, {"loss": loss, "val_loss": loss + 0.1, "dice": 0.5})
    at = start("pages/curves.py")
    at.multiselect(key="curves_runs").set_value([run.id - 1, run.id]).run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert dict(zip(table["run"], table["best epoch"], strict=True)) == {"first": 2, "second": 3}
    assert {"training loss", "validation loss", "training Dice"} <= set(table.columns)
    columns = json.loads(at.dataframe[0].proto.columns)
    assert columns["validation loss"]["help"] == wording.HELP_TEXTS["loss"]
    assert "Best epoch of each run" in texts(at.subheader)
    assert wording.HELP_TEXTS["loss"] in texts(at.markdown)  # "What the curves measure"
    assert at.get("download_button")[0].label == "Download history (CSV)"


# --------------------------------------------------------------------------- model management


def keras_archive(config: dict, extra: dict | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        archive.writestr("model.weights.h5", b"")
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def upload_model(at, name: str, data: bytes):
    at.file_uploader(key="models_upload").upload(name, data, "application/octet-stream")
    at.run()
    at.button(key="models_add").click().run()
    assert not at.exception, at.exception


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("garbage.keras", b"definitely not a zip", "not a Keras model"),
        ("lambda.keras", keras_archive({"class_name": "Lambda", "config": {}}), "Lambda"),
        ("extra.keras", keras_archive({}, extra={"payload.py": b"import os"}), "unexpected"),
    ],
)
def test_unsafe_or_malformed_model_upload_is_refused(name, data, reason, registry):
    at = start("pages/train.py")
    upload_model(at, name, data)
    assert name in texts(at.error) and reason in texts(at.error)
    assert registry.list_runs() == []
    assert not list((Path(registry.path).parent / "models").glob("*.keras"))


@pytest.fixture(scope="module")
def zoo_package(tiny_model_file, tmp_path_factory):
    """The tiny model as a BioImage Model Zoo package (made before the fresh environment, which
    hides the sample images)."""
    pytest.importorskip("bioimageio.spec")
    from nuclei_core.sharing.zoo_export import export_package

    return export_package(tiny_model_file, tmp_path_factory.mktemp("zoo") / "s.bioimageio.zip")


def test_a_bioimage_model_zoo_package_is_added_and_a_broken_one_refused(registry, zoo_package):
    from nuclei_core.registry import cards

    package = zoo_package
    at = start("pages/train.py")
    upload_model(at, "broken.bioimageio.zip", b"not a zip")
    assert "broken.bioimageio.zip: not a zip file" in texts(at.error)
    upload_model(at, package.name, package.read_bytes())
    assert not at.error, texts(at.error)
    (run,) = registry.list_runs()
    assert "Added" in texts(at.success) and run.name.startswith("nuclei U-Net")
    assert cards.read_card(run.model_path)["params"]["source"] == "BioImage Model Zoo package"
    labels = [button.label for button in at.get("download_button")]
    assert "Download for Fiji, QuPath, napari" in labels  # the package of the chosen model
    (holds,) = [e for e in at.expander if e.label == "What the Fiji, QuPath, napari package holds"]
    shown = texts(holds.markdown)
    assert "weights: Keras 3" in shown and "foreground, boundary" in shown


@pytest.fixture(scope="module")
def lab_package(tmp_path_factory):
    """A package made elsewhere: ONNX weights, one foreground channel."""
    pytest.importorskip("bioimageio.core")
    from tests.sharing.foreign import write_foreign_package

    return write_foreign_package(tmp_path_factory.mktemp("lab"))


def test_a_package_from_elsewhere_says_where_it_came_from_and_downloads_as_it_is(
    registry, lab_package
):
    at = start("pages/train.py")
    upload_model(at, lab_package.name, lab_package.read_bytes())
    assert not at.error, texts(at.error)
    (run,) = registry.list_runs()
    assert run.name == "another lab nuclei" and run.model_path.endswith(".bioimageio.zip")
    labels = [button.label for button in at.get("download_button")]
    assert "Download the package" in labels and "Download for Fiji, QuPath, napari" not in labels
    (origin,) = [e for e in at.expander if e.label == "Where this model came from"]
    shown = texts(origin.markdown)
    assert "lab.bioimageio.zip" in shown and "Another Lab" in shown and "onnx" in shown


def test_model_with_the_wrong_output_shape_is_refused(registry, tmp_path):
    import keras

    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
    path = tmp_path / "one_channel.keras"
    model.save(path)
    at = start("pages/train.py")
    upload_model(at, "one_channel.keras", path.read_bytes())
    assert "output shape" in texts(at.error)
    assert registry.list_runs() == []


def test_valid_model_upload_becomes_active_and_can_be_renamed_and_deleted(
    registry, tiny_model_file
):
    at = start("pages/train.py")
    upload_model(at, "mine.keras", tiny_model_file.read_bytes())
    assert not at.error, texts(at.error)
    active = registry.active_model()
    assert active is not None and active.name == "mine"
    assert "mine" in texts(at.sidebar.markdown)
    assert "mine" in texts(at.success)

    at.text_input(key="models_new_name").set_value("renamed").run()
    at.button(key="models_rename").click().run()
    assert registry.get_run(active.id).name == "renamed"

    at.checkbox(key="models_confirm_delete").check().run()
    at.button(key="models_delete").click().run()
    assert not at.exception
    assert registry.list_runs() == []
    assert not Path(active.model_path).exists()
    assert "No model is available" in texts(at.sidebar.warning)


def test_sidebar_switches_the_model_of_this_session_only(
    registry, tiny_model_file, active_model, fresh_environment, samples
):
    path = fresh_environment / "other.keras"
    path.write_bytes(tiny_model_file.read_bytes())
    other = registry.register_model_card({"name": "other"}, path, None)
    at = start()
    assert "new sessions start with tiny" in texts(at.sidebar.caption)
    at.sidebar.selectbox(key="sidebar_model").set_value(other.id).run()
    assert not at.exception
    assert "other" in texts(at.sidebar.markdown)
    assert registry.active_model().id == active_model.id  # the default stays
    at.switch_page("pages/browse.py").run()
    assert not at.exception and not at.error, texts(at.error)
    assert "scored with other" in texts(at.caption)  # every page uses the session's model

    second = start()  # another browser session
    assert "tiny" in texts(second.sidebar.markdown)
    assert "other" not in texts(second.sidebar.markdown)


def test_train_page_sets_the_default_model_for_new_sessions(
    registry, tiny_model_file, active_model, fresh_environment
):
    path = fresh_environment / "other.keras"
    path.write_bytes(tiny_model_file.read_bytes())
    other = registry.register_model_card({"name": "other"}, path, None)
    at = start("pages/train.py")
    at.selectbox(key="models_choice").set_value(other.id).run()
    at.button(key="models_activate").click().run()
    assert at.session_state["session_model"][0] == other.id
    assert registry.active_model().id == active_model.id
    at.button(key="models_default").click().run()
    assert not at.exception
    assert registry.active_model().id == other.id
    assert at.button(key="models_default").disabled
