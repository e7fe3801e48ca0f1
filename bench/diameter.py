"""Does the expected nucleus diameter help images of unusual magnification?

Usage::

    nice -n 10 python -m bench.diameter            # the whole test splits
    python -m bench.diameter --split val           # the validation splits
    python -m bench.diameter --limit 5             # a quick try: 5 images of each set

Every test image of the DSB 2018 stage1_train set (the hash split's ``test``,
:func:`nuclei_core.datasets.folders.select_split`) and of the MoNuSeg tiles (their test
split) is rescaled by each ``--magnifications`` factor (default 0.5, 1 and 2; the
image by area or linear interpolation, its labels by nearest neighbour,
:mod:`nuclei_core.segmentation.diameter`) to stand for another microscope magnification, and
segmented by the default model three times: without a diameter, with the diameter
estimated from the image (``diameter="auto"``, what the app and the CLI do,
:func:`nuclei_core.segmentation.segment.estimate_diameter`), and with the true one (the median
equivalent diameter of the rescaled labels, kept within the range the model accepts,
:data:`nuclei_core.segmentation.diameter.SCALE_RANGE`). Each is scored with
:func:`nuclei_core.evaluation.metrics.evaluate_labels`. ``bench/results/diameter.json`` gets every
image's scores and the means; ``bench/results/diameter.md`` the table. Both are rewritten
after every image, so a stopped run keeps what it measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from bench.tools.markdown import number, save_report, table
from bench.tools.paths import DEFAULT_DATA, MONUSEG_DATA, RESULTS, dataset_name, relative
from bench.tools.progress import log
from nuclei_core.locations import DEFAULT_MODEL

SCORES = ("dsb_score", "f1", "foreground_iou", "abs_count_error")
SCORE_TITLES = ("DSB score", "F1 @ 0.5", "foreground IoU", "count error")
MODES = ("without", "estimated", "with")
"""Each image is segmented without a diameter, with the estimated one, with the true one."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.diameter", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="the model scored")
    parser.add_argument(
        "--data", nargs="+", default=[str(DEFAULT_DATA), str(MONUSEG_DATA)], help="data sets"
    )
    parser.add_argument(
        "--magnifications", type=float, nargs="+", default=[0.5, 1.0, 2.0], help="factors"
    )
    parser.add_argument("--split", default="test", choices=["val", "test"], help="split scored")
    parser.add_argument("--limit", type=int, default=None, help="first N images of each set")
    parser.add_argument("--out-dir", default=str(RESULTS), help="where the JSON and table go")
    return parser


def true_diameter(labels, model_diameter: float) -> tuple[float, float]:
    """``(measured, used)``: the labels' median diameter, and the nearest one the model takes.

    Examples
    --------
    >>> labels = np.zeros((40, 40), np.int32); labels[:2, :2] = 1
    >>> [round(value, 2) for value in true_diameter(labels, 20.0)]
    [2.26, 5.0]
    """
    from nuclei_core.segmentation.diameter import SCALE_RANGE, median_diameter

    measured = median_diameter(labels)
    low, high = model_diameter / SCALE_RANGE[1], model_diameter / SCALE_RANGE[0]
    return measured, float(np.clip(measured, low, high))


def score_image(model, image, truth, options) -> dict:
    """The scores of one segmentation (:data:`SCORES`), its seconds and the diameter used."""
    from nuclei_core.evaluation.metrics import evaluate_labels
    from nuclei_core.segmentation.segment import segment_image

    started = time.perf_counter()
    found = segment_image(model, image, options)
    seconds = time.perf_counter() - started
    scores = evaluate_labels(truth, found.labels).as_dict()
    return {key: scores[key] for key in SCORES} | {
        "seconds": round(seconds, 2),
        "diameter": None if found.diameter is None else round(found.diameter, 2),
    }


def image_rows(model, settings: dict, sample, magnifications) -> list[dict]:
    """One row per magnification of one sample: scores without and with the diameter.

    ``settings`` are the model card's (:func:`nuclei_core.segmentation.options.model_settings`).
    """
    from nuclei_core.datasets.folders import load_sample
    from nuclei_core.segmentation.diameter import labels_to_shape, resize_image
    from nuclei_core.segmentation.options import AUTO, SegmentOptions
    from nuclei_core.segmentation.preprocess import image_kind

    image, labels = load_sample(sample)
    rows = []
    for magnification in magnifications:
        shown = resize_image(image, magnification)
        truth = labels_to_shape(labels, shown.shape)
        measured, used = true_diameter(truth, settings["model_diameter"])
        options = SegmentOptions(diameter=used, **settings)
        estimated = SegmentOptions(diameter=AUTO, **settings)
        rows.append(
            {
                "id": sample.id,
                "kind": image_kind(image),
                "magnification": magnification,
                "shape": list(shown.shape[:2]),
                "true_diameter": round(measured, 2),
                "diameter": round(used, 2),
                "scale": round(options.scale, 3),
                "without": score_image(model, shown, truth, SegmentOptions(**settings)),
                "estimated": score_image(model, shown, truth, estimated),
                "with": score_image(model, shown, truth, options),
            }
        )
    return rows


def summary(rows) -> list[dict]:
    """Mean scores per (data set, magnification) of every mode (:data:`MODES`)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["data"], row["magnification"]), []).append(row)
    means = []
    for (data, magnification), chosen in sorted(groups.items()):
        entry = {"data": data, "magnification": magnification, "n_images": len(chosen)}
        entry["clamped"] = sum(row["diameter"] != row["true_diameter"] for row in chosen)
        entry["second_pass"] = sum(row["estimated"].get("diameter") is not None for row in chosen)
        for mode in MODES:
            values = {key: [row[mode][key] for row in chosen] for key in SCORES}
            entry[mode] = {key: float(np.mean(value)) for key, value in values.items()}
        means.append(entry)
    return means


def markdown(report: dict) -> str:
    """The table of ``bench/results/diameter.md``: each score without → estimated → true
    diameter."""
    header = ["data", "magnification", "images", "rescaled by the estimate", *SCORE_TITLES]
    lines = []
    for entry in report["summary"]:
        cells = [" → ".join(number(entry[mode][key]) for mode in MODES) for key in SCORES]
        clamped = f" ({entry['clamped']} clamped)" if entry["clamped"] else ""
        lines.append(
            [
                entry["data"],
                f"{entry['magnification']:g}x",
                f"{entry['n_images']}{clamped}",
                str(entry["second_pass"]),
                *cells,
            ]
        )
    intro = [
        "# Expected nucleus diameter",
        "",
        f"Model `{report['model']}` (trained at a nucleus diameter of "
        f"{report['model_diameter']:g} px; its card's minimum confidence "
        f"{report.get('min_confidence', 0.0):g}). Each cell: mean over the {report['split']} "
        "images without a diameter → with the diameter estimated from the image (the app's "
        "and the CLI's default) → with the true one (the median diameter of the rescaled labels; "
        "'clamped' images had one outside the range the model accepts, and got the nearest "
        "allowed). 'Rescaled by the estimate': images whose estimated diameter took a second "
        "network pass at the model's size. Count error: mean absolute difference in nuclei "
        "per image.",
        "",
        f"Command: `{report['command']}`",
        "",
    ]
    return "\n".join(intro + table(header, lines)) + "\n"


def save(out_dir: Path, report: dict) -> None:
    report["summary"] = summary(report["images"])
    save_report(out_dir, "diameter", report, markdown(report))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from nuclei_core.datasets.folders import discover_dataset, select_split
    from nuclei_core.network.runtime import describe, load_inference_model
    from nuclei_core.segmentation.options import model_settings

    model = load_inference_model(args.model)
    settings = model_settings(args.model)
    out_dir = Path(args.out_dir)
    report = {
        "model": relative(args.model),
        "backend": describe(model),
        "model_diameter": settings["model_diameter"],
        "min_confidence": settings["min_confidence"],
        "command": " ".join(["python -m bench.diameter", *(argv or sys.argv[1:])]),
        "split": args.split,
        "images": [],
    }
    for folder in args.data:
        samples = select_split(discover_dataset(folder), args.split)[: args.limit]
        for index, sample in enumerate(samples, start=1):
            rows = image_rows(model, settings, sample, args.magnifications)
            report["images"] += [{"data": dataset_name(folder)} | row for row in rows]
            save(out_dir, report)
            log(f"{dataset_name(folder)} {index}/{len(samples)} {sample.id}")
    log(f"wrote {out_dir / 'diameter.json'} and {out_dir / 'diameter.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
