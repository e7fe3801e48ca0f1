"""Post-processing levels by image kind: foreground threshold, seed height and minimum
confidence chosen on the validation images of each kind, scored on the test parts.

Usage::

    nice -n 10 python -m bench.levels                     # the default model, both sets
    python -m bench.levels --model runs/x/model.keras     # another model

Every validation and test image goes through the network once, as the app runs it (nucleus
size estimated, :meth:`~nuclei_core.segmentation.options.SegmentOptions.for_model`); its
nuclei are then found at every combination of the levels of :data:`GRID` and scored
(:func:`nuclei_core.evaluation.metrics.evaluate_labels`). The levels of each kind
(:func:`nuclei_core.segmentation.preprocess.image_kind`) are those with the highest mean
of the sets' validation DSB scores, each set counting once (as
:func:`nuclei_core.evaluation.calibrate.choose_level` does); the test images only receive
them. ``bench/results/levels.json`` keeps every image's scores, ``levels.md`` the tables.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from bench.tools.markdown import number, save_report, table
from bench.tools.paths import DEFAULT_DATA, MONUSEG_DATA, RESULTS, dataset_name, relative
from bench.tools.progress import log
from nuclei_core.locations import DEFAULT_MODEL

GRID = {
    "threshold": (0.3, 0.4, 0.5, 0.6),
    "peak_height": (0.1, 0.15, 0.2, 0.3),
    "min_confidence": (0.0, 0.95, 0.98, 0.985, 0.99, 0.995),
}
"""The levels tried; each combination is one key ``threshold/peak_height/min_confidence``."""


def combo_key(threshold: float, peak_height: float, min_confidence: float) -> str:
    """``combo_key(0.5, 0.2, 0.985)`` -> ``'0.5/0.2/0.985'``."""
    return f"{threshold:g}/{peak_height:g}/{min_confidence:g}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.levels", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="the model tuned")
    parser.add_argument(
        "--data", nargs="+", default=[str(DEFAULT_DATA), str(MONUSEG_DATA)], help="data sets"
    )
    parser.add_argument("--limit", type=int, default=None, help="first N images of each part")
    parser.add_argument("--out-dir", default=str(RESULTS), help="where the JSON and table go")
    return parser


def image_rows(model, model_path, folder, split, limit):
    """One row per image of ``split``: set, id, kind and the DSB score of every combination."""
    from nuclei_core.datasets.folders import discover_dataset, load_sample, select_split
    from nuclei_core.evaluation.calibrate import level_key, level_scores
    from nuclei_core.segmentation.options import SegmentOptions
    from nuclei_core.segmentation.preprocess import image_kind
    from nuclei_core.segmentation.segment import SizedPrediction, predict_with_size

    options = replace(SegmentOptions.for_model(model_path), min_confidence=0.0)
    samples = select_split(discover_dataset(folder), split)[:limit]
    rows = []
    for index, sample in enumerate(samples, start=1):
        image, truth = load_sample(sample)
        probabilities, used, found = predict_with_size(model, image, options)
        scores = {}
        for threshold in GRID["threshold"]:
            prediction = SizedPrediction(probabilities, replace(used, threshold=threshold), found)
            at = level_scores(prediction, truth, GRID["min_confidence"], GRID["peak_height"])
            for height, confidence in itertools.product(
                GRID["peak_height"], GRID["min_confidence"]
            ):
                dsb = at[level_key(height)][level_key(confidence)]["dsb_score"]
                scores[combo_key(threshold, height, confidence)] = round(dsb, 5)
        rows.append(
            {
                "data": dataset_name(folder),
                "split": split,
                "id": sample.id,
                "kind": image_kind(image),
                "scores": scores,
            }
        )
        log(f"{dataset_name(folder)} {split} {index}/{len(samples)} {sample.id}")
    return rows


def mean_by_set(rows, key) -> dict:
    """Each set's mean score at combination ``key`` over ``rows``."""
    sets = sorted({row["data"] for row in rows})
    return {
        name: float(np.mean([row["scores"][key] for row in rows if row["data"] == name]))
        for name in sets
    }


def choose(rows) -> str:
    """The combination with the highest mean of the sets' mean scores over ``rows``."""
    keys = list(rows[0]["scores"])
    return max(
        keys, key=lambda key: (np.mean(list(mean_by_set(rows, key).values())), -keys.index(key))
    )


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from nuclei_core.network.runtime import describe, load_inference_model
    from nuclei_core.segmentation.options import model_settings

    model = load_inference_model(args.model)
    rows = []
    for folder in args.data:
        for split in ("val", "test"):
            rows += image_rows(model, args.model, folder, split, args.limit)
    card = model_settings(args.model)
    default = combo_key(0.5, 0.2, card["min_confidence"])
    validation = [row for row in rows if row["split"] == "val"]
    overall = choose(validation)
    kinds = sorted({row["kind"] for row in rows})
    by_kind = {}
    for kind in kinds:
        chosen_rows = [row for row in validation if row["kind"] == kind]
        by_kind[kind] = {
            "n_val": len(chosen_rows),
            "chosen": choose(chosen_rows) if chosen_rows else overall,
        }
    report = {
        "model": relative(args.model),
        "backend": describe(model),
        "command": " ".join(["python -m bench.levels", *(argv or sys.argv[1:])]),
        "grid": GRID,
        "default": default,
        "overall": overall,
        "by_kind": by_kind,
        "images": rows,
    }
    out_dir = Path(args.out_dir)
    save_report(out_dir, "levels", report, markdown(report))
    log(f"wrote {out_dir / 'levels.md'}")
    return 0


def _cells(rows, key):
    return [number(float(np.mean([row["scores"][key] for row in rows])))] if rows else ["-"]


def markdown(report: dict) -> str:
    """Per set, split and kind: the DSB score at the card's levels, at the levels chosen for
    all images, and at the levels chosen for the image's kind."""
    rows = report["images"]
    header = ["set", "part", "kind", "images", "card's levels", "one choice", "by kind"]
    lines = []
    groups = sorted({(row["data"], row["split"], row["kind"]) for row in rows})
    for name, split, kind in groups:
        chosen = [
            row for row in rows if (row["data"], row["split"], row["kind"]) == (name, split, kind)
        ]
        by_kind = report["by_kind"][kind]["chosen"]
        by_kind_score = float(np.mean([row["scores"][by_kind] for row in chosen]))
        lines.append(
            [
                name,
                split,
                kind,
                str(len(chosen)),
                *_cells(chosen, report["default"]),
                *_cells(chosen, report["overall"]),
                number(by_kind_score),
            ]
        )
    choices = [
        f"- card's levels (threshold/seed height/minimum confidence): `{report['default']}`",
        f"- one choice for every image: `{report['overall']}`",
    ]
    choices += [
        f"- {kind} (chosen on {entry['n_val']} validation images): `{entry['chosen']}`"
        for kind, entry in report["by_kind"].items()
    ]
    intro = [
        "# Post-processing levels by image kind",
        "",
        f"Model `{report['model']}` ({report['backend']}). Command: `{report['command']}`",
        "",
        *choices,
        "",
    ]
    return "\n".join(intro + table(header, lines)) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
