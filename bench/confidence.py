"""Choose a model's minimum nucleus confidence on the validation images of its data sets.

Usage::

    nice -n 10 python -m bench.confidence                  # the default model, both sets
    python -m bench.confidence --update-card               # and write the choice to its card
    python -m bench.confidence --limit 5                   # a quick try: 5 images of each set

The choice itself is the engine's (:func:`nuclei_core.evaluation.calibrate.calibrate`, what
``train``, ``finetune`` and ``python -m nuclei_core calibrate`` run); this experiment runs it
on the validation images of each ``--data`` set (the hash split's ``val``,
:func:`nuclei_core.datasets.folders.select_split`) and keeps every image's scores in
``bench/results/confidence.json`` and the table in ``bench/results/confidence.md``. Test
images are never read.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


from bench.tools.markdown import number, save_report, table
from bench.tools.paths import DEFAULT_DATA, MONUSEG_DATA, RESULTS, dataset_name, relative
from bench.tools.progress import log
from nuclei_core.evaluation.calibrate import LEVELS
from nuclei_core.locations import DEFAULT_MODEL


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.confidence", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="the model tuned")
    parser.add_argument(
        "--data", nargs="+", default=[str(DEFAULT_DATA), str(MONUSEG_DATA)], help="data sets"
    )
    parser.add_argument("--levels", type=float, nargs="+", default=list(LEVELS))
    parser.add_argument("--limit", type=int, default=None, help="first N images of each set")
    parser.add_argument("--out-dir", default=str(RESULTS), help="where the JSON and table go")
    parser.add_argument(
        "--update-card", action="store_true", help="write the chosen level to the model's card"
    )
    return parser


def markdown(report: dict) -> str:
    """The table of ``bench/results/confidence.md``: each set's scores at each level."""
    sets = list(report["means"])
    header = ["minimum confidence"]
    header += [f"{name} ({report['n_images'][name]}): DSB / F1" for name in sets]
    lines = []
    for level in report["levels"]:
        key = f"{level:g}"
        mark = " (chosen)" if level == report["chosen"] else ""
        cells = [
            f"{number(report['means'][name][key]['dsb_score'])} / "
            f"{number(report['means'][name][key]['f1'])}"
            for name in sets
        ]
        lines.append([f"{key}{mark}", *cells])
    intro = [
        "# Minimum nucleus confidence",
        "",
        f"Model `{report['model']}` ({report['backend']}), the validation images of each set, "
        "segmented as the app does (size estimated). A nucleus is kept only where its "
        "foreground probability reaches the level somewhere; 0 keeps every nucleus. Chosen: "
        "the highest mean of the sets' DSB scores.",
        "",
        f"Command: `{report['command']}`",
        "",
    ]
    return "\n".join(intro + table(header, lines)) + "\n"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from nuclei_core.datasets.folders import discover_dataset, select_split
    from nuclei_core.evaluation.calibrate import calibrate, write_calibration
    from nuclei_core.network.runtime import describe, load_inference_model
    from nuclei_core.segmentation.options import SegmentOptions

    model = load_inference_model(args.model)
    samples = {
        dataset_name(folder): select_split(discover_dataset(folder), "val")[: args.limit]
        for folder in args.data
    }
    calibration = calibrate(
        model, samples, SegmentOptions.for_model(args.model), args.levels, progress=log
    )
    report = {
        "model": relative(args.model),
        "backend": describe(model),
        "command": " ".join(["python -m bench.confidence", *(argv or sys.argv[1:])]),
        "levels": list(calibration.levels),
        "n_images": calibration.n_images,
        "means": calibration.means,
        "chosen": calibration.min_confidence,
        "images": calibration.images,
    }
    out_dir = Path(args.out_dir)
    save_report(out_dir, "confidence", report, markdown(report))
    log(f"chosen {report['chosen']:g}; wrote {out_dir / 'confidence.md'}")
    if args.update_card:
        write_calibration(args.model, calibration, report["command"])
        log(f"wrote postprocess.min_confidence = {report['chosen']:g} into the card")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
