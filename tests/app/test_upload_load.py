"""Twenty maximum-size uploads in a row on the Segment page (AppTest, the tiny model): the
page answers every one, the server's memory stays flat across them (no upload leaves
anything behind but the session's latest result) and goes back near its level before
them once the session ends (issue 27's bounded load). 15 to 30 s an upload on 2 cores."""

from __future__ import annotations

import gc
import os

import numpy as np
import psutil
import pytest
from support import png_bytes, texts
from support import start_app as start

from ui import uploads

UPLOADS = int(os.environ.get("NUCLEI_LOAD_UPLOADS", "20"))
TIMEOUT = 600  # seconds per script run, for a loaded machine
FLAT_MB = 200  # how far an upload may move the memory beyond the second one's level
BACK_MB = 300  # how far above its level before the uploads the memory may stay after them


def big_image(seed: int) -> bytes:
    """A 4096 x 4096 grey image (the page's limit): 2,000 bright squares on a dim background
    (noise instead made the untrained model find 120,000 nuclei, as no real image does)."""
    side = uploads.SEGMENT_SIDE
    generator = np.random.default_rng(seed)
    image = np.full((side, side), 20, np.uint8)
    for row, col in generator.integers(20, side - 20, (2000, 2)):
        image[row - 7 : row + 8, col - 7 : col + 8] = 200  # 15 x 15 pixels, nucleus-sized
    return png_bytes(image)


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def segment(at, name: str, data: bytes) -> None:
    at.file_uploader(key="segment_upload").upload(name, data, "image/png")
    at.run(timeout=TIMEOUT)
    assert not at.exception and not at.error, texts(at.error)
    assert f"{name}: " in texts(at.caption)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 20 x 4096 x 4096: 5 to 10 minutes on 2 cores
@pytest.mark.usefixtures("active_model")
def test_twenty_maximum_size_uploads_leave_the_server_up_and_its_memory_flat():
    warm = start("pages/segment.py", TIMEOUT)
    segment(warm, "small.png", png_bytes(np.zeros((256, 256), np.uint8)))  # loads the model
    del warm
    before = rss_mb()

    at = start("pages/segment.py", TIMEOUT)
    levels = []
    for index in range(UPLOADS):
        segment(at, f"big_{index}.png", big_image(index))
        assert "4096 x 4096 pixels" in texts(at.caption)
        levels.append(rss_mb())
    del at
    after = rss_mb()
    print(f"memory (MB): before {before:.0f}, uploads {[round(level) for level in levels]}, "
          f"after {after:.0f}")  # fmt: skip
    assert max(levels[1:]) - levels[1] < FLAT_MB, levels
    assert after - before < BACK_MB, (before, after)
