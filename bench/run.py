"""Benchmark: quality and speed of the nuclei segmentation engine, all measured in one run.

Usage::

    python bench/run.py --data ../shared/data/dsb2018/stage1_train

It writes ``bench/RESULTS.md`` (readable tables, targets with pass/fail) and
``bench/results.json`` (every figure, per-image scores included). Quick check::

    python bench/run.py --data ../shared/data/dsb2018/stage1_train --limit 3 --out-dir /tmp/bench

Quality rows, scored on the same images of one split (default: the held-out test split
of ``nuclei_core.io.split_ids``) with ``nuclei_core.segment.evaluate_samples``:

* the default model (``--model``), plain and with test-time flips;
* the original project's recipe (``--baseline-model``: MobileNetV2 U-Net trained on
  128 x 128 crops, batch 10, early stopping, same wall-time budget);
* a classical baseline without learning, as CellProfiler would do it: Otsu threshold
  and distance-transform watershed (``nuclei_core.instances.otsu_labels``) on the
  normalised image (``nuclei_core.io.to_model_input``).

Speed rows on this machine: images/s at 256 x 256 (batched), end-to-end seconds for
one 1024 x 1024 image read from disk, peak memory and seconds for a 4096 x 4096 image
(tiled, in a fresh process), training images/s, and the model's achieved FLOP/s as
a share of the machine's float32 matmul peak measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(ROOT))

from nuclei_core import instances, io  # noqa: E402
from nuclei_core.errors import NucleiError  # noqa: E402
from nuclei_core.segment import (  # noqa: E402
    SegmentOptions,
    evaluate_samples,
    segment_image,
    summarize_by_kind,
)

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "dsb2018" / "stage1_train"
GROUPS = ("all", "fluorescence", "brightfield+stained", "stained", "brightfield")
QUALITY_COLUMNS = (
    ("mean_dsb_score", "DSB score"),
    ("mean_f1", "F1@0.5"),
    ("mean_foreground_iou", "fg IoU"),
    ("mean_dice", "Dice"),
    ("mean_pixel_accuracy", "pixel acc."),
    ("mean_abs_count_error", "mean abs count error"),
)
QUALITY_TARGETS = (
    ("mean_dsb_score", "DSB score", 0.55),
    ("mean_f1", "F1@0.5", 0.85),
    ("mean_foreground_iou", "foreground IoU", 0.88),
    ("mean_pixel_accuracy", "pixel accuracy", 0.97),
)
MIN_GROUP_DSB = 0.40
TARGET_IMAGES_PER_SECOND = 20.0
TARGET_SECONDS_1024 = 1.5
TARGET_PEAK_BYTES = 3e9
GB = 1e9


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _relative(path) -> str:
    """``path`` relative to the project root when it lies inside it, else absolute."""
    path = Path(path).resolve()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- machine


def machine_info() -> dict:
    """CPU model, cores, memory, library versions."""
    import keras
    import tensorflow as tf

    cpu_model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu_model in ("", platform.machine()):
                cpu_model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "simd": [flag for flag in ("avx2", "avx512f", "amx_tile") if flag in flags],
        "memory_bytes": memory,
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def load_snapshot() -> dict:
    """Load average and the other processes using CPU right now (1 s sample)."""
    snapshot = {"loadavg": [round(value, 2) for value in os.getloadavg()], "busy_processes": []}
    try:
        import psutil
    except ImportError:
        return snapshot
    me = os.getpid()
    processes = [p for p in psutil.process_iter(["pid", "cmdline"]) if p.pid != me]
    for process in processes:
        try:
            process.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(1.0)
    for process in processes:
        try:
            percent = process.cpu_percent(None)
        except psutil.Error:
            continue
        if percent >= 20:
            words = list(process.info.get("cmdline") or [])
            if words and Path(words[0]).name.startswith("python"):
                words[0] = "python"
            command = " ".join(words)[:100]
            snapshot["busy_processes"].append({"cpu_percent": round(percent), "command": command})
    return snapshot


# --------------------------------------------------------------------------- models


ENCODER_STARTS = {"imagenet": "ImageNet weights", "random": "random weights"}
"""How a model card's ``encoder_weights`` reads in the Models table."""


def describe_model(model, path) -> dict:
    """Architecture, parameters, file size and training facts from the model card."""
    from nuclei_core import cards

    info = {
        "path": _relative(path),
        "architecture": model.name,
        "parameters": int(model.count_params()),
        "file_megabytes": round(Path(path).stat().st_size / 1e6, 1),
    }
    try:
        card = cards.read_card(path)
    except NucleiError:
        card = {}
    card_keys = (
        "command",
        "train_seconds",
        "epochs_run",
        "best_epoch",
        "stopped_early",
        "precision",
        "encoder_weights",
    )
    for key in card_keys:
        if key in card:
            info[key] = card[key]
    return info


def load_optional_model(path):
    """``(model, None)`` or ``(None, reason)`` when the file is missing or does not load."""
    from nuclei_core.model import load_model

    if not Path(path).is_file():
        return None, f"{_relative(path)} not found"
    try:
        return load_model(path), None
    except NucleiError as error:
        return None, str(error)


def conv_flops(model, size: int = 256) -> dict:
    """FLOPs of one forward pass on a ``size`` x ``size`` image, from the convolutions.

    Traces the model once for a fixed input shape and adds up, for every convolution
    in the graph, ``2 * kh * kw * cin * cout * H * W`` (``H, W`` the output size for a
    convolution, the input size for a transpose convolution, ``cout = cin * multiplier``
    with ``cin = 1`` per channel for a depthwise one) and ``2 * m * k * n`` for matrix
    products. Element-wise work (batch norm, activations, additions) is not counted.
    """
    import tensorflow as tf

    function = tf.function(lambda batch: model(batch, training=False))
    graph = function.get_concrete_function(tf.TensorSpec((1, size, size, 3), tf.float32)).graph
    totals: dict[str, int] = {}

    def shape(tensor):
        return [int(value) for value in tensor.shape]

    def walk(operations):
        for op in operations:
            flops = 0
            if op.type == "Conv2D":
                kh, kw, cin, cout = shape(op.inputs[1])
                _, height, width, _ = shape(op.outputs[0])
                flops = 2 * kh * kw * cin * cout * height * width
            elif op.type == "Conv2DBackpropInput":  # transpose convolution
                kh, kw, cout, cin = shape(op.inputs[1])
                _, height, width, _ = shape(op.inputs[2])
                flops = 2 * kh * kw * cin * cout * height * width
            elif op.type == "DepthwiseConv2dNative":
                kh, kw, cin, multiplier = shape(op.inputs[1])
                _, height, width, _ = shape(op.outputs[0])
                flops = 2 * kh * kw * cin * multiplier * height * width
            elif op.type in ("MatMul", "BatchMatMulV2"):
                left, right = shape(op.inputs[0]), shape(op.inputs[1])
                flops = 2 * int(np.prod(left)) * right[-1]
            if flops:
                totals[op.type] = totals.get(op.type, 0) + flops

    walk(graph.get_operations())
    return {"size": size, "flops": int(sum(totals.values())), "by_op": totals}


# --------------------------------------------------------------------------- quality


def classical_baseline(image):
    """Otsu threshold + distance-transform watershed on the normalised image (no learning)."""
    return instances.otsu_labels(io.to_model_input(image))


def warm_up(model) -> None:
    segment_image(model, np.zeros((256, 256), np.uint8))


def quality_row(name, label, segmenter, samples, options, source) -> dict:
    log(f"quality: {label} on {len(samples)} images")
    every = max(1, len(samples) // 5)

    def progress(done, total):
        if done % every == 0 or done == total:
            log(f"  {done}/{total}")

    started = time.perf_counter()
    results, problems = evaluate_samples(segmenter, samples, options, progress=progress)
    wall = time.perf_counter() - started
    segment_seconds = [result.seconds for result in results]
    return {
        "name": name,
        "label": label,
        "source": source,
        "status": "ok",
        "options": vars(options) if options is not None else None,
        "n_images": len(results),
        "seconds_total": round(wall, 2),
        "seconds_per_image": round(float(np.mean(segment_seconds)), 4) if results else None,
        "summary": summarize_by_kind(results),
        "images": [result.row() for result in results],
        "skipped": problems,
    }


def missing_row(name, label, source, reason) -> dict:
    return {"name": name, "label": label, "source": source, "status": f"missing: {reason}"}


# --------------------------------------------------------------------------- speed


def matmul_peak(n: int = 4096, repeats: int = 5) -> dict:
    """Best float32 ``n x n @ n x n`` matmul throughput in TensorFlow (the machine's peak)."""
    import tensorflow as tf

    a = tf.random.stateless_normal((n, n), seed=(1, 2))
    b = tf.random.stateless_normal((n, n), seed=(3, 4))
    product = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))
    product(a, b).numpy()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        product(a, b).numpy()
        times.append(time.perf_counter() - started)
    best = min(times)
    return {
        "n": n,
        "seconds": [round(t, 4) for t in times],
        "best_seconds": round(best, 4),
        "gflops_per_s": round(2 * n**3 / best / 1e9, 1),
    }


def realistic_crops(samples, count: int = 64, size: int = 256, seed: int = 0) -> list:
    """``count`` random ``size`` x ``size`` crops of real model inputs (from up to 32 images)."""
    rng = np.random.default_rng(seed)
    sources = []
    for sample in samples:
        if len(sources) == 32:
            break
        height, width = io.image_size(sample.image_path)
        if height >= size and width >= size:
            sources.append(io.to_model_input(io.read_image(sample.image_path)))
    if not sources:
        raise NucleiError(f"no image of at least {size} x {size} pixels for the speed test")
    crops = []
    for index in range(count):
        source = sources[index % len(sources)]
        top = int(rng.integers(0, source.shape[0] - size + 1))
        left = int(rng.integers(0, source.shape[1] - size + 1))
        crops.append(np.ascontiguousarray(source[top : top + size, left : left + size]))
    return crops


def batched_throughput(model, inputs, batch_size: int = 8, repeats: int = 3) -> dict:
    """Images/s of ``predict_many`` (batched), best of ``repeats`` after a warm-up."""
    from nuclei_core.predict import predict_many

    predict_many(model, inputs[: batch_size * 2], batch_size=batch_size)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict_many(model, inputs, batch_size=batch_size)
        times.append(time.perf_counter() - started)
    best = min(times)
    return {
        "images": len(inputs),
        "size": list(inputs[0].shape[:2]),
        "batch_size": batch_size,
        "seconds": [round(t, 3) for t in times],
        "images_per_s": round(len(inputs) / best, 2),
    }


def find_image_of_size(samples, dataset, height: int, width: int):
    """A sample of exactly that size: from ``samples`` first, else from the whole dataset."""
    for pool, where in ((samples, "benchmark split"), (dataset.samples, "dataset (other split)")):
        for sample in pool:
            try:
                if io.image_size(sample.image_path) == (height, width):
                    return sample, where
            except NucleiError:
                continue
    return None, None


def end_to_end(model, path, repeats: int = 5) -> dict:
    """Seconds from a PNG on disk to measured nuclei (read, predict, instances, table)."""

    def once():
        started = time.perf_counter()
        image = io.read_image(path)
        read = time.perf_counter()
        result = segment_image(model, image)
        total = time.perf_counter() - started
        return total, read - started, result

    once()
    runs = [once() for _ in range(repeats)]
    totals = [run[0] for run in runs]
    middle = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    return {
        "seconds": [round(t, 3) for t in totals],
        "median_seconds": round(statistics.median(totals), 3),
        "median_breakdown": {
            "read": round(middle[1], 3),
            "predict": round(middle[2].seconds["predict"], 3),
            "instances_and_measurements": round(middle[2].seconds["instances"], 3),
        },
        "nuclei": middle[2].count,
    }


def large_image(model_path, image, factor: int = 4) -> dict:
    """Tile a real image ``factor`` x ``factor`` times; segment it in a fresh process."""
    big = np.tile(image, (factor, factor) + (1,) * (image.ndim - 2))
    if big.dtype not in (np.uint8, np.uint16):
        big = io.to_display_rgb(big)
    with tempfile.TemporaryDirectory(prefix="nuclei_bench_") as folder:
        path = Path(folder) / f"tiled_{big.shape[1]}x{big.shape[0]}.png"
        path.write_bytes(io.encode_png(big))
        del big
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, str(BENCH / "probe_large.py"), "--model", str(model_path)]
            + ["--image", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"probe_large.py failed ({completed.returncode}): {' | '.join(tail)}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["seconds_process_wall"] = round(wall, 2)
    if before == 0:
        result["peak_rss_bytes_rusage_children"] = int(children_peak)
    return result


def training_throughput(model_path, samples, crop: int, batch_size: int, steps: int = 8) -> dict:
    """Training images/s: ``model.fit`` on augmented crops, as ``nuclei_core.train`` does it.

    A fresh copy of the model is trained (and thrown away) in the precision, and with
    the optimizer, loss and metrics, of ``nuclei_core.train``, fed by its ``tf.data`` pipeline
    (random scaled crops, flips, rotations, intensity jitter). The first 3 steps are
    warm-up; the clock runs over the next ``steps``.
    """
    import keras

    from nuclei_core import cards
    from nuclei_core.losses import NucleiLoss, training_metrics
    from nuclei_core.model import ModelConfig, load_model
    from nuclei_core.train import (
        TrainConfig,
        build_with_policy,
        load_training_data,
        training_dataset,
        training_policy,
    )

    warmup = 3
    model_config = ModelConfig(**cards.read_card(model_path)["model"])
    policy = training_policy("auto", model_config.architecture)
    model = build_with_policy(model_config, policy, None)
    model.set_weights(load_model(model_path).get_weights())
    model.compile(
        optimizer=keras.optimizers.Adam(TrainConfig(data="", out="").learning_rate),
        loss=NucleiLoss(),
        metrics=training_metrics(),
    )
    arrays, _ = load_training_data(samples, crop)
    data, _ = training_dataset(arrays, crop, batch_size, seed=0)
    marks: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            marks.append(time.perf_counter())

    model.fit(data, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[Clock()])
    seconds = marks[-1] - marks[warmup - 1]
    return {
        "crop": crop,
        "batch_size": batch_size,
        "steps_timed": steps,
        "precision": policy,
        "seconds": round(seconds, 3),
        "images_per_s": round(steps * batch_size / seconds, 2),
        "source_images": len(arrays),
    }


def attempt(report: dict, key: str, function, *args, **kwargs):
    """Run one measurement; record an error instead of losing the whole run."""
    log(f"speed: {key}")
    try:
        report[key] = function(*args, **kwargs)
    except Exception as error:  # a benchmark row failing must not lose the others
        traceback.print_exc()
        report[key] = {"error": f"{type(error).__name__}: {error}"}
    return report[key]


# --------------------------------------------------------------------------- targets


def _row(report, name):
    return next((row for row in report.get("quality", []) if row["name"] == name), None)


def paired_lead(mine: dict, theirs: dict, key: str, resamples: int = 10_000) -> dict:
    """How far ``mine`` leads ``theirs`` on the per-image score ``key``, with its uncertainty.

    Both rows are scored on the same images, so the lead is the mean of the
    per-image differences; its 95 % interval comes from resampling the images
    (paired bootstrap, fixed seed). An interval that includes 0 means the test
    split is too small to tell the two apart.
    """
    scores = {image["id"]: image[key] for image in theirs["images"]}
    differences = np.array(
        [image[key] - scores[image["id"]] for image in mine["images"] if image["id"] in scores]
    )
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(differences), size=(resamples, len(differences)))
    low, high = np.percentile(differences[picks].mean(axis=1), [2.5, 97.5])
    return {
        "lead": float(differences.mean()),
        "low": float(low),
        "high": float(high),
        "images_better": int((differences > 0).sum()),
        "images": len(differences),
    }


def _lead_text(lead: dict) -> str:
    return (
        f"lead {lead['lead']:+.3f}, 95 % interval {lead['low']:+.3f} to {lead['high']:+.3f}, "
        f"better on {lead['images_better']} of {lead['images']} images"
    )


def evaluate_targets(report: dict) -> list[dict]:
    """The issue's targets, each with the measured value and pass / fail / not measured."""
    targets = []

    def add(target, measured, passed):
        result = "not measured" if passed is None else ("pass" if passed else "FAIL")
        targets.append({"target": target, "measured": measured, "result": result})

    speed = report.get("speed", {})
    value = speed.get("throughput_256", {}).get("default", {}).get("images_per_s")
    add(
        f">= {TARGET_IMAGES_PER_SECOND:g} images/s at 256 x 256 (batched, default model)",
        f"{value:.1f} images/s" if value is not None else "-",
        None if value is None else value >= TARGET_IMAGES_PER_SECOND,
    )
    value = speed.get("end_to_end_1024", {}).get("median_seconds")
    add(
        f"1024 x 1024 end to end < {TARGET_SECONDS_1024:g} s",
        f"{value:.2f} s" if value is not None else "-",
        None if value is None else value < TARGET_SECONDS_1024,
    )
    value = speed.get("large_4096", {}).get("peak_rss_bytes")
    add(
        f"4096 x 4096 within {TARGET_PEAK_BYTES / GB:g} GB peak memory",
        f"{value / GB:.2f} GB" if value is not None else "-",
        None if value is None else value <= TARGET_PEAK_BYTES,
    )

    default = _row(report, "default")
    ok = default is not None and default["status"] == "ok"
    others = [
        row
        for row in report.get("quality", [])
        if row["name"] in ("mobilenetv2", "classical") and row["status"] == "ok"
    ]
    missing = [
        row["name"]
        for row in report.get("quality", [])
        if row["name"] in ("mobilenetv2", "classical") and row["status"] != "ok"
    ]
    for key, name in (("mean_dsb_score", "DSB score"), ("mean_foreground_iou", "foreground IoU")):
        if not ok or not others:
            add(f"default model ahead of both other rows on {name}", "-", None)
            continue
        mine = default["summary"]["all"][key]
        theirs = {row["name"]: row["summary"]["all"][key] for row in others}
        image_key = key.removeprefix("mean_")
        measured = f"{mine:.3f} vs " + ", ".join(
            f"{row['name']} {theirs[row['name']]:.3f} "
            f"({_lead_text(paired_lead(default, row, image_key))})"
            for row in others
        )
        if missing:
            measured += f"; no {', '.join(missing)} row"
        add(
            f"default model ahead of both other rows on {name}",
            measured,
            all(mine > v for v in theirs.values()),
        )
    for key, name, threshold in QUALITY_TARGETS:
        value = default["summary"]["all"][key] if ok else None
        add(
            f"default model {name} >= {threshold:g}",
            f"{value:.3f}" if value is not None else "-",
            None if value is None else value >= threshold,
        )
    if ok:
        groups = {g: s for g, s in default["summary"].items() if g != "all"}
        worst = min(groups, key=lambda g: groups[g]["mean_dsb_score"]) if groups else None
        measured = (
            f"lowest: {worst} {groups[worst]['mean_dsb_score']:.3f} (n={groups[worst]['n_images']})"
            if worst
            else "-"
        )
        passed = all(s["mean_dsb_score"] >= MIN_GROUP_DSB for s in groups.values())
        add(
            f"no image-kind group of the default model below {MIN_GROUP_DSB:g} DSB",
            measured,
            passed if groups else None,
        )
    else:
        add(f"no image-kind group of the default model below {MIN_GROUP_DSB:g} DSB", "-", None)
    return targets


# --------------------------------------------------------------------------- report


def _f(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _options_text(quality) -> str:
    row = next((r for r in quality if r.get("options") and r["name"] == "default"), None)
    if row is None:
        return "-"
    options = row["options"]
    return (
        f"foreground threshold {options['threshold']}, smallest nucleus {options['min_size']} "
        f"px, tiles of {options['tile_size']} px"
    )


def _table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _speed_value(entry, key, template):
    if not isinstance(entry, dict) or not entry:
        return "not measured"
    if "error" in entry:
        return f"error: {entry['error']}"
    return template.format(**entry) if key is None else template.format(entry[key])


def render_markdown(report: dict) -> str:
    meta, machine = report["meta"], report["meta"]["machine"]
    out = ["# Benchmark results", ""]
    out += [
        f"Command: `{meta['command']}`",
        "",
        f"- Date: {meta['started_utc']} UTC, took {meta['minutes']:.1f} min.",
        f"- Machine: {machine['cpu_model']}, {machine['cpu_count']} logical CPUs "
        f"(`os.cpu_count()`; {machine['cpus_usable']} usable), "
        f"{(machine['memory_bytes'] or 0) / 2**30:.0f} GiB RAM, "
        f"{'GPU: ' + ', '.join(machine['gpus']) if machine['gpus'] else 'no GPU'}; "
        f"SIMD: {', '.join(machine['simd']) or '-'}.",
        f"- Software: Python {machine['python']}, TensorFlow {machine['tensorflow']}, "
        f"Keras {machine['keras']}, NumPy {machine['numpy']}.",
        f"- Data: `{meta['data']}`, split `{meta['split']}`: {meta['n_images']} images "
        f"({', '.join(f'{n} {k}' for k, n in meta['kinds'].items())})"
        + (f", first {meta['limit']} only (--limit)" if meta.get("limit") else "")
        + ".",
    ]
    start, end = meta["load_start"], meta["load_end"]
    note = (
        "- Load: load average (1, 5, 15 min) "
        f"{', '.join(map(str, start['loadavg']))} at the start, "
        f"{', '.join(map(str, end['loadavg']))} at the end."
    )
    if start["busy_processes"] or end["busy_processes"]:
        note += (
            " **Other processes were using the CPU**, so the timings below are slower than on "
            "an idle machine (the quality figures do not depend on it):"
        )
        out += [note]
        for when, snapshot in (("start", start), ("end", end)):
            for process in snapshot["busy_processes"]:
                out += [f"  - at the {when}: `{process['command']}` ({process['cpu_percent']} %)"]
    else:
        note += (
            " No other process used 20 % of a CPU or more at the start or the end. Timings "
            "are wall clock and still move a few percent between runs."
        )
        out += [note]
    out += [""]

    targets = report.get("targets", [])
    if targets:
        out += ["## Targets", ""]
        out += _table(
            ["target", "measured", "result"],
            [[t["target"], t["measured"], f"**{t['result']}**"] for t in targets],
        )
        out += [""]

    quality = report.get("quality")
    if quality:
        n_images = meta["n_images"]
        out += [
            f"## Quality ({meta['split']} split, {n_images} images, all rows on the same images)"
        ]
        out += [""]
        header = ["method"] + [label for _, label in QUALITY_COLUMNS] + ["s / image"]
        rows = []
        for row in quality:
            if row["status"] != "ok":
                rows.append([row["label"], row["status"]] + [""] * len(QUALITY_COLUMNS))
                continue
            scores = row["summary"]["all"]
            rows.append(
                [row["label"]]
                + [_f(scores[key], 2 if "count" in key else 3) for key, _ in QUALITY_COLUMNS]
                + [_f(row["seconds_per_image"], 2)]
            )
        out += _table(header, rows)
        out += [
            "",
            "Means over images. DSB score: mean over IoU thresholds 0.50, 0.55 ... 0.95 of "
            "TP / (TP + FP + FN). F1@0.5: object F1, a match needs IoU > 0.5. fg IoU, Dice, pixel "
            "accuracy: the foreground masks. Count error: |predicted - true| nuclei per image. "
            "s / image: segmentation time per image (read and scoring excluded). The models "
            f"run with the app's default settings ({_options_text(quality)}).",
            "",
            "### By image kind",
            "",
        ]
        rows = []
        for group in GROUPS[1:]:
            for row in quality:
                if row["status"] != "ok" or group not in row["summary"]:
                    continue
                scores = row["summary"][group]
                rows.append(
                    [f"{group} (n={scores['n_images']})", row["label"]]
                    + [_f(scores[key], 2 if "count" in key else 3) for key, _ in QUALITY_COLUMNS]
                )
        out += _table(["kind", "method"] + [label for _, label in QUALITY_COLUMNS], rows)
        out += [
            "",
            "Kind as `nuclei_core.io.image_kind` decides it: colour images are stained, "
            "grey images with a bright background brightfield, the rest fluorescence.",
            "",
        ]

    if report.get("models"):
        out += ["## Models", ""]
        rows = []
        for name, model in report["models"].items():
            flops = report.get("speed", {}).get("flops", {}).get(name, {})
            rows.append(
                [
                    name,
                    f"`{model['path']}`",
                    model["architecture"],
                    f"{model['parameters']:,}",
                    f"{model['file_megabytes']} MB",
                    _f(flops.get("flops", 0) / 1e9, 2) if flops.get("flops") else "-",
                    f"{model['train_seconds'] / 60:.0f} min" if model.get("train_seconds") else "-",
                    model.get("epochs_run", "-"),
                    ENCODER_STARTS.get(model.get("encoder_weights"), "-"),
                ]
            )
        out += _table(
            [
                "model",
                "file",
                "architecture",
                "parameters",
                "size",
                "GFLOPs / 256x256 image",
                "training time",
                "epochs",
                "encoder start",
            ],
            rows,
        )
        out += [""]
        for name, model in report["models"].items():
            if model.get("command"):
                out += [f"- {name} was trained with `{model['command']}`."]
        if any(m.get("encoder_weights") == "random" for m in report["models"].values()):
            out += [
                "- The original project started MobileNetV2 from ImageNet weights. This "
                "machine has no network, so Keras could not download them and the baseline's "
                "encoder started from random weights (`encoder_weights` in its card)."
            ]
        out += [""]

    speed = report.get("speed")
    if speed:
        out += ["## Speed (this machine, CPU only)", ""]
        rows = []
        peak = speed.get("matmul_peak", {})
        throughput = speed.get("throughput_256", {})
        for name in ("default", "mobilenetv2"):
            entry = throughput.get(name)
            if entry is None:
                continue
            rows.append(
                [
                    f"inference, 256 x 256, batch 8 ({name})",
                    _speed_value(entry, "images_per_s", "{:.1f} images/s"),
                    f"`predict_many` on {entry.get('images', '?')} real 256 x 256 crops of "
                    "the split's images, best of 3 after a warm-up",
                ]
            )
        e2e = speed.get("end_to_end_1024", {})
        breakdown = e2e.get("median_breakdown", {})
        rows.append(
            [
                "end to end, one 1024 x 1024 image (default)",
                _speed_value(e2e, "median_seconds", "{:.2f} s"),
                f"`io.read_image` of the PNG + `segment_image` (predict, instances, "
                f"measurements) on `{e2e.get('image', '?')}`, median of 5 after a warm-up"
                + (
                    f"; read {breakdown['read']:.2f} s, predict {breakdown['predict']:.2f} s, "
                    f"instances + table {breakdown['instances_and_measurements']:.2f} s, "
                    f"{e2e.get('nuclei')} nuclei"
                    if breakdown
                    else ""
                ),
            ]
        )
        large = speed.get("large_4096", {})
        rows.append(
            [
                "4096 x 4096 image, tiled: peak memory (default)",
                _speed_value(large, "peak_rss_bytes", "{}")
                if "peak_rss_bytes" not in large
                else f"{large['peak_rss_bytes'] / GB:.2f} GB",
                "peak resident memory (`ru_maxrss`) of a fresh process that imports the "
                "engine, loads the model, reads the PNG and segments it (1024 tiles, 64 px "
                "overlap); the image is a real 1024 x 1024 image tiled 4 x 4",
            ]
        )
        rows.append(
            [
                "4096 x 4096 image, tiled: seconds (default)",
                _speed_value(large, "seconds_read_and_segment", "{:.1f} s"),
                (
                    f"read {large['seconds_read']:.1f} s + predict {large['seconds_predict']:.1f}"
                    f" s + instances/table {large['seconds_instances']:.1f} s, "
                    f"{large['nuclei']} nuclei; the process took "
                    f"{large['seconds_process_wall']:.1f} s with TensorFlow import and model load"
                )
                if "seconds_read" in large
                else "",
            ]
        )
        training = speed.get("training", {})
        for name, recipe in (("default", "256 x 256 crops, batch 8"), ("mobilenetv2", None)):
            entry = training.get(name)
            if entry is None:
                continue
            recipe = recipe or (
                f"{entry.get('crop')} x {entry.get('crop')} crops, batch {entry.get('batch_size')}"
            )
            rows.append(
                [
                    f"training ({name}, {recipe})",
                    _speed_value(entry, "images_per_s", "{:.1f} images/s"),
                    "`model.fit` with the `nuclei_core.train` optimizer, loss, metrics and "
                    f"augmenting `tf.data` pipeline, in {entry.get('precision', 'float32')} "
                    "(as `train` picks it on this machine), "
                    f"{entry.get('steps_timed', '?')} steps after 3 warm-up steps",
                ]
            )
        rows.append(
            [
                "machine peak, float32 matmul",
                _speed_value(peak, "gflops_per_s", "{:.0f} GFLOP/s"),
                f"TensorFlow {peak.get('n', 4096)} x {peak.get('n', 4096)} @ "
                f"{peak.get('n', 4096)} x {peak.get('n', 4096)}, best of 5 after a warm-up",
            ]
        )
        for name, entry in speed.get("achieved", {}).items():
            rows.append(
                [
                    f"model achieved FLOP/s, 256 x 256 inference ({name})",
                    f"{entry['gflops_per_s']:.1f} GFLOP/s = {entry['fraction_of_peak']:.0%} "
                    "of peak",
                    f"{entry['gflops_per_image']:.2f} GFLOPs per image (convolutions, counted "
                    f"from the traced graph) x {entry['images_per_s']:.1f} images/s",
                ]
            )
        out += _table(["measurement", "value", "how"], rows)
        out += [""]

    notes = report.get("notes", [])
    if notes:
        out += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    out += [
        "Every figure comes from this one run; `bench/results.json` holds them all, "
        "with the per-image scores of every quality row.",
        "",
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--data", default=str(DEFAULT_DATA), help="dataset folder (DSB2018 stage1_train)"
    )
    parser.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    parser.add_argument(
        "--model", default=str(ROOT / "models" / "default.keras"), help="default model"
    )
    parser.add_argument(
        "--baseline-model",
        default=str(ROOT / "runs" / "mobilenetv2" / "model.keras"),
        help="the original project's recipe (MobileNetV2 U-Net, 128 x 128 crops, batch 10)",
    )
    parser.add_argument(
        "--out-dir", default=str(BENCH), help="where RESULTS.md and results.json go"
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N images (quick check)"
    )
    parser.add_argument("--skip-speed", action="store_true", help="quality rows only")
    parser.add_argument("--skip-quality", action="store_true", help="speed rows only")
    parser.add_argument("--no-tta", action="store_true", help="leave out the test-time-flips row")
    parser.add_argument(
        "--speed-images", type=int, default=64, help="256 x 256 inputs for images/s"
    )
    parser.add_argument("--train-steps", type=int, default=8, help="timed training steps")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    began = time.perf_counter()
    command = "python bench/run.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    started_utc = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    log("machine and load")
    report: dict = {
        "meta": {
            "command": command.strip(),
            "started_utc": started_utc,
            "machine": machine_info(),
            "load_start": load_snapshot(),
            "data": str(args.data),
            "split": args.split,
            "limit": args.limit,
        }
    }
    meta = report["meta"]
    dataset = io.discover_dataset(args.data)
    samples = io.select_split(dataset, args.split)
    if args.limit:
        samples = samples[: args.limit]
    if not samples:
        raise SystemExit(f"{args.data}: the {args.split} split is empty")
    kinds: dict[str, int] = {}
    for sample in samples:
        kind = io.image_kind(io.read_image(sample.image_path))
        kinds[kind] = kinds.get(kind, 0) + 1
    meta["n_images"] = len(samples)
    meta["kinds"] = dict(sorted(kinds.items(), key=lambda item: -item[1]))
    meta["ids"] = [sample.id for sample in samples]

    from nuclei_core.model import load_model

    model = load_model(args.model)
    baseline, baseline_missing = load_optional_model(args.baseline_model)
    report["models"] = {"default": describe_model(model, args.model)}
    if baseline is not None:
        report["models"]["mobilenetv2"] = describe_model(baseline, args.baseline_model)
    notes = report["notes"] = []
    if baseline_missing:
        notes.append(f"No row for the original recipe: {baseline_missing}.")

    if not args.skip_quality:
        warm_up(model)
        rows = [
            quality_row(
                "default", "default model", model, samples, SegmentOptions(), _relative(args.model)
            )
        ]
        if not args.no_tta:
            rows.append(
                quality_row(
                    "default_tta",
                    "default model + test-time flips",
                    model,
                    samples,
                    SegmentOptions(tta=True),
                    _relative(args.model),
                )
            )
        label = "original recipe (MobileNetV2, 128 px crops)"
        if baseline is not None:
            warm_up(baseline)
            rows.append(
                quality_row(
                    "mobilenetv2",
                    label,
                    baseline,
                    samples,
                    SegmentOptions(),
                    _relative(args.baseline_model),
                )
            )
        else:
            rows.append(
                missing_row("mobilenetv2", label, _relative(args.baseline_model), baseline_missing)
            )
        rows.append(
            quality_row(
                "classical",
                "classical: Otsu + watershed",
                classical_baseline,
                samples,
                None,
                "nuclei_core.instances.otsu_labels(io.to_model_input(image))",
            )
        )
        report["quality"] = rows
        tta = _row(report, "default_tta")
        plain = _row(report, "default")
        if tta and tta["status"] == "ok" and plain["seconds_per_image"]:
            notes.append(
                f"Test-time flips (4 passes) take {tta['seconds_per_image']:.2f} s per image "
                f"against {plain['seconds_per_image']:.2f} s without "
                f"({tta['seconds_per_image'] / plain['seconds_per_image']:.1f}x); the app and "
                "CLI default is without (`--tta` turns them on)."
            )

    if not args.skip_speed:
        speed = report["speed"] = {}
        attempt(speed, "matmul_peak", matmul_peak)
        flops = speed["flops"] = {}
        attempt(flops, "default", conv_flops, model)
        if baseline is not None:
            attempt(flops, "mobilenetv2", conv_flops, baseline)
        log("speed: preparing realistic 256 x 256 inputs")
        crops = realistic_crops(samples, count=args.speed_images)
        throughput = speed["throughput_256"] = {}
        attempt(throughput, "default", batched_throughput, model, crops)
        if baseline is not None:
            attempt(throughput, "mobilenetv2", batched_throughput, baseline, crops)
        del crops
        achieved = speed["achieved"] = {}
        peak = speed["matmul_peak"].get("gflops_per_s")
        for name in throughput:
            per_image = flops.get(name, {}).get("flops")
            rate = throughput[name].get("images_per_s")
            if per_image and rate and peak:
                achieved[name] = {
                    "gflops_per_image": per_image / 1e9,
                    "images_per_s": rate,
                    "gflops_per_s": per_image * rate / 1e9,
                    "fraction_of_peak": per_image * rate / 1e9 / peak,
                }
        sample_1024, where = find_image_of_size(samples, dataset, 1024, 1024)
        if sample_1024 is None:
            notes.append("No 1024 x 1024 image in the dataset: end-to-end and 4096 rows skipped.")
        else:
            e2e = attempt(speed, "end_to_end_1024", end_to_end, model, sample_1024.image_path)
            e2e["image"] = f"{sample_1024.id[:12]}... ({where})"
            image = io.read_image(sample_1024.image_path)
            large = attempt(speed, "large_4096", large_image, args.model, image)
            large["source_image"] = f"{sample_1024.id[:12]}... tiled 4 x 4"
            del image
        training = speed["training"] = {}
        train_samples = io.select_split(dataset, "train")[:8] or samples[:8]
        attempt(
            training,
            "default",
            training_throughput,
            args.model,
            train_samples,
            256,
            8,
            args.train_steps,
        )
        if baseline is not None:
            attempt(
                training,
                "mobilenetv2",
                training_throughput,
                args.baseline_model,
                train_samples,
                128,
                10,
                args.train_steps,
            )
        notes.append(
            "Training speed uses 8 images of the train split and a throw-away copy of each "
            "model; nothing is saved."
        )

    meta["load_end"] = load_snapshot()
    meta["minutes"] = (time.perf_counter() - began) / 60
    report["targets"] = evaluate_targets(report)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from nuclei_core.storage import atomic_write_json, atomic_write_text

    atomic_write_json(out_dir / "results.json", report)
    atomic_write_text(out_dir / "RESULTS.md", render_markdown(report))
    log(f"wrote {out_dir / 'RESULTS.md'} and {out_dir / 'results.json'}")
    for target in report["targets"]:
        print(f"{target['result']:>12}  {target['target']}: {target['measured']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
