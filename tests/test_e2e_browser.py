"""End-to-end test in a real browser: `streamlit run app.py`, driven by Playwright in Chromium.

The app is started as a subprocess on 127.0.0.1 with a free port and a temporary data
folder holding an untrained tiny U-Net as the active model.  Playwright drives
Debian's Chromium (``/usr/bin/chromium``; Playwright's own browser download does not
work here): it uploads a generated image on the Segment page and waits for the
nucleus count and the overlay image.  A screenshot is saved in the test's temporary
folder.  Without Chromium the test is skipped with the command that installs it.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
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


@pytest.fixture
def data_folder(tmp_path):
    """A data folder whose registry has an untrained tiny U-Net as the active model."""
    from nuclei_core.model import ModelConfig, build_unet, save_model
    from nuclei_core.registry import Registry

    folder = tmp_path / "data"
    model_path = save_model(
        build_unet(ModelConfig(depth=2, base_filters=4)), folder / "models" / "tiny.keras"
    )
    registry = Registry(folder / "registry.sqlite3")
    run = registry.register_model_card(
        {"name": "tiny e2e", "architecture": "unet"}, model_path, None
    )
    registry.set_active_model(run.id)
    return folder


@pytest.fixture
def app_url(tmp_path, data_folder):
    """The URL of `streamlit run app.py` running on a free port; stopped after the test."""
    port = free_port()
    env = dict(
        os.environ,
        NUCLEI_DATA_DIR=str(data_folder),
        NUCLEI_DEFAULT_MODEL=str(tmp_path / "no-default-model.keras"),
        NUCLEI_SAMPLES_DIR=str(tmp_path / "no-samples"),
        TF_CPP_MIN_LOG_LEVEL="2",
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
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text()[-3000:]


def cells_png() -> bytes:
    rng = np.random.default_rng(7)
    image = rng.normal(20, 5, (96, 96))
    yy, xx = np.mgrid[:96, :96]
    for cy, cx in ((25, 25), (30, 65), (70, 40), (72, 75)):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 100] = 200
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


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
            page.get_by_text("tiny e2e").first.wait_for(timeout=30_000)  # sidebar: active model

            upload = page.locator('input[type="file"]').first
            upload.wait_for(state="attached", timeout=30_000)
            upload.set_input_files(
                files=[{"name": "cells.png", "mimeType": "image/png", "buffer": cells_png()}]
            )

            page.get_by_text("Nuclei found").wait_for(timeout=SEGMENT_TIMEOUT_MS)
            count = page.locator('[data-testid="stMetricValue"]').first.inner_text()
            assert re.fullmatch(r"\d+", count.strip()), count
            overlay = page.locator('img[alt="Nuclei overlay"]')
            overlay.wait_for(state="visible", timeout=60_000)
            page.wait_for_function(
                "() => { const img = document.querySelector('img[alt=\"Nuclei overlay\"]');"
                " return img && img.complete && img.naturalWidth > 0; }",
                timeout=60_000,
            )
            assert overlay.evaluate("img => img.naturalWidth") == 96
            assert page.get_by_text("Measurements").first.is_visible()

            screenshot = tmp_path / "segment_page.png"
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.stat().st_size > 10_000
        finally:
            browser.close()
