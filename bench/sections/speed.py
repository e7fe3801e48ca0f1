"""Speed on this machine: inference, end to end, a large image, training, and FLOP/s.

* images/s at 256 x 256, batched (``predict_many`` on real crops of the images);
* seconds from a 1024 x 1024 PNG on disk to measured nuclei;
* peak memory and seconds for a 4096 x 4096 image, tiled, in a fresh process
  (``python -m bench.probe_large``);
* images/s over a whole folder, end to end, outputs written as ``predict`` writes them;
* training images/s (``model.fit`` as ``nuclei_core.training`` runs it);
* each model's FLOPs per image and the FLOP/s it achieves as a share of the
  machine's float32 matmul peak, measured in the same run (:mod:`bench.sections.flops`).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.sections.flops import achieved_flops, conv_flops, matmul_peak
from bench.tools.progress import attempt, log
from nuclei_core.datasets.folders import select_split
from nuclei_core.errors import NucleiError
from nuclei_core.io.export import encode_png
from nuclei_core.io.imread import image_size, read_image
from nuclei_core.locations import PROJECT_ROOT
from nuclei_core.network.runtime import backend_of
from nuclei_core.segmentation.options import SegmentOptions
from nuclei_core.segmentation.preprocess import to_display_rgb, to_model_input
from nuclei_core.segmentation.segment import segment_image

TRAINING_RECIPES = {"default": (256, 8), "mobilenetv2": (128, 10)}
"""``model name: (crop, batch size)`` of each model whose training speed is measured."""

TRAINING_NOTE = (
    "Training speed uses 8 images of the train split and a throw-away copy of each model; "
    "nothing is saved."
)


# --------------------------------------------------------------------------- inference


def realistic_crops(samples, count: int = 64, size: int = 256, seed: int = 0) -> list:
    """``count`` random ``size`` x ``size`` crops of real model inputs (from up to 32 images)."""
    rng = np.random.default_rng(seed)
    sources = []
    for sample in samples:
        if len(sources) == 32:
            break
        height, width = image_size(sample.image_path)
        if height >= size and width >= size:
            sources.append(to_model_input(read_image(sample.image_path)))
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
    from nuclei_core.network.predict import predict_many

    predict_many(model, inputs[: batch_size * 2], batch_size=batch_size)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict_many(model, inputs, batch_size=batch_size)
        times.append(time.perf_counter() - started)
    return {
        "images": len(inputs),
        "size": list(inputs[0].shape[:2]),
        "batch_size": batch_size,
        "seconds": [round(seconds, 3) for seconds in times],
        "images_per_s": round(len(inputs) / min(times), 2),
    }


def find_image_of_size(samples, dataset, height: int, width: int):
    """A sample of exactly that size, and where it was found: the split first, else the set."""
    for pool, where in ((samples, "benchmark split"), (dataset.samples, "dataset (other split)")):
        for sample in pool:
            try:
                if image_size(sample.image_path) == (height, width):
                    return sample, where
            except NucleiError:
                continue
    return None, None


def end_to_end(model, path, options: SegmentOptions, repeats: int = 5) -> dict:
    """Seconds from a PNG on disk to measured nuclei (read, predict, instances, table)."""

    def once():
        started = time.perf_counter()
        image = read_image(path)
        read = time.perf_counter()
        result = segment_image(model, image, options)
        return time.perf_counter() - started, read - started, result

    once()
    runs = [once() for _ in range(repeats)]
    totals = [run[0] for run in runs]
    _, read_seconds, middle = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    return {
        "seconds": [round(seconds, 3) for seconds in totals],
        "median_seconds": round(statistics.median(totals), 3),
        "median_breakdown": {
            "read": round(read_seconds, 3),
            "predict": round(middle.seconds["predict"], 3),
            "instances_and_measurements": round(middle.seconds["instances"], 3),
        },
        "nuclei": middle.count,
    }


def large_image(model_path, image, factor: int = 4) -> dict:
    """Tile a real image ``factor`` x ``factor`` times; segment it in a fresh process."""
    big = np.tile(image, (factor, factor) + (1,) * (image.ndim - 2))
    if big.dtype not in (np.uint8, np.uint16):
        big = to_display_rgb(big)
    with tempfile.TemporaryDirectory(prefix="nuclei_bench_") as folder:
        path = Path(folder) / f"tiled_{big.shape[1]}x{big.shape[0]}.png"
        path.write_bytes(encode_png(big))
        del big
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, "-m", "bench.probe_large", "--model", str(model_path)]
            + ["--image", str(path)],
            cwd=PROJECT_ROOT,
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


# --------------------------------------------------------------------------- training


def training_throughput(model_path, samples, crop: int, batch_size: int, steps: int = 8) -> dict:
    """Training images/s: ``model.fit`` on augmented crops, as ``nuclei_core.training`` does it.

    A fresh copy of the model is trained (and thrown away) in the precision, and with
    the optimizer, loss and metrics, of ``nuclei_core.training``, fed by its ``tf.data`` pipeline
    (random scaled crops, flips, rotations, intensity jitter). The first 3 steps are
    warm-up; the clock runs over the next ``steps``.
    """
    import keras

    from nuclei_core.network.losses import NucleiLoss, training_metrics
    from nuclei_core.network.model import ModelConfig, load_model
    from nuclei_core.network.precision import build_with_policy, training_policy
    from nuclei_core.registry import cards
    from nuclei_core.training.config import TrainConfig
    from nuclei_core.training.data import load_training_data
    from nuclei_core.training.pipelines import training_dataset

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
    arrays, _ = load_training_data(samples, crop, distance=model_config.distance)
    data, _ = training_dataset(arrays, crop, batch_size, seed=0)
    marks: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            marks.append(time.perf_counter())

    # The tf.data pipeline shuffles; Keras's own shuffle would only warn that it cannot.
    model.fit(
        data,
        steps_per_epoch=warmup + steps,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[Clock()],
    )
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


def folder_run(segment, samples, folder) -> dict:
    """Images/s over a folder end to end: read, segment, measure, three files written.

    ``segment`` maps an image to ``(labels, table)``; every image gets a mask PNG,
    a 16-bit label PNG and a measurement CSV in ``folder``, as ``predict`` writes them.
    """
    from nuclei_core.io.export import labels_png16, mask_png
    from nuclei_core.segmentation.measure import write_measurements_csv
    from nuclei_core.storage import atomic_write_bytes

    folder = Path(folder)
    started = time.perf_counter()
    for sample in samples:
        labels, table = segment(read_image(sample.image_path))
        stem = sample.image_path.stem
        atomic_write_bytes(folder / f"{stem}_mask.png", mask_png(labels))
        atomic_write_bytes(folder / f"{stem}_labels.png", labels_png16(labels))
        write_measurements_csv(table, folder / f"{stem}_nuclei.csv")
    seconds = time.perf_counter() - started
    return {
        "images": len(samples),
        "seconds": round(seconds, 2),
        "images_per_s": round(len(samples) / seconds, 2),
    }


def folder_runs(model, samples, options: SegmentOptions) -> dict:
    """:func:`folder_run` for the model (with ``options``) and for Otsu + watershed."""
    from nuclei_core.segmentation.classical import otsu_labels
    from nuclei_core.segmentation.measure import measure_nuclei

    def with_model(image):
        result = segment_image(model, image, options)
        return result.labels, result.table

    def classical(image):
        labels = otsu_labels(image)
        return labels, measure_nuclei(labels, image)

    runs = {}
    for name, segment in (("default", with_model), ("otsu_watershed", classical)):
        with tempfile.TemporaryDirectory() as folder:
            runs[name] = folder_run(segment, samples, folder)
    return runs


# --------------------------------------------------------------------------- the section


def measure_speed(models: dict, bench_set, speed_images: int = 64, train_steps: int = 8):
    """Every speed row on ``bench_set``'s images; ``models`` maps a name to ``(model, path)``.

    Returns the ``speed`` part of the report and the notes it adds.
    """
    speed: dict = {}
    notes: list[str] = []
    attempt(speed, "matmul_peak", matmul_peak)
    flops = speed["flops"] = {}
    for name, (model, path) in models.items():
        attempt(flops, name, conv_flops, model if backend_of(model) == "tensorflow" else path)
    log("speed: preparing realistic 256 x 256 inputs")
    crops = realistic_crops(bench_set.samples, count=speed_images)
    throughput = speed["throughput_256"] = {}
    for name, (model, _) in models.items():
        attempt(throughput, name, batched_throughput, model, crops)
    del crops
    peak = speed["matmul_peak"].get("gflops_per_s")
    speed["achieved"] = achieved_flops(flops, throughput, peak)
    model, model_path = models["default"]
    # As the app and the CLI run it: the nucleus diameter estimated from each image.
    options = SegmentOptions.for_model(model_path)
    sample, where = find_image_of_size(bench_set.samples, bench_set.dataset, 1024, 1024)
    if sample is None:
        notes.append("No 1024 x 1024 image in the dataset: end-to-end and 4096 rows skipped.")
    else:
        e2e = attempt(speed, "end_to_end_1024", end_to_end, model, sample.image_path, options)
        e2e["image"] = f"{sample.id[:12]}... ({where})"
        image = read_image(sample.image_path)
        large = attempt(speed, "large_4096", large_image, model_path, image)
        large["source_image"] = f"{sample.id[:12]}... tiled 4 x 4"
        del image
    attempt(speed, "folder", folder_runs, model, bench_set.samples, options)
    training = speed["training"] = {}
    train_samples = select_split(bench_set.dataset, "train")[:8] or bench_set.samples[:8]
    for name, (crop, batch_size) in TRAINING_RECIPES.items():
        if name in models:
            arguments = (models[name][1], train_samples, crop, batch_size, train_steps)
            attempt(training, name, training_throughput, *arguments)
    notes.append(TRAINING_NOTE)
    return speed, notes
