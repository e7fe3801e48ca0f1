"""In Chromium: the Train page's "Download for Fiji, QuPath, napari" gives the chosen model as a
BioImage Model Zoo package, made when clicked, and the bundled default model's package passes
``bioimageio.core``'s test offline (issue 28)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS

EXPORT_TIMEOUT_MS = 300_000  # the export converts the network to ONNX and runs it once


def test_the_bundled_model_downloads_as_a_package_that_passes_bioimageio_test(app_url, tmp_path):
    if not CHROMIUM.is_file():
        pytest.skip("install Debian's chromium: apt-get install chromium chromium-driver")
    sync_api = pytest.importorskip("playwright.sync_api")
    import nuclei_core  # noqa: F401  (sets KERAS_BACKEND=tensorflow before bioimageio.core)

    pytest.importorskip("bioimageio.core")
    from bioimageio.core import test_model
    from bioimageio.spec import load_model_description

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
            page.goto(f"{app_url}/train", wait_until="domcontentloaded")
            button = page.get_by_role("button", name="Download for Fiji, QuPath, napari")
            button.wait_for(timeout=120_000)
            page.get_by_text("What the Fiji, QuPath, napari package holds").click()
            page.get_by_text("licence CC-BY-NC-SA-4.0").wait_for(timeout=30_000)
            with page.expect_download(timeout=EXPORT_TIMEOUT_MS) as info:
                button.click()
            name = info.value.suggested_filename
            data = Path(info.value.path()).read_bytes()
        finally:
            browser.close()
    assert name.endswith(".bioimageio.zip")
    members = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert {"rdf.yaml", "model.keras", "model.onnx", "cover.png"} <= set(members)
    saved = tmp_path / name
    saved.write_bytes(data)
    described = load_model_description(saved, perform_io_checks=False)
    assert described.weights.onnx is not None and described.weights.keras_v3 is not None
    summary = test_model(str(saved))  # both weight formats reproduce the test output, offline
    failed = [detail.name for detail in summary.details if detail.status == "failed"]
    assert summary.status == "passed", failed
