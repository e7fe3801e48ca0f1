"""Choose a model's minimum nucleus confidence on the validation images of its data sets.

Usage::

    nice -n 10 python bench/confidence.py                  # the default model, both sets
    python bench/confidence.py --update-card               # and write the choice to its card
    python bench/confidence.py --limit 5                   # a quick try: 5 images of each set

A nucleus is kept only where the network's foreground probability reaches the
minimum confidence somewhere inside it (:func:`nuclei_core.postprocess.keep_confident`),
the object-level counterpart of the pixel threshold, like StarDist's object probability
threshold, which StarDist also optimises on validation images. How sure a network is
depends on the network, so the level is chosen per model and kept in its card
(``postprocess.min_confidence``, read by :func:`nuclei_core.segment.model_settings`).

Every validation image of each ``--data`` set (the hash split's ``val``,
:func:`nuclei_core.datasets.select_split`) goes through the network once as the app
runs it (size estimated, :meth:`nuclei_core.segment.SegmentOptions.for_model`); its
nuclei are then found at every ``--levels`` value and scored
(:func:`nuclei_core.metrics.evaluate_labels`). The chosen level has the highest mean
of the sets' DSB scores, each set counting once however many images it has (the lowest
such level on a tie). ``bench/confidence.json`` gets every image's scores and the
means; ``bench/confidence.md`` the table. Test images are never read.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.markdown import number, save_report, table  # noqa: E402
from bench.paths import BENCH, DEFAULT_DATA, MONUSEG_DATA, dataset_name, relative  # noqa: E402
from bench.progress import log  # noqa: E402
from nuclei_core.locations import DEFAULT_MODEL  # noqa: E402

LEVELS = (0.0, 0.9, 0.95, 0.97, 0.98, 0.985, 0.99)
SCORES = ("dsb_score", "f1", "foreground_iou")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python bench/confidence.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="the model tuned")
    parser.add_argument(
        "--data", nargs="+", default=[str(DEFAULT_DATA), str(MONUSEG_DATA)], help="data sets"
    )
    parser.add_argument("--levels", type=float, nargs="+", default=list(LEVELS))
    parser.add_argument("--limit", type=int, default=None, help="first N images of each set")
    parser.add_argument("--out-dir", default=str(BENCH), help="where the JSON and table go")
    parser.add_argument(
        "--update-card", action="store_true", help="write the chosen level to the model's card"
    )
    return parser


def image_scores(model, sample, options, levels) -> dict:
    """One validation image's scores (:data:`SCORES`) at every level, from one network pass."""
    from nuclei_core.datasets import load_sample
    from nuclei_core.metrics import evaluate_labels
    from nuclei_core.preprocess import image_kind
    from nuclei_core.segment import nuclei_from_probabilities, predict_with_size

    image, truth = load_sample(sample)
    probabilities, used = predict_with_size(model, image, options)
    scores = {}
    for level in levels:
        labels, _ = nuclei_from_probabilities(
            probabilities, image, replace(used, min_confidence=level)
        )
        result = evaluate_labels(truth, labels).as_dict()
        scores[f"{level:g}"] = {key: result[key] for key in SCORES}
    return {"id": sample.id, "kind": image_kind(image), "scores": scores}


def set_means(rows, levels) -> dict:
    """``{data set: {level: {score: mean}}}`` over each set's images.

    Examples
    --------
    >>> rows = [{"data": "a", "scores": {"0": {"dsb_score": 0.5}}},
    ...         {"data": "a", "scores": {"0": {"dsb_score": 0.7}}}]
    >>> round(set_means(rows, [0.0])["a"]["0"]["dsb_score"], 3)
    0.6
    """
    sets = sorted({row["data"] for row in rows})
    means = {}
    for name in sets:
        chosen = [row["scores"] for row in rows if row["data"] == name]
        means[name] = {
            f"{level:g}": {
                key: float(np.mean([image[f"{level:g}"][key] for image in chosen]))
                for key in chosen[0][f"{level:g}"]
            }
            for level in levels
        }
    return means


def choose_level(means: dict, levels) -> float:
    """The level with the highest mean of the sets' DSB scores (the lowest on a tie).

    Examples
    --------
    >>> means = {"dsb": {"0": {"dsb_score": 0.60}, "0.9": {"dsb_score": 0.61}},
    ...          "he": {"0": {"dsb_score": 0.25}, "0.9": {"dsb_score": 0.26}}}
    >>> choose_level(means, [0.0, 0.9])
    0.9
    """

    def overall(level):
        return float(np.mean([sets[f"{level:g}"]["dsb_score"] for sets in means.values()]))

    best = max(overall(level) for level in levels)
    return min(level for level in levels if overall(level) >= best - 1e-9)


def markdown(report: dict) -> str:
    """The table of ``bench/confidence.md``: each set's scores at each level."""
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


def update_card(model_path, report: dict) -> None:
    """Write the chosen level and how it was chosen into the model's card."""
    from nuclei_core.cards import read_card, write_card

    card = read_card(model_path)
    card["postprocess"] = {
        "min_confidence": report["chosen"],
        "chosen_by": report["command"],
        "validation_dsb_score": {
            name: round(means[f"{report['chosen']:g}"]["dsb_score"], 4)
            for name, means in report["means"].items()
        },
    }
    write_card(model_path, card)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from nuclei_core.datasets import discover_dataset, select_split
    from nuclei_core.runtime import describe, load_inference_model
    from nuclei_core.segment import SegmentOptions

    model = load_inference_model(args.model)
    options = SegmentOptions.for_model(args.model, min_confidence=0.0)
    levels = sorted(set(args.levels))
    rows = []
    for folder in args.data:
        samples = select_split(discover_dataset(folder), "val")[: args.limit]
        name = dataset_name(folder)
        for index, sample in enumerate(samples, start=1):
            rows.append({"data": name} | image_scores(model, sample, options, levels))
            log(f"{name} {index}/{len(samples)} {sample.id}")
    means = set_means(rows, levels)
    report = {
        "model": relative(args.model),
        "backend": describe(model),
        "command": " ".join(["python bench/confidence.py", *(argv or sys.argv[1:])]),
        "levels": levels,
        "n_images": {name: sum(row["data"] == name for row in rows) for name in means},
        "means": means,
        "chosen": choose_level(means, levels),
        "images": rows,
    }
    out_dir = Path(args.out_dir)
    save_report(out_dir, "confidence", report, markdown(report))
    log(f"chosen {report['chosen']:g}; wrote {out_dir / 'confidence.md'}")
    if args.update_card:
        update_card(args.model, report)
        log(f"wrote postprocess.min_confidence = {report['chosen']:g} into the card")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
