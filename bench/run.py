"""Benchmark: quality and speed of the nuclei engine and its peers, all measured in one run.

Usage::

    python -m bench.run --data ../shared/data/dsb2018/stage1_train \\
        ../shared/data/monuseg2018_train/train

It writes ``bench/results/RESULTS.md`` (readable tables, targets with pass/fail) and
``bench/results/results.json`` (every figure, per-image scores included). Quick check::

    python -m bench.run --limit 3 --skip-speed --out-dir /tmp/bench

Every data set is scored on its own test split; the speed rows and the DSB
targets use the first one. The sections live in ``bench/sections/``: ``peers``,
``quality``, ``speed``, ``targets`` and ``report`` (see ``bench/README.md``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.sections import peers, quality, speed
from bench.sections.report import render_markdown
from bench.sections.targets import evaluate_targets
from bench.tools import machine
from bench.tools.paths import DEFAULT_DATA, MOBILENETV2_MODEL, RESULTS
from bench.tools.progress import log
from nuclei_core.errors import NucleiError
from nuclei_core.locations import default_model_path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data",
        nargs="+",
        default=[str(DEFAULT_DATA)],
        help="dataset folder(s), each scored on its own split (default: DSB 2018 stage1_train)",
    )
    parser.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    parser.add_argument(
        "--default-model", default=str(default_model_path()), help="the default model"
    )
    parser.add_argument(
        "--model", default=None, help="a candidate model, scored beside the default one"
    )
    parser.add_argument(
        "--baseline-model",
        default=str(MOBILENETV2_MODEL),
        help="the original project's recipe (MobileNetV2 U-Net, 128 x 128 crops, batch 10)",
    )
    parser.add_argument(
        "--out-dir", default=str(RESULTS), help="where RESULTS.md and results.json go"
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N images of each set"
    )
    parser.add_argument("--skip-speed", action="store_true", help="quality rows only")
    parser.add_argument("--skip-quality", action="store_true", help="speed rows only")
    parser.add_argument("--no-tta", action="store_true", help="leave out the test-time-flips row")
    parser.add_argument(
        "--speed-images", type=int, default=64, help="256 x 256 inputs for images/s"
    )
    parser.add_argument("--train-steps", type=int, default=8, help="timed training steps")
    return parser


def load_models(args) -> tuple[dict, dict]:
    """``{name: (model, path)}`` of the models here, ``{name: (path, reason)}`` of those not.

    Every model runs on the runtime and precision ``auto`` picks (as the app and the
    CLI do); where that is OpenVINO, the default model also runs on TensorFlow and in
    the other OpenVINO precision (float32, what a CPU without bfloat16 sees, when
    ``auto`` picked bfloat16; bfloat16 only where the CPU computes it, as OpenVINO runs a
    bfloat16 request in float32 elsewhere), so that each backend's speed and scores sit
    side by side.
    """
    from nuclei_core.network.model import load_model
    from nuclei_core.network.runtime import load_inference_model, load_openvino, resolve_backend

    paths = {"default": args.default_model}
    if args.model:
        paths["candidate"] = args.model
    models = {name: (load_inference_model(path), Path(path)) for name, path in paths.items()}
    default_path = Path(args.default_model)
    if resolve_backend() == "openvino":
        models["default_tensorflow"] = (load_model(default_path), default_path)
        other = "float32" if models["default"][0].precision == "bfloat16" else "bfloat16"
        other_model = load_openvino(default_path, other)
        if other_model.precision == other:  # a CPU without bfloat16 computes float32 again
            models[f"default_{other}"] = (other_model, default_path)
    baseline, reason = peers.load_optional_model(args.baseline_model)
    if baseline is None:
        return models, {"mobilenetv2": (Path(args.baseline_model), reason)}
    return {**models, "mobilenetv2": (baseline, Path(args.baseline_model))}, {}


def start_meta(args, argv) -> dict:
    """The command, the time, the machine and its load when the run starts."""
    command = "python -m bench.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    log("machine and load")
    return {
        "command": command.strip(),
        "started_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": machine.machine_info(),
        "load_start": machine.load_snapshot(),
        "data": list(args.data),
        "split": args.split,
        "limit": args.limit,
    }


def run_quality(report: dict, bench_sets, models: dict, missing: dict, tta: bool) -> None:
    """Score every method on every set into ``report["quality"]`` and ``report["leads"]``."""
    stardist = quality.stardist_methods()
    methods = quality.model_methods(models, missing, tta) + stardist + quality.classical_methods()
    report["quality"], report["leads"] = [], []
    try:
        for bench_set in bench_sets:
            rows, leads = quality.score_set(bench_set, methods)
            report["quality"] += rows
            report["leads"] += leads
    finally:
        if stardist[0].segmenter is not None:
            stardist[0].segmenter.close()
    note = quality.tta_note(quality.rows_of_set(report["quality"], bench_sets[0].name))
    report["notes"] += [note] if note else []


def run_speed(report: dict, bench_set, models: dict, args) -> None:
    """Measure every speed row on the first set into ``report["speed"]``."""
    report["speed"], notes = speed.measure_speed(
        models, bench_set, args.speed_images, args.train_steps
    )
    report["notes"] += notes + [f"Speed rows use the images of `{bench_set.name}`."]


def write_report(report: dict, out_dir: Path) -> None:
    """``results.json`` and ``RESULTS.md`` in ``out_dir``, each written atomically."""
    from nuclei_core.storage import atomic_write_json, atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "results.json", report)
    atomic_write_text(out_dir / "RESULTS.md", render_markdown(report))
    log(f"wrote {out_dir / 'RESULTS.md'} and {out_dir / 'results.json'}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    began = time.perf_counter()
    meta = start_meta(args, argv)
    try:
        bench_sets = [quality.load_set(folder, args.split, args.limit) for folder in args.data]
    except NucleiError as error:
        raise SystemExit(str(error)) from None
    models, missing = load_models(args)
    report = {
        "meta": meta,
        "datasets": [bench_set.describe() for bench_set in bench_sets],
        "models": {name: peers.describe_model(*entry) for name, entry in models.items()},
        "peers": peers.find_peers(args.baseline_model, peers.card_or_empty(args.default_model)),
        "notes": [],
    }
    if not args.skip_quality:
        run_quality(report, bench_sets, models, missing, tta=not args.no_tta)
    if not args.skip_speed:
        run_speed(report, bench_sets[0], models, args)
    meta["load_end"] = machine.load_snapshot()
    meta["minutes"] = (time.perf_counter() - began) / 60
    report["targets"] = evaluate_targets(report)
    write_report(report, Path(args.out_dir))
    for target in report["targets"]:
        print(f"{target['result']:>12}  {target['target']}: {target['measured']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
