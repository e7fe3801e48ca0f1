"""In Chromium: every Segment-page download works the first time, right after a change.

A download clicked while the page reruns for a new threshold or minimum size must
still give its file. With ``st.download_button`` it did not, every time: Streamlit
deletes a replaced file two runs later (a stopped run counts), while the browser may
still show the button that points at it; the page's buttons (``ui.downloads``) carry
their bytes, so a click never asks the server. App and browser come from
``test_e2e_browser.py``, whose ``app_url`` fixture also fails the test when the server
logs a traceback.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from chromium import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SAMPLE,
    SEGMENT_TIMEOUT_MS,
)

DOWNLOAD_TIMEOUT_MS = 20_000


def download_now(page, label: str) -> tuple[str, bytes]:
    """Click the download button ``label`` at once; the file's name and bytes."""
    with page.expect_download(timeout=DOWNLOAD_TIMEOUT_MS) as info:
        page.get_by_role("button", name=label).click()
    return info.value.suggested_filename, Path(info.value.path()).read_bytes()


def is_zip(data: bytes) -> bool:
    return zipfile.is_zipfile(io.BytesIO(data))


def test_downloads_work_right_after_moving_the_threshold_or_minimum_size(request):
    if not CHROMIUM.is_file():
        pytest.skip("install Debian's chromium: apt-get install chromium chromium-driver")
    sync_api = pytest.importorskip("playwright.sync_api")
    url = request.getfixturevalue("app_url")

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
            page.goto(url, wait_until="domcontentloaded")
            upload = page.locator('input[type="file"]').first
            upload.wait_for(state="attached", timeout=60_000)
            upload.set_input_files(
                files=[
                    {"name": SAMPLE.name, "mimeType": "image/png", "buffer": SAMPLE.read_bytes()}
                ]
            )
            page.get_by_role("button", name="Measurements (CSV)").wait_for(
                timeout=SEGMENT_TIMEOUT_MS
            )
            threshold = page.get_by_role("slider").first
            minimum = page.get_by_role("spinbutton", name="Minimum nucleus size (pixels)")
            checks = [
                ("Measurements (CSV)", "_nuclei.csv", lambda data: data.startswith(b"label,")),
                ("Fiji ROI set (zip)", "_rois.zip", lambda data: is_zip(data)),
                ("QuPath detections (GeoJSON)", "_nuclei.geojson", lambda data: b"Feature" in data),
                ("Mask (PNG)", "_mask.png", lambda data: data.startswith(b"\x89PNG")),
            ] * 2
            for step, (label, suffix, looks_right) in enumerate(checks):
                for change in range(2):  # two reruns, the second starting before the first ends
                    if (step + change) % 2 == 0:
                        threshold.focus()
                        page.keyboard.press("ArrowRight" if step < 4 else "ArrowLeft")
                    else:
                        minimum.fill(str(20 + step))
                        minimum.press("Enter")
                name, data = download_now(page, label)  # clicked at once, during the reruns
                assert name == SAMPLE.stem + suffix
                assert looks_right(data), (label, data[:40])
        finally:
            browser.close()
