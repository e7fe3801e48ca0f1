"""Tests of the "Segment a folder" page (`pages/batch.py`) and `ui/batch.py`, with AppTest.

Every test gets a fresh data folder and no bundled default model (as in test_app.py);
segmenting tests use an untrained tiny U-Net registered as the active model.
"""

from __future__ import annotations

import io
import time
import zipfile
from types import SimpleNamespace

import pandas as pd
from support import app_page, png_bytes, start_app, texts

from nuclei_core.batch.images import BatchProgress
from nuclei_core.segmentation.options import SegmentOptions
from ui.batch import BatchJob, outcome_text, progress_text

TIMEOUT = 60  # seconds per script run; importing TensorFlow is slow on a loaded machine
BATCH_WAIT = 180.0  # seconds for a small batch on a busy 2-core machine
PAGE = app_page("batch")


def start() -> object:
    return start_app(PAGE, TIMEOUT)


def run_batch(at):
    """Press Start and rerun the page until the job has ended and the summary is shown."""
    at.button(key="batch_start").click().run()
    deadline = time.monotonic() + BATCH_WAIT
    while at.session_state["batch_job"].running and time.monotonic() < deadline:
        time.sleep(0.2)
    at.run()
    assert not at.exception, at.exception
    assert not at.session_state["batch_job"].running, "the batch did not end in time"
    return at.session_state["batch_job"]


def test_page_without_a_model_says_so():
    at = start()
    assert not at.error, texts(at.error)
    assert "No model is available" in texts(at.info)


def test_uploaded_batch_gives_rows_a_failed_row_and_a_zip(active_model, make_sample):
    at = start()
    uploader = at.file_uploader(key="batch_upload")
    assert uploader.accept_multiple_files
    for seed in range(3):
        image, _ = make_sample((64, 64), seed=seed)
        uploader.upload(f"cells{seed}.png", png_bytes(image), "image/png")
    uploader.upload("broken.png", b"\x89PNG not really", "image/png")
    at.run()
    assert at.button(key="batch_start").label == "Segment 4 images with tiny"
    job = run_batch(at)

    summary = at.dataframe[0].value
    assert summary["image"].tolist() == ["cells0.png", "cells1.png", "cells2.png", "broken.png"]
    assert summary["status"].tolist() == ["ok", "ok", "ok", "failed"]
    assert summary["message"].iloc[3].startswith("broken.png: ")
    assert summary["area_unit"].tolist() == ["px", "px", "px", ""]
    assert "4 images with tiny: 3 segmented, 1 failed" in texts(at.caption)
    assert "1 file could not be segmented" in texts(at.warning)
    assert summary["message"].iloc[3] in texts(at.warning)
    assert [button.label for button in at.get("download_button")] == ["Download every output (zip)"]
    archive = zipfile.ZipFile(io.BytesIO(job.zip_bytes()))
    assert {"summary.csv", "nuclei.csv", "per_image/cells2_labels.png"} <= set(archive.namelist())
    combined = pd.read_csv(archive.open("nuclei.csv"))
    assert len(combined) == summary["count"].iloc[:3].sum()
    charts = at.get("vega_lite_chart")  # counts per image
    assert len(charts) == 1 and '"count"' in charts[0].proto.spec
    captions = [caption for element in at.get("image") for caption in element.captions]
    assert captions == [f"{item.name} · {item.count} nuclei" for item in job.items[:3]]


def test_a_server_folder_is_checked_and_segmented(active_model, tmp_path, write_png, make_sample):
    at = start()
    at.radio(key="batch_source").set_value("A folder on the server").run()
    at.text_input(key="batch_folder").set_value(str(tmp_path / "nowhere")).run()
    assert "dataset folder does not exist" in texts(at.error)
    assert at.button(key="batch_start").disabled

    write_png(tmp_path / "images" / "img0.png", make_sample((48, 48), seed=0)[0])
    at.text_input(key="batch_folder").set_value(str(tmp_path / "images")).run()
    assert not at.error, texts(at.error)
    assert at.button(key="batch_start").label == "Segment 1 image with tiny"
    write_png(tmp_path / "images" / "img1.png", make_sample((48, 48), seed=1)[0])
    at.run()
    assert at.button(key="batch_start").label == "Segment 2 images with tiny"
    at.number_input(key="batch_pixel_size").set_value(0.5).run()
    at.number_input(key="batch_diameter").set_value(12.0).run()  # given, not estimated
    job = run_batch(at)
    summary = at.dataframe[0].value
    assert summary["status"].tolist() == ["ok", "ok"]
    assert summary["area_unit"].tolist() == ["µm²", "µm²"]
    assert summary["pixel_size_um"].tolist() == [0.5, 0.5]
    assert summary["diameter_px"].tolist() == [12.0, 12.0]
    assert job.options.diameter == 12.0 and job.options.model_diameter == 20.6  # no card value

    write_png(tmp_path / "other" / "img9.png", make_sample((48, 48), seed=9)[0])
    at.text_input(key="batch_folder").set_value(str(tmp_path / "other")).run()  # a new folder
    assert not at.dataframe and "the results of the last batch, of other images" in texts(
        at.caption
    )
    at.text_input(key="batch_folder").set_value(str(tmp_path / "images")).run()
    assert at.dataframe[0].value["status"].tolist() == ["ok", "ok"]  # its own results again


# --------------------------------------------------------------------------- ui.batch


def follow_script():
    """A page that follows a fake job (``st.session_state["fake"]``) with ui.background.follow."""
    import streamlit as st

    from ui import background

    background.follow(st.session_state["fake"])
    st.write("page done")


def test_follow_shows_progress_and_stop_while_the_job_runs():
    from streamlit.testing.v1 import AppTest

    stopped = []
    fake = SimpleNamespace(
        running=True,
        ahead=0,
        fraction=lambda: 0.25,
        progress_text=lambda: progress_text(BatchProgress(done=2, total=8, elapsed=40.0)),
        stop_label="Stop after this image",
        stop_key="batch_stop",
        what="batch",
        stop=lambda: stopped.append(True),
    )
    at = AppTest.from_function(follow_script, default_timeout=TIMEOUT)
    at.session_state["fake"] = fake
    at.run()
    assert not at.exception, at.exception
    assert "Image 2 of 8 done · about 2 min left" in str(at.get("progress")[0].proto.text)
    at.button(key="batch_stop").click().run()
    assert stopped == [True]

    fake.running = False
    at.run()
    assert not at.get("progress") and not at.button
    assert texts(at.markdown) == "page done"


def test_a_stopped_job_ends_after_the_image_in_progress(tiny_model, make_sample):
    sources = [
        (f"c{seed}.png", png_bytes(make_sample((48, 48), seed=seed)[0])) for seed in range(4)
    ]
    job = BatchJob(tiny_model, sources, SegmentOptions(), "tiny")
    job.stop()  # asked before the first image: that image is finished, no other
    assert job.start().wait(BATCH_WAIT)
    assert [item.name for item in job.items] == ["c0.png"]
    assert job.stopped and job.error is None and job.sources == []
    assert job.progress.done == 1 and job.progress.total == 4
    names = zipfile.ZipFile(io.BytesIO(job.zip_bytes())).namelist()
    assert "per_image/c0_mask.png" in names and "per_image/c1_mask.png" not in names


def test_an_unexpected_error_ends_the_job_with_a_message(make_sample):
    class Broken:
        layers = ()

        def __call__(self, *args, **kwargs):
            raise RuntimeError("in user code:\n\n    File ...\n\n    device lost")

    sources = [("c.png", png_bytes(make_sample((48, 48), seed=1)[0]))]
    job = BatchJob(Broken(), sources, SegmentOptions(), "broken").start()
    assert job.wait(BATCH_WAIT)
    assert job.items == []
    assert job.error == "The batch stopped at image 1: RuntimeError: device lost"
    assert outcome_text(job).startswith("1 image with broken: 0 segmented, 0 failed, 1 not done in")
