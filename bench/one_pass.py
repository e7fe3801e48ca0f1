"""When is a second, rescaled network pass worth its time? The size estimate's tolerance.

Usage::

    nice -n 10 python -m bench.one_pass                 # validation splits of every set
    python -m bench.one_pass --limit 5                  # a quick try

With ``diameter="auto"`` (the app's and the CLI's default) every image is first
segmented as it is; the median diameter of the nuclei found
(:func:`nuclei_core.segmentation.segment.estimate_diameter`) decides whether a second pass
runs with the image rescaled to the model's nucleus size: only when the estimate is
further than ``AUTO_TOLERANCE`` (a natural-log ratio) from the model's diameter. This
script segments the validation images of every set with the default model at each
``--tolerances`` value (``0.1`` is about 10 %, ``0.336`` is 1.4x) and reports, per set
and image kind, the mean DSB score, how many images took a second pass and the seconds
per image. The sets: the DSB 2018 ``stage1_train`` and MoNuSeg validation splits, and
the MoNuSeg validation tiles at half size (a 20x scanner's view,
``python -m bench.tools.half_size``), written to ``bench/work/`` when missing.
Results: ``bench/results/one_pass.json`` and ``.md``, rewritten after every set.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from bench.tools.half_size import write_half_size
from bench.tools.markdown import number, save_report, table
from bench.tools.paths import BENCH, DEFAULT_DATA, MONUSEG_DATA, RESULTS, relative
from bench.tools.progress import log
from nuclei_core.locations import DEFAULT_MODEL

TOLERANCES = (0.1, round(math.log(1.2), 3), round(math.log(1.4), 3))
HALF_SIZE_VIEW = BENCH / "work" / "monuseg2018_20x_val"


def sets(limit: int | None) -> dict:
    """``{name: samples}``: the validation images of every set (the 20x view made if missing)."""
    from nuclei_core.datasets.folders import discover_dataset, select_split

    if not (HALF_SIZE_VIEW / "inputs").is_dir():
        write_half_size(MONUSEG_DATA, "val", HALF_SIZE_VIEW)
    chosen = {
        "dsb2018 val": select_split(discover_dataset(DEFAULT_DATA), "val"),
        "monuseg 40x val": select_split(discover_dataset(MONUSEG_DATA), "val"),
        "monuseg 20x val": select_split(discover_dataset(HALF_SIZE_VIEW), "all"),
    }
    return {name: samples[:limit] if limit else samples for name, samples in chosen.items()}


def score_set(model, options, samples, tolerance: float, passes: dict) -> list[dict]:
    """Every image's DSB score, kind, seconds and whether a second pass ran, at ``tolerance``.

    ``passes`` keeps each image's network passes by diameter: the network's output does not
    depend on the tolerance, so a later tolerance reuses them, and its seconds count each
    reused pass at the time it took when it ran.
    """
    from nuclei_core.datasets.folders import load_sample
    from nuclei_core.evaluation.metrics import evaluate_labels
    from nuclei_core.segmentation import segment
    from nuclei_core.segmentation.preprocess import image_kind

    network_pass = segment.predict_image
    reused = []

    def remembered(model, image, options, progress=None):
        key = (sample.id, options.diameter)
        if key in passes:
            reused.append(passes[key][1])
        else:
            started = time.perf_counter()
            probabilities = network_pass(model, image, options, progress)
            passes[key] = probabilities, time.perf_counter() - started
        return passes[key][0]

    kept, segment.AUTO_TOLERANCE = segment.AUTO_TOLERANCE, tolerance
    segment.predict_image = remembered
    try:
        rows = []
        for sample in samples:
            image, truth = load_sample(sample)
            reused.clear()
            started = time.perf_counter()
            result = segment.segment_image(model, image, options)
            seconds = time.perf_counter() - started + sum(reused)
            rows.append(
                {
                    "id": sample.id,
                    "kind": image_kind(image),
                    "dsb_score": evaluate_labels(truth, result.labels).dsb_score,
                    "second_pass": result.diameter is not None,
                    "seconds": round(seconds, 3),
                }
            )
        return rows
    finally:
        segment.AUTO_TOLERANCE = kept
        segment.predict_image = network_pass


def summary(rows: list[dict]) -> dict:
    """Means over ``rows``, in all and by kind."""
    groups = {"all": rows}
    for row in rows:
        groups.setdefault(row["kind"], []).append(row)
    return {
        name: {
            "n_images": len(items),
            "mean_dsb_score": round(float(np.mean([item["dsb_score"] for item in items])), 4),
            "second_passes": sum(item["second_pass"] for item in items),
            "seconds_per_image": round(float(np.mean([item["seconds"] for item in items])), 3),
        }
        for name, items in groups.items()
    }


def report_text(report: dict) -> str:
    """The markdown table of ``report``: one row per set, kind and tolerance."""
    rows = []
    for name, by_tolerance in report["sets"].items():
        for tolerance, result in by_tolerance.items():
            for group, figures in result["summary"].items():
                rows.append(
                    [
                        name,
                        group,
                        f"{float(tolerance):g} ({math.exp(float(tolerance)):.2f}x)",
                        figures["n_images"],
                        number(figures["mean_dsb_score"], 4),
                        figures["second_passes"],
                        number(figures["seconds_per_image"]),
                    ]
                )
    header = ["set", "kind", "tolerance", "images", "DSB", "second passes", "s / image"]
    lines = [
        "# The size estimate's tolerance: one network pass or two",
        "",
        f"`{report['command']}`: {report['machine']['cpu_model']}, "
        f"{report['machine']['cpu_count']} cores; load average at the start "
        f"{report['load_at_start']['loadavg'][0]} (other work ran beside it).",
        "",
        *table(header, rows),
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.one_pass", description=__doc__)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--tolerances", type=float, nargs="+", default=list(TOLERANCES))
    parser.add_argument("--limit", type=int, default=None, help="images per set (a quick try)")
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)

    from bench.tools.machine import load_snapshot, machine_info
    from nuclei_core.network.runtime import load_inference_model
    from nuclei_core.segmentation.options import SegmentOptions

    model = load_inference_model(args.model)
    options = SegmentOptions.for_model(args.model)
    report = {
        "command": " ".join(["python -m bench.one_pass", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
        "load_at_start": load_snapshot(),
        "model": relative(Path(args.model)),
        "sets": {},
    }
    for name, samples in sets(args.limit).items():
        report["sets"][name] = {}
        passes = {}  # this set's network passes, shared by the tolerances
        for tolerance in args.tolerances:
            log(f"one pass: {name}, tolerance {tolerance:g}, {len(samples)} images")
            rows = score_set(model, options, samples, tolerance, passes)
            report["sets"][name][str(tolerance)] = {"summary": summary(rows), "images": rows}
        save_report(args.out_dir, "one_pass", report, report_text(report))
    print(report_text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
