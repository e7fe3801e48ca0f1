"""Tests of the whole-slide benchmark (``bench/slides.py``) on generated images."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from synthetic import make_nuclei

from bench import slides
from bench.sections import report


def test_doctests():
    failures, _ = doctest.testmod(slides)
    assert failures == 0


@pytest.fixture
def fluorescence_folder(tmp_path, write_png):
    folder = tmp_path / "images"
    for seed in range(2):
        image, _ = make_nuclei((300, 520), n_nuclei=20, seed=seed)
        write_png(folder / f"fluo_{seed}.png", image)
    stained = np.zeros((300, 300, 3), np.uint8)
    stained[..., 0] = np.random.default_rng(0).integers(100, 255, (300, 300))
    write_png(folder / "stained.png", stained)  # colour: left out
    write_png(folder / "small.png", np.zeros((100, 100), np.uint8))  # under one crop
    return folder


def test_patches_are_crops_of_the_fluorescence_images_only(fluorescence_folder):
    patches = slides.real_patches(fluorescence_folder)
    assert len(patches) == 2 * 2  # two crops of 256 x 256 in each 300 x 520 image
    assert all(patch.shape == (256, 256) and patch.dtype == np.uint8 for patch in patches)
    assert all(patch.max() == 255 for patch in patches)  # each image scaled by its percentiles


def test_a_folder_without_fluorescence_images_stops_the_run(tmp_path, write_png):
    write_png(tmp_path / "small.png", np.zeros((100, 100), np.uint8))
    with pytest.raises(SystemExit, match="no fluorescence image"):
        slides.real_patches(tmp_path)


def test_the_mosaic_is_a_tiled_bigtiff_of_the_crops(fluorescence_folder, tmp_path):
    patches = slides.real_patches(fluorescence_folder)
    target = slides.write_mosaic(patches, 1024, tmp_path / "mosaic.tif")
    with tifffile.TiffFile(target) as tiff:
        page = tiff.pages[0]
        assert tiff.is_bigtiff and page.is_tiled and (page.tilelength, page.tilewidth) == (256, 256)
        mosaic = page.asarray()
    assert mosaic.shape == (1024, 1024)
    turned = {
        np.ascontiguousarray(np.rot90(flipped, k)).tobytes()
        for patch in patches
        for flipped in (patch, patch[:, ::-1])
        for k in range(4)
    }
    tiles = [mosaic[top : top + 256, left : left + 256] for top in range(0, 1024, 256)
             for left in range(0, 1024, 256)]  # fmt: skip
    assert all(np.ascontiguousarray(tile).tobytes() in turned for tile in tiles)
    assert len({tile.tobytes() for tile in tiles}) > len(patches)  # turned and flipped in turn
    with pytest.raises(SystemExit, match="multiple of 256"):
        slides.write_mosaic(patches, 1000, tmp_path / "odd.tif")


def test_a_child_s_peak_memory_is_its_own(tmp_path):
    """Measured from a small process, as ``python -m bench.slides`` runs: Linux counts the
    peak of the process a child was spawned from in its ``ru_maxrss`` (vfork then exec),
    so this test's own pytest process, gigabytes after the app's load test, cannot be it."""
    code = "import numpy as np; a = np.ones(300 * 2**20, np.uint8); print(a.sum())"
    measure = (
        "import json, sys; from pathlib import Path; from bench import slides; "
        f"print(json.dumps(slides.run_child([sys.executable, '-c', {code!r}], "
        f"Path({str(tmp_path / 'log')!r}))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", measure], capture_output=True, text=True, timeout=120, check=True
    )
    exit_code, seconds, peak = json.loads(result.stdout.strip().splitlines()[-1])
    assert exit_code == 0 and seconds > 0
    assert 300 * 2**20 < peak < 2 * 2**30
    assert (tmp_path / "log").read_text().strip() == str(300 * 2**20)


ROWS = {
    "started_utc": "2026-11-29 06:00",
    "command": "python -m bench.slides",
    "loadavg": [1.0, 1.1, 1.2],
    "rows": [
        {"side": 8192, "megapixels": 67.1, "tiles": 64, "nuclei": 26000, "seconds_segment": 60.0,
         "seconds_per_megapixel": 0.894, "seconds_process": 66.0, "peak_rss_bytes": 1.3e9,
         "exit_code": 0},
        {"side": 32768, "megapixels": 1073.7, "exit_code": 1, "peak_rss_bytes": 3.5e9,
         "error": "killed"},
    ],
}  # fmt: skip


def test_the_section_has_a_row_per_size_and_says_when_a_size_failed():
    lines = slides.render_slides(ROWS)
    assert lines[0] == "## Whole slides"
    assert "| 8192 x 8192 | 67.1 | 64 | 26000 | 60.0 | 0.894 | 66.0 | 1.30 GB | yes |" in lines
    assert any(line.startswith("| 32768 x 32768 | 1073.7 | failed: killed") for line in lines)


def test_the_section_replaces_the_old_one_and_is_left_out_without_figures(monkeypatch, tmp_path):
    old = "# R\n\n## Speed\n\nfast\n\n## Whole slides\n\nold table\n\n## Notes\n\nn\n"
    new = slides.replace_section(old, slides.render_slides(ROWS))
    assert "old table" not in new and new.count("## Whole slides") == 1
    assert new.index("## Speed") < new.index("## Whole slides") < new.index("## Notes")
    monkeypatch.setattr(slides, "SLIDES_JSON", tmp_path / "missing.json")
    assert slides.render_slides() == []


def test_run_py_s_report_has_the_section_of_slides_json(monkeypatch, tmp_path):
    from nuclei_core.storage import atomic_write_json

    atomic_write_json(tmp_path / "slides.json", ROWS)
    monkeypatch.setattr(slides, "SLIDES_JSON", tmp_path / "slides.json")
    machine = {"gpus": [], "cpu_model": "cpu", "cpu_count": 2, "cpus_usable": 2,
               "memory_bytes": 2**30, "simd": [], "python": "3", "tensorflow": "2",
               "keras": "3", "numpy": "2"}  # fmt: skip
    load = {"loadavg": [0.1, 0.1, 0.1], "busy_processes": []}
    meta = {"command": "python -m bench.run", "started_utc": "now", "minutes": 1.0,
            "machine": machine, "load_start": load, "load_end": load}  # fmt: skip
    markdown = report.render_markdown({"meta": meta, "notes": ["n"]})
    assert "## Whole slides" in markdown and "| 8192 x 8192 | 67.1 |" in markdown
    assert markdown.index("## Whole slides") < markdown.index("## Notes")
