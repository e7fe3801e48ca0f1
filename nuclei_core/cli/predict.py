"""``predict``: find nuclei in image files and folders; write masks, labels, tables, ROIs.

The files come from :mod:`nuclei_core.batch.shards` (``--shard``), the resume rule
and the work per file from :mod:`nuclei_core.batch.collection`, on this process or
on Dask workers (:mod:`nuclei_core.batch.distributed`, ``--dask``).
"""

from __future__ import annotations

import contextlib
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


def _plane(text: str | None):
    """``--plane``: None, ``"max"`` or an index (checked against the image later)."""
    if text is None:
        return None
    if text.strip().lower() == "max":
        return "max"
    try:
        return int(text)
    except ValueError:
        raise InputError(f"--plane must be a plane index or 'max', got {text!r}") from None


@contextlib.contextmanager
def _tile_bar(path):
    """A progress bar over a whole slide's tiles (shown when stderr is a terminal): yields the
    slide's ``progress(done, total)``."""
    from tqdm import tqdm

    with tqdm(unit="tile", desc=path.name, disable=not sys.stderr.isatty()) as bar:

        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        yield progress


def _file_job(args):
    """The :class:`~nuclei_core.batch.collection.FileJob` of ``predict``'s options (checked)."""
    from dataclasses import replace

    from nuclei_core.batch.collection import FileJob
    from nuclei_core.checks import check_positive
    from nuclei_core.io import export
    from nuclei_core.storage import ensure_dir

    formats = export.parse_formats(args.formats)
    plane = _plane(args.plane)
    if args.pixel_size is not None:
        check_positive(args.pixel_size, "--pixel-size")
    from nuclei_core.network.predict import SIZE_MULTIPLE

    if args.tile_size < 2 * SIZE_MULTIPLE or args.tile_size % SIZE_MULTIPLE:
        raise InputError(
            f"--tile-size must be a multiple of {SIZE_MULTIPLE}, at least {2 * SIZE_MULTIPLE}; "
            f"got {args.tile_size}"
        )
    options = replace(with_diameter(segment_options(args), args), tile_size=args.tile_size)
    return FileJob(
        ensure_dir(args.out),
        formats,
        options,
        args.channel,
        plane,
        args.pixel_size,
        args.channel_intensities,
        args.tiled,
    )


def _files_to_predict(args, job, shard) -> tuple[list[Path], list[Path]]:
    """``(to_do, finished)``: the inputs of this run (``--shard``'s part) less, with
    ``--resume``, those whose outputs are all written already."""
    from nuclei_core.batch import collection, shards

    files = shards.check_distinct_names(shards.image_files(args.inputs))
    if shard is not None:
        total, files = len(files), shards.select_shard(files, shard)
        print(f"shard {shard.index}/{shard.count}: {len(files)} of {total} images", flush=True)
    if not args.resume:
        return files, []
    files, finished = collection.split_finished(files, job)
    print(f"resume: {len(finished)} images finished before, {len(files)} to do", flush=True)
    return files, finished


def _local_results(args, files, job):
    """This process's engine: one model, one image after another (large TIFFs in tiles)."""
    from nuclei_core.batch.collection import predict_files

    yield from predict_files(load_model(args), files, job, slide_progress=_tile_bar)


def _dask_results(args, files, job):
    """The Dask engine (:mod:`nuclei_core.batch.distributed`): one task per image on the workers of
    a local cluster (``--workers``) or of the scheduler at ``--dask ADDRESS``."""
    from nuclei_core.batch import distributed

    path = model_path(args)
    source = distributed.ModelSource(str(path.absolute()), args.backend, args.precision)
    workers = 2 if args.workers is None else args.workers
    with distributed.connect(args.dask, workers) as client:
        runtimes = distributed.load_on_workers(client, source)
        where = "a local cluster" if args.dask == distributed.LOCAL else args.dask
        shown = "; ".join(sorted(set(runtimes.values())))
        print(f"model: {path} ({shown}; Dask, {len(runtimes)} workers on {where})", flush=True)
        yield from distributed.predict_files(client, source, files, job)


def _check_dask_options(args) -> None:
    """``--dask`` is ``local`` or an address; ``--workers`` (at least 1) needs a local cluster."""
    from nuclei_core.batch.distributed import LOCAL, check_address

    if args.dask is not None:
        check_address(args.dask)
    if args.workers is None:
        return
    if args.dask != LOCAL:
        raise InputError(
            "--workers sets the size of a local Dask cluster: add --dask (without an address)"
        )
    if args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")


def _predict(args) -> int:
    from tqdm import tqdm

    from nuclei_core.batch import collection, shards

    shard = shards.parse_shard(args.shard) if args.shard is not None else None
    _check_dask_options(args)
    job = _file_job(args)
    files, finished = _files_to_predict(args, job, shard)
    results = [collection.FileResult(path, "skipped") for path in finished]
    failed = []
    engine = _local_results if args.dask is None else _dask_results
    bar = tqdm(total=len(files), unit="image", disable=len(files) < 2 or not sys.stderr.isatty())
    for result in engine(args, files, job) if files else ():
        bar.update(1)
        results.append(result)
        for line in result.notes:
            print(f"warning: {line}", file=sys.stderr)
        if result.status == "failed":
            failed.append(result.message)
            print(f"error: {result.message}", file=sys.stderr)
        else:
            print(result.line(), flush=True)
    bar.close()
    if args.summary:
        print(f"summary: {collection.write_summary(args.summary, results)}", flush=True)
    if failed:
        print(f"{len(failed)} of {len(files)} inputs failed:", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


def add_commands(commands) -> None:
    """Register ``predict``."""
    predict = commands.add_parser("predict", help="find nuclei in images; write masks, labels, CSV")
    predict.add_argument("inputs", nargs="+", help="image files or folders of images")
    predict.add_argument("--out", required=True, help="output folder")
    predict.add_argument(
        "--formats",
        default="mask,labels,csv",
        help=(
            "comma list of outputs: mask, labels, csv, roi (Fiji ROI set), geojson (QuPath), "
            "tiff (label TIFF with the pixel size); default mask,labels,csv. A whole slide "
            "always gets its OME-Zarr labels, CSV and overview, and the GeoJSON if asked"
        ),
    )
    predict.add_argument(
        "--pixel-size",
        type=float,
        default=None,
        help="micrometres per pixel (default: read from the file; else sizes in pixels)",
    )
    predict.add_argument(
        "--channel",
        type=int,
        default=None,
        help="nuclear channel of a multi-channel image (0 = first)",
    )
    predict.add_argument(
        "--plane", default=None, help="plane of a z-stack or time series (0 = first), or max"
    )
    predict.add_argument(
        "--channel-intensities",
        action="store_true",
        help="measure the mean intensity of every channel (one column per channel)",
    )
    predict.add_argument(
        "--tile-size",
        type=int,
        default=1024,
        help=(
            "side of the tiles an image larger than it is predicted in; TIFFs over 4096 x 4096 "
            "pixels are segmented tile by tile in bounded memory (labels as OME-Zarr); a "
            "multiple of 32 (default 1024)"
        ),
    )
    predict.add_argument(
        "--tiled", action="store_true", help="segment every input tile by tile, whatever its size"
    )
    predict.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help=(
            "process part I of N (0 <= I < N) of the inputs, chosen by a hash of each file "
            "name: the N jobs of a cluster array cover the inputs without overlap"
        ),
    )
    predict.add_argument(
        "--resume",
        action="store_true",
        help="skip the images whose outputs are all in --out already (an interrupted run)",
    )
    predict.add_argument(
        "--dask",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help=(
            "run the images as Dask tasks: on a local cluster (--workers processes), or on "
            "the scheduler at ADDRESS (tcp://host:8786) whose workers share the folders"
        ),
    )
    predict.add_argument(
        "--workers", type=int, default=None, help="worker processes of the local Dask cluster (2)"
    )
    predict.add_argument(
        "--summary", default=None, help="write one CSV row per image (count, seconds) here"
    )
    diameter = predict.add_mutually_exclusive_group()
    add_diameter(diameter)
    diameter.add_argument(
        "--diameter-um",
        type=float,
        default=None,
        help="expected nucleus diameter in µm (needs a pixel size: the file's or --pixel-size)",
    )
    add_segment_options(predict)
    predict.set_defaults(handler=_predict)
