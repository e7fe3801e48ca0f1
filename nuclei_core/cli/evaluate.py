"""``evaluate`` and ``calibrate``: score a model on annotated images; choose its levels on them.

``evaluate`` segments a split of a dataset folder and reports the scores by image
kind (:mod:`nuclei_core.evaluation.evaluate`), optionally into the model card;
``calibrate`` chooses the model's minimum nucleus confidence on annotated images
(:mod:`nuclei_core.evaluation.calibrate`) and writes it with its validation
scores into the card, where segmenting with the model reads it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nuclei_core.cli.common import (
    add_diameter,
    add_segment_options,
    load_model,
    model_path,
    segment_options,
    with_diameter,
)
from nuclei_core.errors import InputError

SUMMARY_KEYS = (
    "mean_dsb_score",
    "mean_f1",
    "mean_foreground_iou",
    "mean_dice",
    "mean_pixel_accuracy",
)


def _evaluate(args) -> int:
    from tqdm import tqdm

    from nuclei_core.datasets import folders as datasets
    from nuclei_core.evaluation.evaluate import evaluate_samples, summarize_by_kind
    from nuclei_core.locations import DEFAULT_MODEL
    from nuclei_core.network.runtime import describe
    from nuclei_core.registry import cards
    from nuclei_core.storage import atomic_write_json

    model, options = load_model(args), with_diameter(segment_options(args), args)
    dataset = datasets.discover_dataset(args.data)
    samples = datasets.select_split(dataset, args.split)
    if not samples:
        raise InputError(f"{args.data}: the {args.split} split is empty")
    bar = tqdm(total=len(samples), unit="image", disable=not sys.stderr.isatty())
    results, problems = evaluate_samples(
        model, samples, options, progress=lambda done, total: bar.update(1)
    )
    bar.close()
    if not results:
        raise InputError(f"{args.data}: no readable image in the {args.split} split")
    summary = summarize_by_kind(results)
    report = {
        "model": str(args.model or DEFAULT_MODEL),
        "data": str(args.data),
        "split": args.split,
        "options": vars(options),
        "backend": describe(model),
        "command": " ".join(["python -m nuclei_core", *sys.argv[1:]]),
        "summary": summary,
        "images": [result.row() for result in results],
        "skipped": problems,
        "unpaired": list(dataset.problems),
    }
    for group, scores in summary.items():
        shown = "  ".join(f"{key[5:]} {scores[key]:.4f}" for key in SUMMARY_KEYS)
        print(f"{group:>20} ({scores['n_images']:3d} images): {shown}")
    if args.json:
        atomic_write_json(args.json, report)
        print(f"wrote {args.json}")
    if args.update_card:
        model_path = Path(args.model or DEFAULT_MODEL)
        card = cards.read_card(model_path)
        stored = {key: value for key, value in report.items() if key != "images"}
        card.setdefault("evaluations", {})[f"{args.data} ({args.split})"] = stored
        first = card.get("test_metrics") or {}
        if args.split == "test" and first.get("data", str(args.data)) == str(args.data):
            card["test_metrics"] = stored
        cards.write_card(model_path, card)
        print(f"updated {cards.card_path(model_path)}")
    for problem in dataset.problems:
        print(f"unpaired: {problem}", file=sys.stderr)
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _calibrate(args) -> int:
    from dataclasses import replace

    from nuclei_core.datasets import folders as datasets
    from nuclei_core.evaluation.calibrate import calibrate, level_key, write_calibration

    model = load_model(args)
    options = replace(with_diameter(segment_options(args), args), min_confidence=0.0)
    sets = {}
    for folder in args.data:
        samples = datasets.select_split(datasets.discover_dataset(folder), args.split)
        if not samples:
            raise InputError(f"{folder}: the {args.split} split is empty")
        sets[Path(folder).name or str(folder)] = samples
    calibration = calibrate(
        model, sets, options, progress=lambda line: print(line, file=sys.stderr, flush=True)
    )
    command = " ".join(["python -m nuclei_core", *sys.argv[1:]])
    path = model_path(args)
    entry = write_calibration(path, calibration, f"{command} ({args.split} split)")
    for level in calibration.levels:
        scores = calibration.scores_at(level)
        shown = "  ".join(f"{name} {value:.4f}" for name, value in scores.items())
        mark = "  <- chosen" if level == calibration.min_confidence else ""
        print(f"minimum confidence {level_key(level):>6}: DSB {shown}{mark}")
    for height, scores in entry["peak_heights"].items():
        shown = "  ".join(f"{name} {value:.4f}" for name, value in scores.items())
        mark = "  <- chosen" if float(height) == calibration.peak_height else ""
        print(f"seed height {height:>6} (its best confidence): DSB {shown}{mark}")
    print(
        f"minimum confidence {entry['min_confidence']} and seed height {entry['peak_height']} "
        f"written to the card of {path}"
    )
    return 0


def add_commands(commands) -> None:
    """Register ``evaluate`` and ``calibrate``."""
    evaluate = commands.add_parser("evaluate", help="score a model on a dataset split")
    evaluate.add_argument("--data", required=True, help="dataset folder")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    evaluate.add_argument(
        "--json", default=None, help="write the report (per image and overall) here"
    )
    evaluate.add_argument(
        "--update-card", action="store_true", help="store the results in the model card"
    )
    add_segment_options(evaluate)
    add_diameter(evaluate)
    evaluate.set_defaults(handler=_evaluate)

    calibrate = commands.add_parser(
        "calibrate",
        help="choose a model's minimum nucleus confidence on annotated images (into its card)",
    )
    calibrate.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="dataset folder(s) of annotated images the model did not train on; each counts once",
    )
    calibrate.add_argument(
        "--split",
        default="val",
        choices=["train", "val", "test", "all"],
        help="which part of each folder (default val; all for a folder of your own images)",
    )
    add_segment_options(calibrate)
    add_diameter(calibrate)
    calibrate.set_defaults(handler=_calibrate)
