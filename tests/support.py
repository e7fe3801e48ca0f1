"""Plain helpers shared by several test modules (``tests/conftest.py`` puts this folder on
``sys.path``): encoded test files (PNG, JPEG, TIFF, zip), the reliability report's recorder,
waiting for a training process, hashes.
"""

from __future__ import annotations

import base64
import hashlib
import io as stdio
import json
import os
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pytest
import tifffile
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
REPORT_ENV = "NUCLEI_RELIABILITY_LOG"
WAIT_S = 300.0  # generous: the machine may be busy; the tests take far less
_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")  # CommonMark: ASCII punctuation


def png_bytes(array, mode=None, **options) -> bytes:
    """``array`` encoded as PNG (``options`` go to ``Image.save``)."""
    buffer = stdio.BytesIO()
    Image.fromarray(np.ascontiguousarray(array), mode=mode).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, quality: int = 95) -> bytes:
    buffer = stdio.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def tiff_bytes(array, **options) -> bytes:
    """``array`` encoded as TIFF (``options`` go to ``tifffile.imwrite``)."""
    buffer = stdio.BytesIO()
    tifffile.imwrite(buffer, np.asarray(array), **options)
    return buffer.getvalue()


def write_tiled(path, image, tile=(128, 128), **options):
    """``image`` written to ``path`` as a tiled BigTIFF (``options`` go to ``tifffile.imwrite``)."""
    tifffile.imwrite(path, image, bigtiff=True, tile=tile, **options)
    return path


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive holding ``members`` (name -> content)."""
    buffer = stdio.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header (with a valid CRC) claims ``width`` x ``height`` 8-bit grey pixels;
    its data is 16 compressed zero bytes, far fewer than the header promises."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def app_page(name: str) -> str:
    """The path of one of the app's pages as ``app.py`` names it (``pages/<name>.py``)."""
    found = re.findall(rf'st\.Page\(\s*"([^"]*\b{name}\.py)"', Path(APP).read_text())
    return found[0] if found else f"pages/{name}.py"


def start_app(page: str | None = None, timeout: float = 60):
    """Run ``app.py`` in AppTest, then switch to ``page``; fail on an exception in either.

    ``timeout`` is the seconds each script run may take (importing TensorFlow is slow on a
    loaded machine).
    """
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    """The values of AppTest elements joined by `` | `` (for ``in`` checks), as a reader sees
    them: Markdown's backslash escapes (``wording.plain``) undone."""
    return " | ".join(_MARKDOWN_ESCAPE.sub(r"\1", str(element.value)) for element in elements)


def downloads_of(at) -> dict[str, tuple[str, bytes]]:
    """``{button label: (file name, bytes)}`` of the page's download buttons (``ui.downloads``)."""
    found = {}
    for element in at.get("bidi_component"):
        if "nuclei_downloads" in element.proto.component_name:
            for file in json.loads(element.proto.json)["files"]:
                found[file["label"]] = (file["name"], base64.b64decode(file["base64"]))
    return found


def record(case: str, seen: str, channel: str = "core", kept: int = 0) -> None:
    """Note what the user saw for a catalogued case (see ``tests/reliability_report.py``).

    ``kept`` counts files saved before the test that it checked are still intact.
    """
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]
    entry = {"case": case, "channel": channel, "seen": seen, "test": test, "kept": kept}
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def sha256(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def wait_for(condition: Callable[[], object], what: str, log: Path | None = None) -> object:
    """Poll ``condition`` until it returns something true; fail with the job's log if not."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.is_file() else "(no log)"
    pytest.fail(f"timed out waiting for {what}; log ends with:\n{tail}")


def is_zombie(pid: int) -> bool:
    """Whether ``pid`` has ended (gone, or ended but not reaped yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def assert_one_line_naming(error: pytest.ExceptionInfo, name: str) -> str:
    message = str(error.value)
    assert name in message, message
    assert "\n" not in message
    return message


def disc(shape, centre, radius):
    """Boolean disc of ``radius`` around ``centre``."""
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 <= radius**2


def assert_consecutive_int32(labels):
    """The label image is int32 and its nuclei are numbered 1..N without gaps."""
    assert labels.dtype == np.int32
    values = np.unique(labels)
    nuclei = values[values > 0]
    assert nuclei.tolist() == list(range(1, nuclei.size + 1))
    assert values.min() >= 0


def fresh_app_environment(tmp_path, monkeypatch):
    """For an app test: a fresh data folder, no default model, no samples; empty caches.

    A generator for a fixture to ``yield from``; the caches are emptied again after it.
    """
    import streamlit as st

    monkeypatch.setenv("NUCLEI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NUCLEI_DEFAULT_MODEL", str(tmp_path / "no-default-model.keras"))
    monkeypatch.setenv("NUCLEI_SAMPLES_DIR", str(tmp_path / "samples"))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path
    st.cache_resource.clear()
