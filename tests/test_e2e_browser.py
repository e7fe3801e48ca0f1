"""End-to-end test in a real browser: `streamlit run app.py`, driven by Playwright in Chromium.

The app is started as a subprocess on 127.0.0.1 with a free port and a temporary data
folder holding an untrained tiny U-Net as the active model.  Playwright drives
Debian's Chromium (``/usr/bin/chromium``; Playwright's own browser download does not
work here): it uploads a generated image on the Segment page and waits for the
nucleus count and the overlay image.  A screenshot is saved in the test's temporary
folder.  Without Chromium the test is skipped with the command that installs it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
PROJECT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
START_TIMEOUT_S = 120
SEGMENT_TIMEOUT_MS = 180_000  # the first segmentation imports TensorFlow in the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"streamlit did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


SAMPLE = PROJECT / "sample_images" / "inputs" / "fluo_01.png"
DEFAULT_MODEL = PROJECT / "models" / "default.keras"


@pytest.fixture
def data_folder(tmp_path):
    """A fresh data folder: the app registers the bundled default model on first start."""
    if not DEFAULT_MODEL.is_file() or not SAMPLE.is_file():
        pytest.skip("the bundled model or sample image is missing")
    return tmp_path / "data"


@pytest.fixture
def app_env() -> dict:
    """More environment variables for the app (a test class may override this fixture)."""
    return {}


@pytest.fixture
def app_url(tmp_path, data_folder, app_env):
    """The URL of `streamlit run app.py` running on a free port; stopped after the test."""
    port = free_port()
    env = dict(
        os.environ,
        NUCLEI_DATA_DIR=str(data_folder),
        TF_CPP_MIN_LOG_LEVEL="3",
        **app_env,
    )
    log = tmp_path / "streamlit.log"
    command = [
        sys.executable, "-m", "streamlit", "run", str(PROJECT / "app.py"),
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    terminal = log.read_text(errors="replace")
    assert "Traceback" not in terminal and "E0000" not in terminal, terminal[-3000:]


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
