"""In Chromium: every Segment-page download works the first time, right after a change.

A download clicked while the page reruns for a new threshold or minimum size must
still give its file (a deferred download's callable is dropped by such a rerun; the
page sends the bytes instead).  App and browser come from ``test_e2e_browser.py``, whose
``app_url`` fixture also fails the test when the server logs a traceback (as Streamlit does
for ``MediaFileStorageError: Deferred file ... not found``).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from test_e2e_browser import (  # noqa: F401  (fixtures used by name)
    CHROMIUM,
    CHROMIUM_ARGS,
    SAMPLE,
    SEGMENT_TIMEOUT_MS,
    app_env,
    app_url,
    data_folder,
)

DOWNLOAD_TIMEOUT_MS = 20_000


def download_now(page, label: str) -> bytes:
    """Click the download button ``label`` at once and return the file it gives."""
    with page.expect_download(timeout=DOWNLOAD_TIMEOUT_MS) as info:
        page.get_by_role("button", name=label).click()
    return Path(info.value.path()).read_bytes()


@pytest.mark.xfail(
    reason=(
        "issue 13, still open: a download clicked during the rerun is sometimes canceled "
        "by Chromium (Download.path: canceled) on this machine"
    ),
    strict=False,
)
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
                ("Measurements (CSV)", lambda data: data.startswith(b"label,")),
                ("Fiji ROI set (zip)", lambda data: zipfile.is_zipfile(io.BytesIO(data))),
                ("QuPath detections (GeoJSON)", lambda data: b"FeatureCollection" in data),
                ("Mask (PNG)", lambda data: data.startswith(b"\x89PNG")),
            ]
            for step, (label, looks_right) in enumerate(checks):
                if step % 2 == 0:
                    threshold.focus()
                    page.keyboard.press("ArrowRight")  # a rerun starts
                else:
                    minimum.fill(str(20 + step))
                    minimum.press("Enter")  # a rerun starts
                data = download_now(page, label)  # clicked at once, during the rerun
                assert looks_right(data), (label, data[:40])
        finally:
            browser.close()
