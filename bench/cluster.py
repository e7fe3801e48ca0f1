"""Batch prediction on Dask: images per second with one process, and 1, 2 ... Dask workers.

Usage::

    python -m bench.cluster                                # 96 images, 1 and 2 workers
    python -m bench.cluster --images 4 --rounds 1 --out-dir /tmp/c    # quick check

The images are the files of ``sample_images/inputs`` (or ``--data``) copied under new
names until there are ``--images`` of them.  Each engine segments them all into a
fresh output folder, outputs written as ``predict`` writes them: first this process
alone (:func:`nuclei_core.batch.collection.predict_files`, the model loaded beforehand), then
a ``LocalCluster`` of each ``--workers`` count (processes of one thread;
:mod:`nuclei_core.batch.distributed`), started and given the model on every worker before
the clock starts.  Start-up (cluster and model loads) is timed on its own.  The
engines take turns, ``--rounds`` times, and each keeps its fastest pass: on a shared
machine a change of load then hits every engine, not one.  The
figures go to ``cluster.json`` and to the "Batch prediction on Dask" section of
``RESULTS.md`` in ``--out-dir`` (``bench/results/`` by default);
``bench/sections/report.py`` renders the same section from ``bench/results/cluster.json``
when ``python -m bench.run`` writes the whole report.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.tools.markdown import number, replace_section, table
from bench.tools.paths import RESULTS, relative, saved_figures

CLUSTER_JSON = RESULTS / "cluster.json"
"""Where :func:`render_cluster` finds the figures when it is given none."""
HEADING = "## Batch prediction on Dask"


def repeated_images(data: Path, count: int, folder: Path) -> list[Path]:
    """``count`` image files in ``folder``: the images of ``data`` copied in turn.

    Examples
    --------
    >>> import tempfile
    >>> source, target = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    >>> _ = (source / "a.png").write_bytes(b"png"); _ = (source / "b.tif").write_bytes(b"tif")
    >>> [path.name for path in repeated_images(source, 3, target)]
    ['0000_a.png', '0001_b.tif', '0002_a.png']
    """
    from nuclei_core.datasets.folders import flat_images

    sources = flat_images(data)
    if not sources:
        raise SystemExit(f"{data}: no PNG, JPEG or TIFF image")
    copies = []
    for index, source in zip(range(count), itertools.cycle(sources)):
        copies.append(Path(shutil.copyfile(source, folder / f"{index:04d}_{source.name}")))
    return copies


def _row(engine: str, workers: int | None, startup: float, seconds: float, results) -> dict:
    """The figures of one engine's pass over the images."""
    failed = [result.message for result in results if result.status == "failed"]
    return {
        "engine": engine,
        "workers": workers,
        "images": len(results),
        "failed": len(failed),
        "first_failure": failed[0] if failed else "",
        "nuclei": sum(result.count for result in results),
        "seconds_startup": round(startup, 2),
        "seconds": round(seconds, 2),
        "images_per_second": round(len(results) / seconds, 2),
    }


def best_pass(rows: list[dict]) -> dict:
    """The fastest of one engine's passes, with every pass's images/s in ``rounds``.

    Examples
    --------
    >>> best_pass([{"images_per_second": 2.0}, {"images_per_second": 3.0}])
    {'images_per_second': 3.0, 'rounds': [2.0, 3.0]}
    """
    best = max(rows, key=lambda row: row["images_per_second"])
    return {**best, "rounds": [row["images_per_second"] for row in rows]}


def run_alone(source, files: list[Path], folder: Path, in_flight: int) -> dict:
    """This process alone: load the model, then segment the files with ``in_flight`` images
    at once (:func:`nuclei_core.batch.pipeline.ordered_map`; 1: one after the other)."""
    from nuclei_core.batch.collection import FileJob, predict_files

    started = time.perf_counter()
    model = source.load()
    loaded = time.perf_counter()
    job = FileJob(folder / f"alone_{in_flight}")
    results = list(predict_files(model, files, job, in_flight=in_flight))
    row = _row("one process", None, loaded - started, time.perf_counter() - loaded, results)
    row["in_flight"] = in_flight
    return row


def run_dask(source, files: list[Path], folder: Path, workers: int) -> dict:
    """A LocalCluster of ``workers`` processes: start it, load the model on every worker,
    then segment every file as one task each."""
    from nuclei_core.batch import distributed
    from nuclei_core.batch.collection import FileJob

    started = time.perf_counter()
    with distributed.connect(distributed.LOCAL, workers) as client:
        distributed.load_on_workers(client, source)
        ready = time.perf_counter()
        job = FileJob(folder / f"dask_{workers}")
        results = list(distributed.predict_files(client, source, files, job))
        finished = time.perf_counter()
        loads = sum(client.run(distributed.model_loads).values())
    row = _row("Dask LocalCluster", workers, ready - started, finished - ready, results)
    row["model_loads"] = loads
    return row


def cluster_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The table of :func:`render_cluster`: a line per engine, speed-up over the first line.

    Examples
    --------
    >>> rows = [{"engine": "one process", "workers": None, "images": 8, "failed": 0,
    ...          "seconds_startup": 2.0, "seconds": 4.0, "images_per_second": 2.0,
    ...          "in_flight": 1},
    ...         {"engine": "Dask LocalCluster", "workers": 2, "images": 8, "failed": 0,
    ...          "seconds_startup": 9.0, "seconds": 2.5, "images_per_second": 3.2}]
    >>> header, body = cluster_table(rows)
    >>> body[0][0], body[1][0], body[1][-2], body[1][-1]
    ('one process, 1 image in flight', 'Dask LocalCluster, 2 workers', '3.20', '1.60')
    """
    header = ["engine", "images", "failed", "start-up s", "seconds", "images / s", "speed-up"]
    first = rows[0]["images_per_second"] if rows else None
    body = []
    for row in rows:
        name = row["engine"]
        if row["workers"] is not None:
            name += f", {row['workers']} worker{'s' if row['workers'] > 1 else ''}"
        if row.get("in_flight"):
            name += f", {row['in_flight']} image{'s' if row['in_flight'] > 1 else ''} in flight"
        speed = row["images_per_second"]
        body.append(
            [name, row["images"], row["failed"], number(row["seconds_startup"], 1)]
            + [number(row["seconds"], 1), number(speed, 2), number(speed / first, 2)]
        )
    return header, body


def render_cluster(cluster: dict | None = None) -> list[str]:
    """The "Batch prediction on Dask" section; from ``bench/results/cluster.json`` when None."""
    cluster = saved_figures(CLUSTER_JSON) if cluster is None else cluster
    if not cluster:
        return []
    lines = [HEADING, ""] + table(*cluster_table(cluster["rows"])) + [""]
    return lines + [
        f"Measured {cluster['started_utc']} UTC with `{cluster['command']}` on "
        f"{cluster['cpu_count']} CPU cores (load average at the start "
        f"{', '.join(map(str, cluster['loadavg']))}); model `{cluster['model']}` on "
        f"{cluster['runtime']}. {cluster['images']} images ({cluster['megapixels']} megapixels): "
        f"the files of `{cluster['data']}` copied in turn. Each engine reads, segments and "
        "writes mask, labels and CSV of every image into a folder of its own. One process: "
        "`nuclei_core.batch.collection.predict_files` with 1 or more images in flight at once "
        "(threads of `nuclei_core.batch.pipeline.ordered_map`, results in order); Dask: a "
        "`LocalCluster` of worker processes with one thread each, one task per image, the "
        "model loaded once per worker "
        "(`nuclei_core.batch.distributed`). Start-up: loading the model, and for Dask starting the "
        "cluster and loading the model on every worker, before the clock of the images. "
        f"Images/s: the best of {len(cluster['rows'][0]['rounds'])} passes, the engines taking "
        "turns (every pass is in `bench/results/cluster.json`). Speed-up: images/s over the "
        "first row's.",
        "",
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--images", type=int, default=96, help="how many images to segment")
    parser.add_argument(
        "--rounds", type=int, default=3, help="passes of every engine, in turn; the best is kept"
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        nargs="+",
        default=[1, 2, 3],
        help="images in flight at once in one process, each count measured",
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="Dask worker counts to measure"
    )
    parser.add_argument(
        "--data", default=None, help="folder of images (default: sample_images/inputs)"
    )
    parser.add_argument("--model", default=None, help="model file (default: the bundled one)")
    parser.add_argument("--backend", default="auto", choices=["auto", "tensorflow", "openvino"])
    parser.add_argument(
        "--out-dir", default=str(RESULTS), help="where cluster.json and RESULTS.md go"
    )
    return parser


def main(argv=None) -> int:
    from bench.tools.progress import log
    from nuclei_core.batch.distributed import ModelSource
    from nuclei_core.io.imread import image_size
    from nuclei_core.locations import DEFAULT_MODEL, sample_folder
    from nuclei_core.network.runtime import describe
    from nuclei_core.storage import atomic_write_json, atomic_write_text

    args = build_parser().parse_args(argv)
    data = Path(args.data) if args.data else sample_folder() / "inputs"
    model = Path(args.model) if args.model else DEFAULT_MODEL
    source = ModelSource(str(model.resolve()), args.backend)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nuclei_cluster_") as folder:
        files = repeated_images(data, args.images, Path(folder))
        pixels = sum(height * width for height, width in map(image_size, files))
        cluster = {
            "started_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
            "command": shlex.join(
                ["python", "-m", "bench.cluster", *(sys.argv[1:] if argv is None else argv)]
            ),
            "data": relative(data),
            "model": relative(model),
            "runtime": describe(source.load()),
            "images": len(files),
            "megapixels": round(pixels / 1e6, 1),
            "cpu_count": os.cpu_count(),
            "loadavg": [round(value, 2) for value in os.getloadavg()],
            "rows": [],
        }
        runs = [
            (
                f"one process, {count} in flight",
                lambda count=count: run_alone(source, files, Path(folder), count),
            )
            for count in args.in_flight
        ]
        runs += [
            (
                f"Dask, {count} workers",
                lambda count=count: run_dask(source, files, Path(folder), count),
            )
            for count in args.workers
        ]
        passes: list[list[dict]] = [[] for _ in runs]
        for round_number in range(1, args.rounds + 1):  # in turn: a load change hits all
            for (name, run), rows in zip(runs, passes, strict=True):
                log(f"cluster: round {round_number}, {name}")
                rows.append(run())
                log(f"cluster: {rows[-1]}")
            cluster["rows"] = [best_pass(rows) for rows in passes]
            atomic_write_json(out_dir / "cluster.json", cluster)
    results = out_dir / "RESULTS.md"
    existing = results.read_text() if results.is_file() else "# Benchmark results\n"
    atomic_write_text(results, replace_section(existing, render_cluster(cluster)))
    log(f"wrote {out_dir / 'cluster.json'} and the Dask section of {results}")
    return 1 if any(row["failed"] for row in cluster["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
