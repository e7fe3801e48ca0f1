"""What one correction costs on the wire: the labels the annotator is sent after an edit.

Usage::

    python -m bench.annotator_payload               # 1024, 2048 and 4096 pixels a side
    python -m bench.annotator_payload --sides 512   # other sizes

For each side a label image is made of discs on a grid (one nucleus in every 24 x 24
pixels, as dense as a DSB fluorescence image), the annotator's
:class:`~ui.annotator.gestures.Correction` sends it once, then one nucleus is added with
the outline tool. The report gives the bytes and the seconds of what goes to the browser
after the edit: the patch of the changed box (now) and the whole label image (before).
``bench/results/annotator_payload.json`` and ``.md`` get the figures.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.tools.markdown import number, save_report, table
from bench.tools.paths import RESULTS
from ui.annotator.gestures import Correction, labels_data_url

SIDES = (1024, 2048, 4096)
SPACING = 24


def grid_of_nuclei(side: int) -> np.ndarray:
    """Discs of radius 8 every :data:`SPACING` pixels, each its own id."""
    rows, cols = np.mgrid[0:side, 0:side]
    centre_rows = (rows // SPACING) * SPACING + SPACING // 2
    centre_cols = (cols // SPACING) * SPACING + SPACING // 2
    inside = (rows - centre_rows) ** 2 + (cols - centre_cols) ** 2 <= 64
    ids = (rows // SPACING) * (side // SPACING + 1) + cols // SPACING + 1
    return np.where(inside, ids, 0).astype(np.int32)


def timed(call):
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


def measure(side: int) -> dict:
    labels = grid_of_nuclei(side)
    correction = Correction.start(labels, np.zeros((side, side), np.uint8))
    correction.component_data()  # the first send: the whole label image
    # a new nucleus between four others (the gap at the corner of four grid cells)
    gap = SPACING * (side // SPACING // 2)
    corners = [[gap - 3, gap - 3], [gap - 3, gap + 3], [gap + 3, gap + 3], [gap + 3, gap - 3]]
    assert correction.handle({"tool": "outline", "points": corners, "seq": 1}) is None
    patched, patch_s = timed(lambda: correction.component_data(with_image=False))
    whole, whole_s = timed(lambda: labels_data_url(correction.labels))
    boxes = patched["patch"]["boxes"]
    return {
        "side": side,
        "nuclei": int(correction.history.count),
        "patch_boxes": [[box["height"], box["width"]] for box in boxes],
        "patch_bytes": sum(len(box["labels"]) for box in boxes),
        "patch_seconds": round(patch_s, 4),
        "whole_bytes": len(whole),
        "whole_seconds": round(whole_s, 4),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="+", default=list(SIDES))
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    rows = [measure(side) for side in args.sides]
    lines = [
        "# The annotator's labels after one edit: the changed box against the whole image",
        "",
        "`python -m bench.annotator_payload` (one nucleus added with the outline tool; "
        "bytes of the PNG data URL sent to the browser, seconds to make it in Python); "
        f"load average at the start {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores.",
        "",
        *table(
            ["side", "nuclei", "boxes", "patch bytes", "patch s", "whole bytes", "whole s"],
            [
                [
                    row["side"],
                    row["nuclei"],
                    " + ".join(f"{height} x {width}" for height, width in row["patch_boxes"]),
                    row["patch_bytes"],
                    number(row["patch_seconds"]),
                    row["whole_bytes"],
                    number(row["whole_seconds"]),
                ]
                for row in rows
            ],
        ),
    ]
    save_report(args.out_dir, "annotator_payload", {"rows": rows}, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
