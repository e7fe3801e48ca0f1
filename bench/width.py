"""What a wider U-Net would cost: inference and training speed by filters at the first level.

Usage::

    nice -n -5 python -m bench.width                     # 16, 24 and 32 filters
    python -m bench.width --filters 16 20 --out-dir /tmp  # other widths, elsewhere

A wider network is worth it only where the faster runtime pays for it. For each
``--filters`` value a U-Net of the default's shape (depth 4, batch norm, the distance
output; :func:`nuclei_core.network.model.build_unet`) is built with random weights (speed does not
depend on them) and timed as the app runs it: batches of 8 crops of 256 x 256 through
the app's runtime and precision (:func:`nuclei_core.network.runtime.load_inference_model`), and
``model.fit`` steps as ``nuclei_core.training`` takes them on the sample images
(:func:`bench.sections.speed.training_throughput`), whose rate sets how many epochs fit into a
training budget. ``bench/results/width.json`` and ``bench/results/width.md`` get the figures,
with the weights, the file size and the convolutions' GFLOPs per image.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from bench.tools.machine import machine_info
from bench.tools.markdown import number, save_report, table
from bench.tools.paths import RESULTS

WIDTHS = (16, 24, 32)
SPEED_TARGET = 60.0
"""Inference images/s at 256 x 256 that the runtime must reach with the network."""


def build_network(filters: int, folder: Path) -> Path:
    """Save a U-Net of the default's shape with ``filters`` at its first level, with its card."""
    from nuclei_core.network.model import ModelConfig, build_unet, save_model
    from nuclei_core.registry.cards import write_card

    config = ModelConfig(base_filters=filters, distance=True)
    path = save_model(build_unet(config), folder / f"unet-{filters}.keras")
    write_card(path, {"model": config.as_dict()})
    return path


def measure_width(filters: int, folder: Path, crops, samples, train_steps: int) -> dict:
    """Weights, size, GFLOPs, inference and training images/s of one width."""
    from bench.sections.flops import conv_flops
    from bench.sections.speed import batched_throughput, training_throughput
    from nuclei_core.network.model import load_model
    from nuclei_core.network.runtime import describe, load_inference_model

    path = build_network(filters, folder)
    network = load_model(path)  # read once for the weights and the GFLOPs
    model = load_inference_model(path)
    training = training_throughput(path, samples, crop=256, batch_size=8, steps=train_steps)
    return {
        "filters": filters,
        "weights": int(network.count_params()),
        "megabytes": round(path.stat().st_size / 1e6, 1),
        "gflops": round(conv_flops(network)["flops"] / 1e9, 2),
        "runtime": describe(model),
        "images_per_s": batched_throughput(model, crops)["images_per_s"],
        "training_images_per_s": training["images_per_s"],
        "training_precision": training["precision"],
    }


def markdown(report: dict) -> str:
    """The report as a Markdown table, with the command and the machine."""
    rows = [
        [
            row["filters"],
            f"{row['weights']:,}",
            row["megabytes"],
            row["gflops"],
            number(row["images_per_s"], 1),
            "yes" if row["images_per_s"] >= SPEED_TARGET else "**no**",
            number(row["training_images_per_s"], 1),
        ]
        for row in report["widths"]
    ]
    header = [
        "filters at the first level",
        "weights",
        "MB",
        "GFLOPs / 256x256 image",
        f"images/s at 256 x 256 ({report['widths'][0]['runtime']})",
        f">= {SPEED_TARGET:g} images/s",
        f"training images/s ({report['widths'][0]['training_precision']})",
    ]
    lines = [
        "# Wider U-Nets: what they cost",
        "",
        "U-Nets of the default's shape (depth 4, distance output), random weights; batches of 8.",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Machine: {report['machine']}",
        "",
        *table(header, rows),
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.width", description=__doc__)
    parser.add_argument("--filters", type=int, nargs="+", default=list(WIDTHS))
    parser.add_argument("--images", type=int, default=64, help="256 x 256 crops timed")
    parser.add_argument("--train-steps", type=int, default=8, help="timed training steps")
    parser.add_argument("--out-dir", default=str(RESULTS), help="where the JSON and table go")
    args = parser.parse_args(argv)
    if any(filters < 2 for filters in args.filters):
        parser.error(f"--filters must be 2 or more, got {args.filters}")

    from nuclei_core.datasets.folders import discover_dataset
    from nuclei_core.locations import sample_folder

    samples = discover_dataset(sample_folder()).samples
    crops = list(np.random.default_rng(0).random((args.images, 256, 256, 3), dtype=np.float32))
    widths = []
    with tempfile.TemporaryDirectory() as folder:
        for filters in args.filters:
            widths.append(measure_width(filters, Path(folder), crops, samples, args.train_steps))
            print(widths[-1], flush=True)
    command = " ".join(["python -m bench.width", *(argv or sys.argv[1:])])
    machine = machine_info()
    machine_line = (
        f"{machine['cpu_model']}, {machine['cpu_count']} CPUs, SIMD {', '.join(machine['simd'])}"
    )
    report = {"command": command, "machine": machine_line, "widths": widths}
    save_report(args.out_dir, "width", report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
