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

from nuclei_core.slides.outputs import slide_output_folder

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


def test_a_slide_on_the_server_gives_count_overview_and_table(active_model, tmp_path):
    image, _ = make_nuclei((700, 900), n_nuclei=250, radius=(6, 10), seed=11)
    source = tmp_path / "scan.tif"
    tifffile.imwrite(source, image, bigtiff=True, tile=(256, 256))
    at = start()
    assert at.button(key="slide_go").disabled
    at.text_input(key="slide_path").input(str(source)).run()
    at.button(key="slide_go").click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    result = at.session_state["slide_result"]
    assert result.count > 200 and result.shape == (700, 900)
    assert at.metric[0].value == f"{result.count:,}"
    table = at.dataframe[0].value
    assert len(table) == result.count
    assert "700 x 900 pixels" in texts(at.caption)
    outputs = slide_output_folder(source)
    assert sorted(path.name for path in outputs.iterdir()) == [
        "scan_labels.ome.zarr",
        "scan_nuclei.csv",
        "scan_overview.png",
    ]
    assert np.asarray(result.overview).shape == (700, 900, 3)

    at.checkbox(key="slide_geojson").check().run()
    at.button(key="slide_go").click().run()
    assert not at.exception and not at.error, texts(at.error)
    detections = json.loads((outputs / "scan_nuclei.geojson").read_text())["features"]
    assert len(detections) == at.session_state["slide_result"].count


def test_a_file_that_is_not_a_tiff_is_named_in_the_error(active_model, tmp_path):
    source = tmp_path / "notes.txt"
    source.write_text("not an image")
    at = start()
    at.text_input(key="slide_path").input(str(source)).run()
    at.button(key="slide_go").click().run()
    assert not at.exception, at.exception
    assert "notes.txt: not a TIFF file" in texts(at.error)
    assert "slide_result" not in at.session_state
