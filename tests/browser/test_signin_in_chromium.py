"""The lab password in a real browser: `streamlit run app.py` with NUCLEI_PASSWORD_HASH set,
driven by Playwright in Chromium. Every page, a deep link included, shows only the sign-in
form until the right password is given; a wrong one is refused; sign-out locks it again."""

from __future__ import annotations

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS

from nuclei_core.access.passwords import hash_password

PASSWORD = "a lab password 9"


@pytest.fixture
def app_env() -> dict:
    return {"NUCLEI_PASSWORD_HASH": hash_password(PASSWORD)}


def test_every_page_stays_locked_until_the_lab_password(app_url):
    if not CHROMIUM.is_file():
        pytest.skip("install Debian's chromium: apt-get install chromium chromium-driver")
    sync_api = pytest.importorskip("playwright.sync_api")

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            for address in (f"{app_url}/train", app_url):  # a deep link, then the home page
                page.goto(address, wait_until="domcontentloaded")
                page.get_by_label("Lab password").wait_for(timeout=60_000)
                assert page.get_by_role("heading", name="Nuclei segmentation").is_visible()
                for heading in ("Segment an image", "Train or load a model"):
                    assert page.get_by_role("heading", name=heading).count() == 0
                assert page.get_by_text("Switch model").count() == 0  # no sidebar of the app

            page.get_by_label("Your name").fill("Ada")
            page.get_by_label("Lab password").fill("not the password")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("Wrong password.").wait_for(timeout=30_000)
            assert page.get_by_role("heading", name="Segment an image").count() == 0

            page.get_by_label("Lab password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Segment an image").wait_for(timeout=60_000)
            page.get_by_text("Signed in as Ada").wait_for(timeout=30_000)

            page.get_by_role("button", name="Sign out").click()
            page.get_by_label("Lab password").wait_for(timeout=30_000)
            # the app's heading goes (Streamlit may show the old page a moment longer)
            page.get_by_role("heading", name="Segment an image").wait_for(
                state="detached", timeout=30_000
            )
            assert page.get_by_text("Switch model").count() == 0
        finally:
            browser.close()
