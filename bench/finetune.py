"""Benchmark of the correct-and-fine-tune loop: what k corrected images and M minutes buy.

Usage::

    python -m bench.finetune --base-model BASE.keras \\
        --data ../shared/data/monuseg2018_train/train \\
        --base-data ../shared/data/dsb2018/stage1_train

``--data`` is a set of a kind the base model never trained on. Its first
``max(k)`` training-split images (sorted by id) are the pool the user
"corrected"; k of them (``--k``, default 1 3 5) fine-tune the base model for M
minutes each (``--minutes``, default 5 10) on this machine, as
``python -m nuclei_core finetune`` does. Every fine-tuned model is scored on
the rest of that set (every image outside the pool, the same images for every
k) and on the test split of ``--base-data`` (what was forgotten), beside the
base model. The table goes into ``bench/results/finetune.json`` and its section of
``bench/results/RESULTS.md``; every finished row is saved at once, and a second run
with ``--resume`` skips the rows already there.

The committed table fine-tunes the DSB-only default model of 2026-11-25, which never
saw H&E (``git show 11d093c:models/default.keras > dsb_only.keras`` and
``git show 11d093c:models/default.json > dsb_only.json``), on MoNuSeg tiles; today's
default has trained on MoNuSeg's training tiles already.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.tools import machine
from bench.tools.markdown import replace_section, table
from bench.tools.paths import DEFAULT_DATA, RESULTS, dataset_name, relative, saved_figures
from bench.tools.progress import log
from nuclei_core.datasets.folders import discover_dataset, select_split
from nuclei_core.storage import atomic_write_text

SCORES = ("mean_dsb_score", "mean_f1", "mean_foreground_iou")
FINETUNE_JSON = RESULTS / "finetune.json"
"""The committed figures: ``bench/sections/report.py`` renders its section from this file."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.finetune", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--base-model", required=True, help="the model to fine-tune")
    parser.add_argument("--data", required=True, help="a set of a kind the base never saw")
    parser.add_argument(
        "--base-data", default=str(DEFAULT_DATA), help="the base model's set (its test split)"
    )
    parser.add_argument("--k", type=int, nargs="+", default=[1, 3, 5], help="images used")
    parser.add_argument("--minutes", type=float, nargs="+", default=[5.0, 10.0])
    parser.add_argument("--out-dir", default=str(RESULTS), help="where results.json is")
    parser.add_argument("--resume", action="store_true", help="keep rows already measured")
    return parser


def pool_and_rest(folder, pool_size: int) -> tuple[list, list]:
    """The first ``pool_size`` training-split samples (by id) and every other sample.

    Examples
    --------
    >>> from nuclei_core.locations import sample_folder
    >>> pool, rest = pool_and_rest(sample_folder(), 3)
    >>> len(pool), len(pool) + len(rest) == len(discover_dataset(sample_folder()).samples)
    (3, True)
    """
    dataset = discover_dataset(folder)
    pool = sorted(select_split(dataset, "train"), key=lambda sample: sample.id)[:pool_size]
    chosen = {sample.id for sample in pool}
    return pool, [sample for sample in dataset.samples if sample.id not in chosen]


def link_samples(samples, folder: Path) -> Path:
    """A flat dataset in ``folder`` whose files are links to the samples' image and labels.

    Samples in the Kaggle layout (one mask a nucleus) get a label image written instead.
    """
    from nuclei_core.datasets.folders import load_sample
    from nuclei_core.io.export import labels_png16

    for part in ("inputs", "masks"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    for sample in samples:
        image_path = Path(sample.image_path)
        (folder / "inputs" / f"{sample.id}{image_path.suffix}").symlink_to(image_path.resolve())
        _, labels = load_sample(sample)
        (folder / "masks" / f"{sample.id}.png").write_bytes(labels_png16(labels))
    return folder


def scores_of(model, samples) -> dict:
    """Mean DSB score, F1@0.5 and foreground IoU of ``model`` over ``samples``."""
    from nuclei_core.evaluation.evaluate import evaluate_samples, summarize_by_kind

    results, problems = evaluate_samples(model, samples)
    if problems:
        log(f"skipped: {problems}")
    summary = summarize_by_kind(results)["all"]
    return {key: round(float(summary[key]), 4) for key in SCORES} | {"n_images": len(results)}


def finetune_row(base_model, pool, rest, base_test, k: int, minutes: float, work: Path) -> dict:
    """Fine-tune on ``pool[:k]`` for ``minutes``; score the rest and the base test split."""
    from nuclei_core.network.model import load_model
    from nuclei_core.training import finetune_config, train

    data = link_samples(pool[:k], work / f"k{k}_m{minutes:g}" / "data")
    config = finetune_config(base_model, data, data.parent / "run", minutes=minutes)
    started = time.monotonic()
    result = train(config)
    seconds = time.monotonic() - started
    model = load_model(result.model_path)
    return {
        "k": k,
        "minutes": minutes,
        "images": [sample.id for sample in pool[:k]],
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "seconds": round(seconds, 1),
        "rest": scores_of(model, rest),
        "base_test": scores_of(model, base_test),
    }


def score_cells(scores: dict, before: dict) -> list[str]:
    """DSB score, F1 and foreground IoU, each with its change from ``before``.

    Examples
    --------
    >>> score_cells({"mean_dsb_score": 0.3, "mean_f1": 0.5, "mean_foreground_iou": 0.6},
    ...             {"mean_dsb_score": 0.1, "mean_f1": 0.5, "mean_foreground_iou": 0.7})
    ['0.300 (+0.200)', '0.500 (+0.000)', '0.600 (-0.100)']
    """
    return [f"{scores[key]:.3f} ({scores[key] - before[key]:+.3f})" for key in SCORES]


def render_finetune(section: dict | None = None) -> list[str]:
    """The fine-tuning section of ``RESULTS.md``; from ``bench/results/finetune.json`` when None.

    Nothing when it was not measured.
    """
    section = saved_figures(FINETUNE_JSON) if section is None else section
    if not section:
        return []
    before = section["before"]
    header = ["images", "minutes", "epochs"]
    header += [f"rest of {section['data']}: {name}" for name in ("DSB", "F1@0.5", "fg IoU")]
    header += [f"{section['base_data']} test: {name}" for name in ("DSB", "F1@0.5", "fg IoU")]
    rows = [["0 (base model)", "", ""] + score_cells(before["rest"], before["rest"])]
    rows[0] += score_cells(before["base_test"], before["base_test"])
    for row in sorted(section["rows"], key=lambda row: (row["minutes"], row["k"])):
        cells = [row["k"], f"{row['minutes']:g}", row["epochs"]]
        cells += score_cells(row["rest"], before["rest"])
        rows.append(cells + score_cells(row["base_test"], before["base_test"]))
    rest, base_test = before["rest"]["n_images"], before["base_test"]["n_images"]
    return [
        "## Fine-tuning on corrected images",
        "",
        f"`{section['command']}`",
        "",
        f"The base model `{section['base_model']}` fine-tuned on the first k training images "
        f"of {section['data']} (as `python -m nuclei_core finetune` does, its own training "
        f"data replayed beside them), then scored on the other {rest} images of that set and "
        f"on the {base_test} test images of {section['base_data']} (what was forgotten). "
        "In brackets: the change from the base model.",
        "",
        *table(header, rows),
        "",
        *target_lines(section),
    ]


TARGET_GAIN, TARGET_LOSS = 0.15, 0.02
"""Targets: 5 images and 10 minutes lift the rest's DSB score by 0.15, cost the base <= 0.02."""


def target_lines(section: dict) -> list[str]:
    """Whether 5 images and 10 minutes met the targets, when that row was measured."""
    row = next((row for row in section["rows"] if (row["k"], row["minutes"]) == (5, 10)), None)
    if row is None:
        return []
    key, before = "mean_dsb_score", section["before"]
    gain = row["rest"][key] - before["rest"][key]
    loss = before["base_test"][key] - row["base_test"][key]
    verdicts = [
        f"rest DSB score +{TARGET_GAIN:.2f} or more: {gain:+.3f}, "
        + ("met" if gain >= TARGET_GAIN else f"missed by {TARGET_GAIN - gain:.3f}"),
        f"base test DSB score lost at most {TARGET_LOSS:.2f}: {-loss:+.3f}, "
        + ("met" if loss <= TARGET_LOSS else f"missed by {loss - TARGET_LOSS:.3f}"),
    ]
    return ["Targets (5 images, 10 minutes): " + "; ".join(verdicts) + ".", ""]


def save(out_dir: Path, section: dict) -> None:
    """Write ``finetune.json`` and put its section into ``RESULTS.md`` beside it."""
    atomic_write_text(out_dir / "finetune.json", json.dumps(section, indent=1))
    results = out_dir / "RESULTS.md"
    text = results.read_text() if results.is_file() else ""
    atomic_write_text(results, replace_section(text, render_finetune(section)))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from nuclei_core.network.model import load_model

    out_dir = Path(args.out_dir)
    previous = saved_figures(out_dir / "finetune.json") if args.resume else {}
    pool, rest = pool_and_rest(args.data, max(args.k))
    base_test = select_split(discover_dataset(args.base_data), "test")
    log(f"pool {len(pool)} images, rest {len(rest)}, base test {len(base_test)}")
    base = load_model(args.base_model)
    section = {
        "base_model": relative(args.base_model),
        "data": dataset_name(args.data),
        "base_data": dataset_name(args.base_data),
        "command": "python -m bench.finetune " + " ".join(sys.argv[1:] if argv is None else argv),
        "load_start": machine.load_snapshot(),
        "before": previous.get("before")
        or {"rest": scores_of(base, rest), "base_test": scores_of(base, base_test)},
        "rows": previous.get("rows", []),
    }
    done = {(row["k"], row["minutes"]) for row in section["rows"]}
    with tempfile.TemporaryDirectory(prefix="finetune_bench_") as work:
        for minutes in args.minutes:
            for k in args.k:
                if (k, minutes) in done:
                    continue
                log(f"fine-tuning on {k} image(s) for {minutes:g} min")
                row = finetune_row(args.base_model, pool, rest, base_test, k, minutes, Path(work))
                section["rows"].append(row)
                section["load_end"] = machine.load_snapshot()
                save(out_dir, section)
                log(f"k={k} {minutes:g} min: rest {row['rest']}, base test {row['base_test']}")
    save(out_dir, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
