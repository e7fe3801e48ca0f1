"""Where a folder run's time goes: a cProfile of ``predict`` by stage, and time to first result.

Usage::

    python -m bench.profile_folder --label after              # this checkout
    git worktree add /tmp/before e6172c4                      # the code before issue 25
    PYTHONPATH=/tmp/before python bench/profile_folder.py --label before

The images are the DSB 2018 test split (73 images of every kind, 256 x 256 to
1024 x 1024, copied flat into ``bench/work/profile_images`` once) or ``--data``. The
script uses only the standard library and what every version of ``nuclei_core`` since
its packages has (the CLI, ``flat_images``, ``image_size``), so the same file measures
the code before and after a change. Three figures:

* **time to first result**: ``python -m nuclei_core predict IMAGE`` on the first image in a
  fresh process, start to exit (best of ``--repeats``), and whether TensorFlow was imported;
* **the folder**: ``python -m nuclei_core predict FOLDER`` in a fresh process, as a user runs
  it (its default options: the size estimate, the card's calibration), against the
  classical pipeline over the same folder in a fresh process (:data:`CLASSICAL`);
* **profile**: the same command in this process under cProfile with one image at a time
  (the profiler sees only the calling thread), seconds by stage (cumulative time of the
  engine's calls: reading, network, seeds and watershed, measurements, writing), network
  passes counted, and the functions with the most time of their own.

Results go to ``bench/results/profile_<label>.json`` and ``.md``; the default model on
the default backend (OpenVINO where it is installed).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
IMAGES = ROOT / "bench" / "work" / "profile_images"
DSB = ROOT.parent / "shared" / "data" / "dsb2018" / "stage1_train"

STAGES = {
    "reading": ("read_stack",),
    "network": ("predict_probabilities",),
    "seeds and watershed": ("labels_from_probabilities", "labels_at_model_scale"),
    "measurements": ("measure_nuclei",),
    "writing": ("encode_outputs", "atomic_write_bytes"),
}
"""Stage: the engine functions whose cumulative time it is (outermost calls only)."""


def dsb_test_images(folder: Path) -> Path:
    """The DSB test split's images copied flat into ``folder`` (done once)."""
    from nuclei_core.datasets.folders import discover_dataset, select_split

    if folder.is_dir() and any(folder.iterdir()):
        return folder
    staging = Path(tempfile.mkdtemp(dir=folder.parent if folder.parent.is_dir() else None))
    for sample in select_split(discover_dataset(DSB), "test"):
        shutil.copyfile(sample.image_path, staging / f"{sample.id}{sample.image_path.suffix}")
    staging.rename(folder)
    return folder


CLASSICAL = """
import sys
from pathlib import Path
from nuclei_core.datasets.folders import flat_images
from nuclei_core.io.export import labels_png16, mask_png
from nuclei_core.io.imread import read_image
from nuclei_core.segmentation.classical import otsu_labels
from nuclei_core.segmentation.measure import measure_nuclei, write_measurements_csv
from nuclei_core.storage import atomic_write_bytes

out = Path(sys.argv[2])
for path in flat_images(sys.argv[1]):
    image = read_image(path)
    labels = otsu_labels(image)
    atomic_write_bytes(out / f"{path.stem}_mask.png", mask_png(labels))
    atomic_write_bytes(out / f"{path.stem}_labels.png", labels_png16(labels))
    write_measurements_csv(measure_nuclei(labels, image), out / f"{path.stem}_nuclei.csv")
"""
"""The classical pipeline a CellProfiler user would run instead (Otsu, distance watershed,
the same measurements and files), as a script of its own: the folder run's yardstick."""


def machine_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the platform's."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed_classical(inputs: Path, repeats: int) -> dict:
    """Seconds of :data:`CLASSICAL` over the folder in a fresh process, best of ``repeats``."""
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", CLASSICAL, str(inputs), out], check=True)
            times.append(time.perf_counter() - started)
    return {"seconds": round(min(times), 2), "rounds": [round(t, 2) for t in times]}


def timed_predict(inputs: Path, repeats: int) -> dict:
    """Seconds from a fresh ``python -m nuclei_core predict INPUTS`` to its exit, best of
    ``repeats``, and whether that process imported TensorFlow."""
    times, imported = [], None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "-X", "importtime", "-m", "nuclei_core", "predict"]
            started = time.perf_counter()
            done = subprocess.run(
                [*command, str(inputs), "--out", out], capture_output=True, text=True, check=True
            )
            times.append(time.perf_counter() - started)
        modules = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
        imported = "tensorflow" in modules
    return {
        "seconds": round(min(times), 2),
        "rounds": [round(seconds, 2) for seconds in times],
        "tensorflow_imported": imported,
    }


def profiled_predict(inputs: Path) -> tuple[pstats.Stats, float, int]:
    """``predict INPUTS`` in this process under cProfile, one image at a time (the profiler
    sees only this thread): its statistics, seconds and exit code."""
    from nuclei_core import cli

    try:
        from nuclei_core.batch import pipeline
    except ImportError:  # the code before the pipeline: one image at a time already
        pipeline = None
    in_flight = pipeline.DEFAULT_IN_FLIGHT if pipeline else 1
    with tempfile.TemporaryDirectory() as out:
        profiler = cProfile.Profile()
        started = time.perf_counter()
        try:
            if pipeline:
                pipeline.DEFAULT_IN_FLIGHT = 1
            profiler.enable()
            code = cli.main(["predict", str(inputs), "--out", out])
        finally:
            profiler.disable()
            if pipeline:
                pipeline.DEFAULT_IN_FLIGHT = in_flight
        seconds = time.perf_counter() - started
    return pstats.Stats(profiler), seconds, code


def stage_seconds(stats: pstats.Stats) -> tuple[dict, int]:
    """Cumulative seconds of each :data:`STAGES` entry, and the network passes counted."""
    seconds, passes = dict.fromkeys(STAGES, 0.0), 0
    for (filename, _, name), (_, calls, _, cumulative, callers) in stats.stats.items():
        if "nuclei_core" not in filename:
            continue
        for stage, names in STAGES.items():
            # outermost calls only: a recursive or nested call of the same stage counts once
            nested = any(caller[2] in names for caller in callers)
            if name in names and not nested:
                seconds[stage] += cumulative
        if name == "_run" and filename.endswith("predict.py"):
            passes += calls
    return {stage: round(value, 2) for stage, value in seconds.items()}, passes


def own_time(stats: pstats.Stats, top: int) -> list[dict]:
    """The ``top`` functions with the most time of their own."""
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    return [
        {
            "function": f"{Path(file).name}:{line}({name})",
            "calls": calls,
            "own_s": round(own, 3),
            "cumulative_s": round(cumulative, 3),
        }
        for (file, line, name), (_, calls, own, cumulative, _) in rows
    ]


def report(figures: dict) -> str:
    """The Markdown page of one profile."""
    first = figures["first_result"]
    lines = [
        f"# Folder profile: {figures['label']}",
        "",
        f"Measured {figures['started_utc']} UTC with `{figures['command']}` on "
        f"{figures['machine']} ({figures['cpu_count']} CPU cores, load average at the start "
        f"{', '.join(map(str, figures['loadavg']))}); model on {figures['runtime']}; "
        f"{figures['images']} images ({figures['megapixels']} megapixels) of `{figures['data']}`.",
        "",
        f"- time to first result (fresh `python -m nuclei_core predict` on one image, to its "
        f"exit): {first['seconds']} s; TensorFlow imported: {first['tensorflow_imported']}",
        f"- the folder (fresh `python -m nuclei_core predict FOLDER`, to its exit): "
        f"{figures['folder']['seconds']} s ({figures['images_per_second']} images/s); the "
        f"classical pipeline (Otsu + distance watershed, the same measurements and files, "
        f"`CLASSICAL` in the script) {figures['classical']['seconds']} s: "
        f"{figures['against_classical']}x its time",
        f"- the folder in this process under cProfile, one image at a time: "
        f"{figures['profiled_seconds']} s, {figures['network_passes']} network passes for "
        f"{figures['images']} images",
        "",
        "| stage | seconds (cumulative, profiled run) |",
        "|---|---|",
        *(f"| {stage} | {value} |" for stage, value in figures["stages"].items()),
        "",
        "| function | calls | own s | cumulative s |",
        "|---|---|---|---|",
        *(
            f"| `{row['function']}` | {row['calls']} | {row['own_s']} | {row['cumulative_s']} |"
            for row in figures["own_time"]
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    from nuclei_core.datasets.folders import flat_images
    from nuclei_core.io.imread import image_size
    from nuclei_core.network.runtime import default_runtime

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="names the results: profile_<label>")
    parser.add_argument("--data", default=None, help="a flat folder of images")
    parser.add_argument("--repeats", type=int, default=2, help="fresh processes timed")
    parser.add_argument("--top", type=int, default=25, help="functions listed")
    parser.add_argument("--out-dir", default=str(RESULTS))
    args = parser.parse_args(argv)

    data = Path(args.data) if args.data else dsb_test_images(IMAGES)
    files = flat_images(data)
    figures = {
        "label": args.label,
        "started_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "command": " ".join(
            [f"PYTHONPATH={path}" for path in [os.environ.get("PYTHONPATH")] if path]
            + ["python -m bench.profile_folder", *(argv or sys.argv[1:])]
        ),
        "machine": machine_name(),
        "cpu_count": os.cpu_count(),
        "loadavg": [round(value, 2) for value in os.getloadavg()],
        "runtime": default_runtime(),
        "data": str(data.relative_to(ROOT) if data.is_relative_to(ROOT) else data),
        "images": len(files),
        "megapixels": round(sum(h * w for h, w in map(image_size, files)) / 1e6, 1),
    }
    timed_predict(files[0], 1)  # warm the caches: Numba's, OpenVINO's, the disk's
    figures["first_result"] = timed_predict(files[0], args.repeats)
    figures["folder"] = timed_predict(data, args.repeats)
    figures["classical"] = timed_classical(data, args.repeats)
    figures["against_classical"] = round(
        figures["folder"]["seconds"] / figures["classical"]["seconds"], 2
    )
    stats, seconds, code = profiled_predict(data)
    figures["profiled_seconds"] = round(seconds, 2)
    figures["stages"], figures["network_passes"] = stage_seconds(stats)
    figures["own_time"] = own_time(stats, args.top)
    figures["images_per_second"] = round(len(files) / figures["folder"]["seconds"], 2)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"profile_{args.label}.json").write_text(json.dumps(figures, indent=1) + "\n")
    (out_dir / f"profile_{args.label}.md").write_text(report(figures))
    print(report(figures))
    return code


if __name__ == "__main__":
    sys.exit(main())
