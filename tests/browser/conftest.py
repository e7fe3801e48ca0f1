"""Fixtures of the browser tests: a fresh data folder and the URL of `streamlit run
app.py` on a free port of 127.0.0.1 (stopped after the test, its terminal checked for
tracebacks)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # chromium.py, for the tests of this folder

from chromium import DEFAULT_MODEL, PROJECT, SAMPLE, free_port, wait_until_healthy  # noqa: E402


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
