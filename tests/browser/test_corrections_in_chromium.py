"""End-to-end test of the correction mode in a real browser (Playwright + Debian's Chromium).

The app server, its fresh data folder and Chromium come from ``test_e2e_browser.py``.
The test segments a sample on the Segment page, switches on "Correct the nuclei", draws
a closed outline with the mouse on an empty corner of the image, sees the count go up by
one (in the component and in the page's metric) and the new nucleus under the pointer
(the labels patched in the browser), undoes and redoes it with the keyboard,
saves the image to a new dataset and finds its image and 16-bit label files in the data
folder. Skipped without Chromium.
"""

from __future__ import annotations

import numpy as np
import pytest
from chromium import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SAMPLE,
    SEGMENT_TIMEOUT_MS,
)
from PIL import Image

WAIT_MS = 60_000


def image_square(box: dict, size: tuple[int, int], start=0.04, end=0.14) -> list:
    """Corners (screen) of a square from ``start`` to ``end`` of the image's width and height,
    the image being fitted and centred in the canvas ``box`` as the annotator first shows it.
    """
    width, height = size
    scale = min(box["width"] / width, box["height"] / height)
    left = box["x"] + (box["width"] - width * scale) / 2
    top = box["y"] + (box["height"] - height * scale) / 2
    x0, x1 = left + start * width * scale, left + end * width * scale
    y0, y1 = top + start * height * scale, top + end * height * scale
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def test_draw_an_outline_count_it_and_save_it(app_url, data_folder, tmp_path):  # noqa: F811
    if not CHROMIUM.is_file():
        pytest.skip("install Debian's chromium: apt-get install chromium chromium-driver")
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(app_url, wait_until="domcontentloaded")
            page.get_by_role("heading", name="Segment an image").wait_for(timeout=WAIT_MS)
            upload = page.locator('input[type="file"]').first
            upload.wait_for(state="attached", timeout=WAIT_MS)
            upload.set_input_files(
                files=[
                    {"name": SAMPLE.name, "mimeType": "image/png", "buffer": SAMPLE.read_bytes()}
                ]
            )
            page.get_by_text("Nuclei found").wait_for(timeout=SEGMENT_TIMEOUT_MS)

            page.get_by_text("Correct the nuclei").click()
            page.get_by_text("Nuclei corrected").wait_for(timeout=WAIT_MS)
            annotator = page.locator('.annotator[data-ready="true"]')
            annotator.wait_for(timeout=WAIT_MS)
            found = int(annotator.get_attribute("data-count"))
            metric = page.locator('[data-testid="stMetricValue"]').first
            expect(metric).to_have_text(str(found), timeout=WAIT_MS)

            annotator.get_by_role("button", name="Outline", exact=True).click()
            canvas = annotator.locator("canvas.view")
            canvas.scroll_into_view_if_needed()
            size = Image.open(SAMPLE).size
            corners = image_square(canvas.bounding_box(), size)
            for x, y in corners[:-1]:
                page.mouse.click(x, y)
            page.mouse.dblclick(*corners[-1])  # a double-click closes the outline

            expect(annotator).to_have_attribute("data-count", str(found + 1), timeout=WAIT_MS)
            expect(metric).to_have_text(str(found + 1), timeout=WAIT_MS)
            # The labels shown follow the patch of the edited box: the pointer over the
            # square's middle names the new nucleus, and no nucleus after the undo.
            hint = annotator.locator('[data-show="hint"]')
            middle = ((corners[0][0] + corners[2][0]) / 2, (corners[0][1] + corners[2][1]) / 2)
            page.mouse.move(*middle)
            expect(hint).to_contain_text(f"nucleus {found + 1} ·", timeout=WAIT_MS)
            page.keyboard.press("Control+z")  # the canvas has the focus since the clicks
            expect(annotator).to_have_attribute("data-count", str(found), timeout=WAIT_MS)
            page.mouse.move(middle[0] + 1, middle[1])
            expect(hint).not_to_contain_text("nucleus", timeout=WAIT_MS)
            page.keyboard.press("Control+Shift+Z")
            expect(annotator).to_have_attribute("data-count", str(found + 1), timeout=WAIT_MS)
            expect(metric).to_have_text(str(found + 1), timeout=WAIT_MS)
            page.screenshot(path=str(tmp_path / "correct.png"), full_page=True)

            name = page.get_by_role("textbox", name="New dataset name")
            name.fill("e2e cells")
            name.press("Enter")
            page.get_by_role("button", name="Save as training image").click()
            page.get_by_text(f"Saved {SAMPLE.stem}.png").wait_for(timeout=WAIT_MS)
        finally:
            browser.close()

    folder = data_folder / "datasets" / "e2e_cells"
    image = folder / "inputs" / f"{SAMPLE.stem}.png"
    mask = folder / "masks" / f"{SAMPLE.stem}.png"
    assert image.is_file() and mask.is_file()
    labels = np.asarray(Image.open(mask))
    assert labels.dtype == np.uint16 and labels.shape == size[::-1]
    assert np.unique(labels[labels > 0]).size == found + 1
    row, col = int(0.09 * size[1]), int(0.09 * size[0])  # the middle of the drawn square
    assert labels[row, col] > 0
    assert labels[int(0.2 * size[1]), int(0.2 * size[0])] != labels[row, col]
