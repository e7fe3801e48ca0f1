"""AppTest tests of the Segment page's units, channels, planes and download formats.

Fixtures (fresh data folder, tiny active model) come from ``test_app.py``.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from support import downloads_of, png_bytes, texts
from support import start_app as start


def stack_tiff(make_sample) -> bytes:
    """ZCYX ImageJ TIFF, 0.5 µm per pixel: nuclei in channel 1 of plane 1."""
    image, _ = make_sample((64, 64), n_nuclei=5, n_touching_pairs=0, seed=3)
    array = np.zeros((3, 2, 64, 64), np.uint8)
    array[1, 1] = image
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        array,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"axes": "ZCYX", "unit": "um"},
    )
    return buffer.getvalue()


def captions(at) -> str:
    return texts(at.caption)


@pytest.mark.usefixtures("active_model")
def test_multichannel_stack_offers_channel_plane_and_the_files_pixel_size(make_sample):
    at = start("pages/segment.py")
    at.file_uploader(key="segment_upload").upload(
        "stack.tif", stack_tiff(make_sample), "image/tiff"
    )
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.number_input(key="segment_pixel_size").value == 0.5
    assert "Read from the file (ImageJ TIFF metadata): sizes in µm." in captions(at)
    assert at.selectbox(key="segment_channel").options == ["channel 0", "channel 1"]
    assert at.selectbox(key="segment_plane").options == ["z 0", "z 1", "z 2", "Maximum projection"]
    table = at.dataframe[0].value
    assert {"area_um2", "perimeter_um", "centroid_x_px"} <= set(table.columns)

    first_key = at.session_state["segment_probabilities"][0]
    at.selectbox(key="segment_channel").select_index(1).run()
    at.selectbox(key="segment_plane").select("max").run()
    assert at.session_state["segment_probabilities"][0] != first_key
    at.checkbox(key="segment_every_channel").check().run()
    assert {"mean_intensity_ch0", "mean_intensity_ch1"} <= set(at.dataframe[0].value.columns)

    at.number_input(key="segment_pixel_size").set_value(0.25).run()
    assert "Set by you (the file records 0.5 µm per pixel): sizes in µm." in captions(at)
    at.number_input(key="segment_pixel_size").set_value(0.0).run()
    table = at.dataframe[0].value
    assert "area_px" in table.columns and "area_um2" not in table.columns
    assert not at.exception and not at.error


@pytest.mark.usefixtures("active_model")
def test_plain_image_has_no_pickers_and_every_download_format(make_sample):
    at = start("pages/segment.py")
    image, _ = make_sample((64, 64), seed=3)
    at.file_uploader(key="segment_upload").upload("cells.png", png_bytes(image), "image/png")
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    keys = {widget.key for widget in at.selectbox}
    assert not keys & {"segment_channel", "segment_plane"}
    assert at.number_input(key="segment_pixel_size").value == 0.0
    assert "The file records no pixel size" in captions(at)
    files = downloads_of(at)
    assert list(files) == [
        "Mask (PNG)",
        "Labels (16-bit PNG)",
        "Measurements (CSV)",
        "Fiji ROI set (zip)",
        "QuPath detections (GeoJSON)",
        "Labels (TIFF)",
        "Overlay (PNG)",
    ]
    assert files["Measurements (CSV)"][0] == "cells_nuclei.csv"
    assert files["Fiji ROI set (zip)"][0] == "cells_rois.zip"
    assert files["Mask (PNG)"][1].startswith(b"\x89PNG")
    table = at.dataframe[0].value
    assert files["Measurements (CSV)"][1].decode().count("\n") == len(table) + 1


@pytest.mark.usefixtures("active_model")
def test_the_upload_limit_the_page_names_is_the_limit_it_applies():
    """An image one pixel wider than the 4096 x 4096 the uploader names is refused from its
    header, with its name and the limit, before any network pass."""
    from ui.uploads import SEGMENT_SIDE

    at = start("pages/segment.py")
    assert (
        f"up to {SEGMENT_SIDE} x {SEGMENT_SIDE} pixels"
        in at.file_uploader(key="segment_upload").label
    )
    wide = png_bytes(np.zeros((SEGMENT_SIDE, SEGMENT_SIDE + 1), np.uint8))
    at.file_uploader(key="segment_upload").upload("wide [x](y).png", wide, "image/png")
    at.run()
    assert not at.exception, at.exception
    assert "wide [x](y).png" in texts(at.error) and "16,777,216" in texts(at.error)
    assert not at.metric  # nothing was segmented
    square = png_bytes(np.zeros((SEGMENT_SIDE // 8, SEGMENT_SIDE // 8), np.uint8))
    at.file_uploader(key="segment_upload").upload("fits.png", square, "image/png")
    at.run()
    assert not at.error, texts(at.error)
