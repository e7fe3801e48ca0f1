"""Tests of the "Segment a whole slide" page (`pages/slide.py`) with AppTest.

Every test gets a fresh data folder and no bundled default model; the slide is a
generated tiled BigTIFF, segmented by the session's trained tiny model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from support import app_page, start_app, texts
from synthetic import make_nuclei

from nuclei_core.segmentation.options import SegmentOptions

TIMEOUT = 120  # seconds per script run: TensorFlow import and a slide on a loaded machine
PAGE = app_page("slide")


def start() -> object:
    return start_app(PAGE, TIMEOUT)


@pytest.fixture
def active_model(registry, trained_run):
    """The trained disc model registered and made active (segments the slide's discs)."""
    card = {"name": "discs", "architecture": "unet", "final_metrics": {"val_dice": 0.9}}
    run = registry.register_model_card(card, trained_run.result.model_path, None)
    registry.set_active_model(run.id)
    return run


def test_page_without_a_model_says_so():
    at = start()
    assert "No model is available" in texts(at.info)


def finished(at):
    """Wait for the session's slide job, then run the page once more: its results."""
    job = at.session_state["slide_job"]
    assert job.wait(TIMEOUT), "the slide job did not end"
    at.run()
    assert not at.exception, at.exception
    return job


def test_a_slide_on_the_server_gives_count_overview_table_and_downloads(active_model, tmp_path):
    image, _ = make_nuclei((700, 900), n_nuclei=250, radius=(6, 10), seed=11)
    source = tmp_path / "scan.tif"
    tifffile.imwrite(source, image, bigtiff=True, tile=(256, 256))
    at = start()
    assert at.button(key="slide_go").disabled
    at.text_input(key="slide_path").input(str(source)).run()
    at.button(key="slide_go").click().run()
    result = finished(at).result
    assert not at.error, texts(at.error)
    assert result.count > 200 and result.shape == (700, 900)
    assert at.metric[0].value == f"{result.count:,}"
    table = at.dataframe[0].value
    assert len(table) == result.count
    assert "700 x 900 pixels" in texts(at.caption)
    first = result.outputs["labels"].parent
    assert first.parent.parent == tmp_path / "data" / "slides"  # <slides>/scan-<hash>/<time>
    assert first.parent.name.startswith("scan-")
    assert sorted(path.name for path in first.iterdir()) == [
        "scan_labels.ome.zarr",
        "scan_nuclei.csv",
        "scan_overview.png",
    ]
    assert np.asarray(result.overview).shape == (700, 900, 3)
    assert len(at.get("download_button")) == 3
    before = {path: path.stat().st_mtime_ns for path in first.rglob("*") if path.is_file()}

    at.checkbox(key="slide_geojson").check().run()
    at.button(key="slide_go").click().run()
    again = finished(at).result
    assert not at.error, texts(at.error)
    second = again.outputs["labels"].parent
    assert second != first and second.parent == first.parent  # a new run, its own folder
    assert {path: path.stat().st_mtime_ns for path in before} == before  # the first untouched
    detections = json.loads((second / "scan_nuclei.geojson").read_text())["features"]
    assert len(detections) == again.count
    assert len(at.get("download_button")) == 4


def test_a_stopped_slide_removes_only_its_own_folder(active_model, tmp_path):
    from nuclei_core.network.runtime import load_inference_model
    from ui.slide_job import SlideJob

    image, _ = make_nuclei((600, 600), n_nuclei=80, radius=(6, 10), seed=3)
    source = tmp_path / "scan.tif"
    tifffile.imwrite(source, image, tile=(256, 256))
    earlier = tmp_path / "slides" / "earlier"
    earlier.mkdir(parents=True)
    (earlier / "scan_overview.png").write_bytes(b"kept")
    model = load_inference_model(active_model.model_path, backend="auto")
    job = SlideJob(model, source, tmp_path / "slides" / "now", SegmentOptions(tile_size=256),
                   geojson=False)  # fmt: skip
    job.stop()  # asked before the first tile ends
    job.start()
    assert job.wait(TIMEOUT)
    assert job.stopped and job.result is None and job.error is None
    assert not (tmp_path / "slides" / "now").exists()
    assert (earlier / "scan_overview.png").read_bytes() == b"kept"


def test_a_file_that_is_not_a_tiff_is_named_in_the_error(active_model, tmp_path):
    source = tmp_path / "notes.txt"
    source.write_text("not an image")
    at = start()
    at.text_input(key="slide_path").input(str(source)).run()
    at.button(key="slide_go").click().run()
    job = finished(at)
    assert "notes.txt: not a TIFF file" in texts(at.error)
    assert job.result is None
    assert not (tmp_path / "data" / "slides").exists() or not any(
        (tmp_path / "data" / "slides").rglob("*.csv")
    )
