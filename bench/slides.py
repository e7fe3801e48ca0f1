"""Whole slides in bounded memory: peak memory and seconds per megapixel, size by size.

Usage::

    python -m bench.slides                        # 8192², 16384² and 32768²
    python -m bench.slides --sizes 2048 4096 --out-dir /tmp/slides   # quick check

For each size, a mosaic of real nuclei images (the fluorescence images of
``sample_images/inputs``, or of ``--data``; 256 x 256 crops, each scaled by its own
percentiles, turned and flipped in turn) is written as a tiled BigTIFF one tile at a
time, so writing it holds one tile in memory.  Then ``python -m nuclei_core predict
--tiled`` segments it tile by tile in a child process (images over
:data:`nuclei_core.slides.reader.LARGE_IMAGE_PIXELS` take that path without ``--tiled``, smaller
quick-check sizes need it); the child's peak resident memory
(``ru_maxrss`` from ``os.wait4``: the whole process, with Python, TensorFlow or OpenVINO
and the model) and times are recorded.  The figures go to ``slides.json`` and to the
"Whole slides" section of ``RESULTS.md`` in ``--out-dir`` (``bench/results/`` by default);
``bench/sections/report.py`` renders the same section from ``bench/results/slides.json`` when
``python -m bench.run`` writes the whole report.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.tools.markdown import number, replace_section, table
from bench.tools.paths import RESULTS, relative, saved_figures

SIZES = (8192, 16384, 32768)
"""Sides of the mosaics the issue asks for."""
PATCH = 256
"""Side of one crop of a real image in the mosaic (and of the BigTIFF's tiles)."""
MEMORY_LIMIT_BYTES = 3 * 10**9
"""The bound the issue sets on the peak resident memory."""
SLIDES_JSON = RESULTS / "slides.json"
"""Where :func:`render_slides` finds the figures when it is given none."""
HEADING = "## Whole slides"
_RESULT_LINE = re.compile(r": (\d+) nuclei \((\d+) x (\d+) in (\d+) tiles.*?, ([\d.]+) s;")


def real_patches(folder, size: int = PATCH) -> list[np.ndarray]:
    """256 x 256 uint8 crops of every fluorescence image of ``folder``, each scaled alone.

    Every crop of an image is taken on a grid; an image smaller than a crop is left out.
    """
    from nuclei_core.datasets.folders import IMAGE_SUFFIXES
    from nuclei_core.io.imread import read_image
    from nuclei_core.segmentation.preprocess import grey, image_kind, normalise

    patches = []
    for path in sorted(Path(folder).iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        image = read_image(path)
        if image_kind(image) != "fluorescence" or min(image.shape[:2]) < size:
            continue
        scaled = (grey(normalise(image)) * 255 + 0.5).astype(np.uint8)
        for top in range(0, scaled.shape[0] - size + 1, size):
            for left in range(0, scaled.shape[1] - size + 1, size):
                patches.append(scaled[top : top + size, left : left + size])
    if not patches:
        raise SystemExit(f"{folder}: no fluorescence image of at least {size} x {size} pixels")
    return patches


def mosaic_tiles(patches: list[np.ndarray], side: int):
    """The tiles of a ``side`` x ``side`` mosaic, row by row, one crop at a time.

    Examples
    --------
    >>> tiles = list(mosaic_tiles([np.zeros((256, 256), np.uint8)], 512))
    >>> len(tiles), tiles[0].shape
    (4, (256, 256))
    """
    count = side // PATCH
    for row in range(count):
        for column in range(count):
            index = (row * 7919 + column * 104729) % len(patches)
            turned = np.rot90(patches[index], (row + column) % 4)
            yield np.ascontiguousarray(turned[:, ::-1] if (row * count + column) % 3 else turned)


def write_mosaic(patches: list[np.ndarray], side: int, path) -> Path:
    """A tiled (256 x 256), uncompressed BigTIFF mosaic written one tile at a time.

    Examples
    --------
    >>> import tempfile, tifffile
    >>> target = write_mosaic([np.ones((256, 256), np.uint8)], 512,
    ...                       Path(tempfile.mkdtemp()) / "m.tif")
    >>> tifffile.imread(target).shape
    (512, 512)
    """
    import tifffile

    if side % PATCH:
        raise SystemExit(f"--sizes: {side} is not a multiple of {PATCH}")
    tifffile.imwrite(
        path,
        mosaic_tiles(patches, side),
        shape=(side, side),
        dtype=np.uint8,
        tile=(PATCH, PATCH),
        bigtiff=True,
        photometric="minisblack",
    )
    return Path(path)


def run_child(command: list[str], log_path: Path) -> tuple[int, float, int]:
    """Run ``command``; its exit code, wall seconds and peak resident memory (bytes).

    The peak is the child's own ``ru_maxrss`` (``os.wait4``), not that of this process.
    """
    started = time.perf_counter()
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, time.perf_counter() - started, int(usage.ru_maxrss) * 1024


def measure_size(patches, side: int, model: str | None, folder: Path) -> dict:
    """Write one mosaic, segment it end to end in a child process; its row of figures."""
    mosaic = folder / f"mosaic_{side}.tif"
    started = time.perf_counter()
    write_mosaic(patches, side, mosaic)
    written = time.perf_counter() - started
    command = [sys.executable, "-m", "nuclei_core", "predict", str(mosaic), "--tiled"]
    command += ["--out", str(folder / f"out_{side}")] + (["--model", model] if model else [])
    log_path = folder / f"predict_{side}.log"
    code, wall, peak = run_child(command, log_path)
    output = log_path.read_text()
    found = _RESULT_LINE.search(output)
    megapixels = side * side / 1e6
    row = {
        "side": side,
        "megapixels": round(megapixels, 1),
        "file_bytes": mosaic.stat().st_size,
        "seconds_write_mosaic": round(written, 1),
        "exit_code": code,
        "seconds_process": round(wall, 1),
        "peak_rss_bytes": peak,
        "command": shlex.join(["python", *command[1:]]),
    }
    if code != 0 or found is None:
        row["error"] = " | ".join(output.strip().splitlines()[-3:])
        return row
    seconds = float(found.group(5))
    row.update(
        nuclei=int(found.group(1)),
        tiles=int(found.group(4)),
        seconds_segment=round(seconds, 1),
        seconds_per_megapixel=round(seconds / megapixels, 3),
        seconds_process_per_megapixel=round(wall / megapixels, 3),
    )
    mosaic.unlink()
    return row


def _gigabytes(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e9:.2f} GB"


def slides_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The Whole slides table: a line per mosaic size.

    Examples
    --------
    >>> header, body = slides_table([{"side": 2048, "megapixels": 4.2, "tiles": 4,
    ...     "nuclei": 900, "seconds_segment": 2.1, "seconds_per_megapixel": 0.5,
    ...     "seconds_process": 9.0, "peak_rss_bytes": 1.2e9, "exit_code": 0}])
    >>> body[0][0], body[0][-2], body[0][-1]
    ('2048 x 2048', '1.20 GB', 'yes')
    """
    header = ["image", "megapixels", "tiles", "nuclei", "segment s", "s / megapixel"]
    header += ["process s", "peak memory", "under 3 GB"]
    body = []
    for row in rows:
        cells = [f"{row['side']} x {row['side']}", number(row["megapixels"], 1)]
        if row.get("error"):
            body.append(cells + [f"failed: {row['error']}"] + [""] * 6)
            continue
        cells += [row["tiles"], row["nuclei"], number(row["seconds_segment"], 1)]
        cells += [number(row["seconds_per_megapixel"], 3), number(row["seconds_process"], 1)]
        cells += [_gigabytes(row["peak_rss_bytes"])]
        cells += ["yes" if row["peak_rss_bytes"] < MEMORY_LIMIT_BYTES else "**no**"]
        body.append(cells)
    return header, body


def render_slides(slides: dict | None = None) -> list[str]:
    """The "Whole slides" section; from ``bench/results/slides.json`` when ``slides`` is None."""
    slides = saved_figures(SLIDES_JSON) if slides is None else slides
    if not slides:
        return []
    lines = [HEADING, ""] + table(*slides_table(slides["rows"])) + [""]
    return lines + [
        f"Measured {slides['started_utc']} UTC with `{slides['command']}` (load average at the "
        f"start {', '.join(map(str, slides['loadavg']))}). Each image is a mosaic of 256 x 256 "
        "crops of real fluorescence images, written as a tiled, uncompressed BigTIFF; "
        "`python -m nuclei_core predict` segments it in a child process, tile by tile "
        "(1024-pixel tiles, 128-pixel margins, labels to OME-Zarr, CSV as the tiles finish). "
        "Segment s: the time `predict` reports for the image (reading, global normalisation, "
        "network, watershed, stitching, measurements, outputs); process s also counts Python "
        "and TensorFlow start-up and the model load. Peak memory: the child's `ru_maxrss`.",
        "",
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.slides", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="mosaic sides")
    parser.add_argument(
        "--data", default=None, help="folder of real images (default: sample_images/inputs)"
    )
    parser.add_argument("--model", default=None, help="model file (default: the bundled one)")
    parser.add_argument(
        "--out-dir", default=str(RESULTS), help="where slides.json and RESULTS.md go"
    )
    parser.add_argument(
        "--work-dir", default=None, help="where the mosaics are written (default: a temp folder)"
    )
    return parser


def main(argv=None) -> int:
    from bench.tools.progress import log
    from nuclei_core.locations import sample_folder
    from nuclei_core.storage import atomic_write_json, atomic_write_text

    args = build_parser().parse_args(argv)
    data = Path(args.data) if args.data else sample_folder() / "inputs"
    patches = real_patches(data)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    slides = {
        "started_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "command": shlex.join(
            ["python", "-m", "bench.slides", *(sys.argv[1:] if argv is None else argv)]
        ),
        "data": relative(data),
        "patches": len(patches),
        "loadavg": [round(value, 2) for value in os.getloadavg()],
        "rows": [],
    }
    with tempfile.TemporaryDirectory(prefix="nuclei_slides_", dir=args.work_dir) as folder:
        for side in args.sizes:
            log(f"slides: {side} x {side}")
            row = measure_size(patches, side, args.model, Path(folder))
            slides["rows"].append(row)
            log(f"slides: {row}")
            atomic_write_json(out_dir / "slides.json", slides)
    results = out_dir / "RESULTS.md"
    existing = results.read_text() if results.is_file() else "# Benchmark results\n"
    atomic_write_text(results, replace_section(existing, render_slides(slides)))
    log(f"wrote {out_dir / 'slides.json'} and the Whole slides section of {results}")
    return 1 if any(row.get("error") for row in slides["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
