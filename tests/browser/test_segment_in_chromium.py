"""End-to-end test in a real browser: `streamlit run app.py`, driven by Playwright in Chromium.

The app is started as a subprocess on 127.0.0.1 with a free port and a temporary data
folder holding an untrained tiny U-Net as the active model.  Playwright drives
Debian's Chromium (``/usr/bin/chromium``; Playwright's own browser download does not
work here): it uploads a generated image on the Segment page and waits for the
nucleus count and the overlay image.  A screenshot is saved in the test's temporary
folder.  Without Chromium the test is skipped with the command that installs it.
"""

from __future__ import annotations

import re

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS, SAMPLE, SEGMENT_TIMEOUT_MS
from PIL import Image


def test_segment_page_in_chromium(app_url, tmp_path):
    if not CHROMIUM.is_file():
        pytest.skip("install Debian's chromium: apt-get install chromium chromium-driver")
    sync_api = pytest.importorskip("playwright.sync_api")

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(app_url, wait_until="domcontentloaded")
            page.get_by_role("heading", name="Segment an image").wait_for(timeout=60_000)
            page.get_by_text("default").first.wait_for(timeout=30_000)  # sidebar: active model

            upload = page.locator('input[type="file"]').first
            upload.wait_for(state="attached", timeout=30_000)
            upload.set_input_files(
                files=[
                    {"name": SAMPLE.name, "mimeType": "image/png", "buffer": SAMPLE.read_bytes()}
                ]
            )

            page.get_by_text("Nuclei found").wait_for(timeout=SEGMENT_TIMEOUT_MS)
            count = page.locator('[data-testid="stMetricValue"]').first.inner_text()
            assert re.fullmatch(r"\d+", count.strip()) and int(count) > 0, count
            overlay = page.locator('img[alt="Nuclei overlay"]')
            overlay.wait_for(state="visible", timeout=60_000)
            page.wait_for_function(
                "() => { const img = document.querySelector('img[alt=\"Nuclei overlay\"]');"
                " return img && img.complete && img.naturalWidth > 0; }",
                timeout=60_000,
            )
            width = Image.open(SAMPLE).width
            assert overlay.evaluate("img => img.naturalWidth") == width
            assert page.get_by_text("Measurements").first.is_visible()

            screenshot = tmp_path / "segment_page.png"
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.stat().st_size > 10_000
        finally:
            browser.close()


def in_viewport(page, locator) -> bool:
    """Whether some of the element lies inside the visible part of the page."""
    box = locator.bounding_box()
    viewport = page.viewport_size
    return (
        box is not None
        and 0 < box["y"] + box["height"]
        and box["y"] < viewport["height"]
        and box["x"] < viewport["width"]
    )


class TestBrowsePage:
    """The Browse page on twelve generated sample images (``NUCLEI_SAMPLES_DIR``)."""

    @pytest.fixture
    def app_env(self, tmp_path, flat_dataset_factory) -> dict:
        samples = flat_dataset_factory(tmp_path / "samples", n_images=12, size=(96, 96))
        return {"NUCLEI_SAMPLES_DIR": str(samples)}

    def test_inspect_opens_the_detail_where_the_user_looks(self, app_url, tmp_path):
        if not CHROMIUM.is_file():
            pytest.skip("install Debian's chromium: apt-get install chromium chromium-driver")
        sync_api = pytest.importorskip("playwright.sync_api")

        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.goto(f"{app_url}/browse", wait_until="domcontentloaded")
                page.get_by_text("Mean DSB score").wait_for(timeout=SEGMENT_TIMEOUT_MS)
                inspect = page.get_by_role("button", name="Inspect")
                inspect.nth(11).wait_for(timeout=60_000)
                assert inspect.count() == 12
                inspect.last.scroll_into_view_if_needed()  # the bottom of the gallery
                inspect.last.click()
                dialog = page.get_by_role("dialog")
                dialog.wait_for(state="visible", timeout=60_000)
                errors = dialog.locator('img[alt="Errors"]')
                errors.wait_for(state="visible", timeout=60_000)
                assert in_viewport(page, errors)
                assert in_viewport(page, dialog.get_by_text("Ground truth").first)
                legend = dialog.get_by_text("missed nucleus (false negative)")
                legend.wait_for(state="visible", timeout=30_000)  # drawn after the pictures
                page.screenshot(path=str(tmp_path / "browse_dialog.png"))
            finally:
                browser.close()
