"""Predicting a collection of image files into an output folder, resumable and in shards.

``python -m nuclei_core predict`` runs on this module, on one machine or on many:

* :mod:`nuclei_core.batch.shards` says which files a run does (``--shard I/N``);
* :func:`is_finished` / :func:`split_finished`: ``--resume`` skips the images whose
  outputs are all there.  Every output is written atomically
  (:func:`nuclei_core.storage.atomic_write_bytes`), so a file that exists is whole;
  an image interrupted half way has some of its files missing and is done again.
  No marker files: the output folder holds the outputs only;
* :func:`predict_file` reads, segments and writes one image as :class:`FileJob`
  says and returns a small :class:`FileResult` (count, seconds, reading notes or
  the error), the unit of work of the local loop (:func:`predict_files`) and of the
  Dask engine (:mod:`nuclei_core.batch.distributed`);
* :func:`summary_frame` / :func:`write_summary`: one row per image (``--summary``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nuclei_core.errors import NucleiError
from nuclei_core.io import export
from nuclei_core.segmentation.options import SegmentOptions

__all__ = [
    "SUMMARY_COLUMNS",
    "FileJob",
    "FileResult",
    "is_finished",
    "is_slide",
    "output_paths",
    "predict_file",
    "predict_files",
    "predict_slide",
    "split_finished",
    "summary_frame",
    "write_summary",
]

SUMMARY_COLUMNS = (
    "image",
    "status",
    "count",
    "kind",
    "pixel_size_um",
    "diameter_px",
    "seconds",
    "message",
)
"""Columns of :func:`summary_frame`; ``status`` is ``ok``, ``failed`` or ``skipped`` (resumed);
``diameter_px`` the expected nucleus diameter used (given or estimated; empty: the image
was segmented as it is)."""


@dataclass(frozen=True)
class FileJob:
    """What to do with every image of a run; small and picklable (sent to Dask workers).

    ``out`` is the output folder (shared by all workers), ``formats`` the
    :data:`nuclei_core.io.export.FORMATS` to write; ``channel``, ``plane`` pick the image
    of a multi-channel or multi-plane file; ``pixel_size`` (µm) overrides the file's.
    ``tiled`` segments every image tile by tile as a whole slide (:mod:`nuclei_core.slides.segment`;
    TIFFs over :data:`~nuclei_core.slides.reader.LARGE_IMAGE_PIXELS` always are), in cores of
    ``options.tile_size`` pixels.
    """

    out: Path
    formats: tuple[str, ...] = export.DEFAULT_FORMATS
    options: SegmentOptions = SegmentOptions()
    channel: int | None = None
    plane: int | str | None = None
    pixel_size: float | None = None
    channel_intensities: bool = False
    tiled: bool = False


@dataclass
class FileResult:
    """What one image gave: ``status`` ``ok``, ``failed`` (``message``) or ``skipped``."""

    path: Path
    status: str = "ok"
    count: int = 0
    kind: str = ""
    pixel_size: float | None = None
    seconds: float = 0.0
    message: str = ""
    notes: list[str] = field(default_factory=list)  # what reading the file fixed or guessed
    description: str = ""  # the CLI's line when not the usual one (a whole slide's)
    diameter: float | None = None  # expected nucleus diameter used (pixels), given or estimated

    def line(self) -> str:
        """The line the CLI prints for an image that was segmented.

        Examples
        --------
        >>> FileResult(Path("a.png"), count=3, kind="fluorescence", seconds=0.5).line()
        'a.png: 3 nuclei (fluorescence, 0.50 s)'
        """
        if self.description:
            return self.description
        unit = f", {self.pixel_size:g} µm/pixel" if self.pixel_size else ""
        return f"{self.path.name}: {self.count} nuclei ({self.kind}{unit}, {self.seconds:.2f} s)"

    def row(self) -> dict:
        """One row of :func:`summary_frame`."""
        segmented = self.status == "ok"
        return {
            "image": str(self.path),
            "status": self.status,
            "count": self.count if segmented else None,
            "kind": self.kind,
            "pixel_size_um": self.pixel_size,
            "diameter_px": None if self.diameter is None else round(self.diameter, 2),
            "seconds": round(self.seconds, 3),
            "message": self.message,
        }


def output_paths(path, job: FileJob) -> list[Path]:
    """The files :func:`predict_file` writes for the image at ``path``.

    A whole slide's are those of :func:`nuclei_core.slides.outputs.slide_outputs`, the
    overview last: it is written once the labels and the table are complete.

    Examples
    --------
    >>> [p.name for p in output_paths("in/cells.tif", FileJob(Path("out"), ("mask", "csv")))]
    ['cells_mask.png', 'cells_nuclei.csv']
    >>> [p.name for p in output_paths("in/scan.tif", FileJob(Path("out"), tiled=True))]
    ['scan_labels.ome.zarr', 'scan_nuclei.csv', 'scan_overview.png']
    """
    from nuclei_core.slides.outputs import slide_outputs

    stem = Path(path).stem
    if is_slide(path, job):
        return list(slide_outputs(job.out, stem, "geojson" in job.formats).values())
    return [Path(job.out) / f"{stem}{export.FORMATS[name][0]}" for name in job.formats]


def is_finished(path, job: FileJob) -> bool:
    """Whether every output of ``path`` is in the output folder and not empty.

    Outputs are written atomically, so one that exists is complete; an image cut
    off half way lacks some of them (a whole slide its overview, which a new run
    removes before it starts).  The settings are not compared: resume a run with
    the options it started with.

    Examples
    --------
    >>> import tempfile
    >>> job = FileJob(Path(tempfile.mkdtemp()), ("mask", "csv"))
    >>> _ = (job.out / "cells_mask.png").write_bytes(b"png")
    >>> is_finished("cells.png", job)
    False
    >>> _ = (job.out / "cells_nuclei.csv").write_bytes(b"label\\n")
    >>> is_finished("cells.png", job)
    True
    """
    for output in output_paths(path, job):
        try:
            if output.stat().st_size == 0:
                return False
        except OSError:
            return False
    return True


def split_finished(files: Iterable, job: FileJob) -> tuple[list[Path], list[Path]]:
    """``(to_do, finished)``: the files still to segment, and those :func:`is_finished`.

    Examples
    --------
    >>> import tempfile
    >>> job = FileJob(Path(tempfile.mkdtemp()), ("csv",))
    >>> _ = (job.out / "a_nuclei.csv").write_bytes(b"label\\n")
    >>> split_finished(["a.png", "b.png"], job)
    ([PosixPath('b.png')], [PosixPath('a.png')])
    """
    to_do, finished = [], []
    for path in map(Path, files):
        (finished if is_finished(path, job) else to_do).append(path)
    return to_do, finished


def _reading_notes(stack, path, channel, plane) -> list[str]:
    """What reading ``path`` fixed or guessed, and which default channel/plane it used, one
    line per note (the defaults joined to the last note)."""
    hints = []
    if stack.n_planes > 1 and plane is None:
        hints.append(f"{stack.n_planes} planes, using plane 0 (choose with --plane)")
    if stack.is_multichannel and channel is None:
        hints.append(f"{stack.n_channels} channels, using channel 0 (choose with --channel)")
    notes = list(stack.notes)
    if hints:
        if notes:
            notes[-1] = f"{notes[-1]}; {'; '.join(hints)}"
        else:
            notes.append(f"{path}: {'; '.join(hints)}")
    return notes


def is_slide(path, job: FileJob) -> bool:
    """Whether :func:`predict_file` segments ``path`` tile by tile, as a whole slide.

    Examples
    --------
    >>> import tempfile
    >>> job = FileJob(Path(tempfile.mkdtemp()))
    >>> is_slide("small.png", job), is_slide("small.png", FileJob(job.out, tiled=True))
    (False, True)
    """
    from nuclei_core.slides.reader import is_large_image

    return job.tiled or is_large_image(path)


def predict_slide(model, path, job: FileJob, progress=None) -> FileResult:
    """Segment a whole slide tile by tile (:func:`nuclei_core.slides.segment.segment_slide`).

    Its outputs are the slide's (labels as OME-Zarr, ``<stem>_nuclei.csv``, an overview, and
    QuPath's GeoJSON when ``job.formats`` has ``geojson``; the other formats are for whole
    images); ``progress(done, total)`` hears of each tile. A slide that cannot
    be read or segmented gives a ``failed`` result naming the file.
    """
    from nuclei_core.slides.segment import segment_slide

    path, started = Path(path), time.perf_counter()
    try:
        result = segment_slide(
            model,
            path,
            job.out,
            job.options,
            pixel_size=job.pixel_size,
            progress=progress,
            geojson="geojson" in job.formats,
        )
    except NucleiError as error:
        seconds = time.perf_counter() - started
        return FileResult(path, "failed", seconds=seconds, message=str(error))
    unit = f", {result.pixel_size:g} µm/pixel" if result.pixel_size else ""
    line = (
        f"{path.name}: {result.count} nuclei ({result.shape[0]} x {result.shape[1]} in "
        f"{result.tiles} tiles{unit}, {result.seconds['total']:.2f} s; labels in "
        f"{result.outputs['labels'].name})"
    )
    seconds = result.seconds["total"]
    return FileResult(
        path, "ok", result.count, "slide", result.pixel_size, seconds, description=line
    )


def predict_file(model, path, job: FileJob, progress=None) -> FileResult:
    """Segment the image at ``path`` and write its outputs into ``job.out``, each atomically.

    A whole slide (:func:`is_slide`) goes to :func:`predict_slide`, with ``progress``.

    Parameters
    ----------
    model : keras.Model or runtime.OpenVinoModel
        The segmentation network.
    path : str or Path
        A PNG, JPEG or TIFF file.
    job : FileJob
        Output folder and formats, segmentation options, channel and plane.

    Returns
    -------
    FileResult
        ``ok`` with the count and seconds, or ``failed`` with a one-line message
        naming the file (a file that cannot be read, segmented or written).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from nuclei_core.network.model import ModelConfig, build_unet
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "cells.png").write_bytes(export.encode_png(np.zeros((32, 32), np.uint8)))
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> result = predict_file(model, folder / "cells.png", FileJob(folder / "out"))
    >>> result.status, sorted(p.name for p in (folder / "out").iterdir())
    ('ok', ['cells_labels.png', 'cells_mask.png', 'cells_nuclei.csv'])
    >>> predict_file(model, folder / "gone.png", FileJob(folder / "out")).status
    'failed'
    """
    from nuclei_core.io import channels
    from nuclei_core.segmentation.segment import segment_image
    from nuclei_core.storage import atomic_write_bytes, ensure_dir

    path = Path(path)
    if is_slide(path, job):
        return predict_slide(model, path, job, progress)
    started = time.perf_counter()
    notes: list[str] = []
    try:
        stack = channels.read_stack(path)
        notes = _reading_notes(stack, path, job.channel, job.plane)
        image = channels.select_image(stack, job.channel, job.plane)
        pixel_size = job.pixel_size or stack.pixel_size.um
        every = channels.channel_images(stack, job.plane) if job.channel_intensities else None
        found = segment_image(
            model, image, job.options, pixel_size=pixel_size, channel_images=every
        )
        encoded = export.encode_outputs(found.labels, found.table, job.formats, pixel_size)
        out = ensure_dir(job.out)
        for output, name in zip(output_paths(path, job), job.formats, strict=True):
            atomic_write_bytes(out / output.name, encoded[name])
    except NucleiError as error:
        seconds = time.perf_counter() - started
        return FileResult(path, "failed", seconds=seconds, message=str(error), notes=notes)
    seconds = time.perf_counter() - started
    return FileResult(
        path,
        "ok",
        found.count,
        found.kind,
        pixel_size,
        seconds,
        notes=notes,
        diameter=found.diameter,
    )


def predict_files(
    model, files: Iterable, job: FileJob, slide_progress=None, in_flight: int | None = None
) -> Iterator[FileResult]:
    """:func:`predict_file` for every file, in this process with one model: the local engine
    of ``predict``; :mod:`nuclei_core.batch.distributed` is the other.

    Up to ``in_flight`` images (default :data:`~nuclei_core.batch.pipeline.DEFAULT_IN_FLIGHT`)
    are read, segmented and written at once, each in a thread
    (:func:`~nuclei_core.batch.pipeline.ordered_map`), so one image's network pass overlaps
    another's reading, post-processing and writing; results come in the files' order, the
    same as one at a time.  Whole slides run alone (they are tiled and use every core
    already); ``slide_progress(path)``, if given, is a context manager entered around each
    of them that gives the ``progress(done, total)`` callable of its tiles.

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig, build_unet
    >>> import tempfile
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> job = FileJob(Path(tempfile.mkdtemp()))
    >>> [result.status for result in predict_files(model, ["missing.png", "gone.tif"], job)]
    ['failed', 'failed']
    """
    from contextlib import nullcontext
    from itertools import groupby

    from nuclei_core.batch.pipeline import DEFAULT_IN_FLIGHT, ordered_map

    in_flight = DEFAULT_IN_FLIGHT if in_flight is None else in_flight
    for slides, paths in groupby(map(Path, files), key=lambda path: is_slide(path, job)):
        if not slides:
            yield from ordered_map(lambda path: predict_file(model, path, job), paths, in_flight)
        for path in paths if slides else ():
            with slide_progress(path) if slide_progress else nullcontext() as progress:
                yield predict_file(model, path, job, progress)


def summary_frame(results: Iterable[FileResult]) -> pd.DataFrame:
    """One row per image (:data:`SUMMARY_COLUMNS`), sorted by image path.

    Examples
    --------
    >>> results = [FileResult(Path("b.png"), count=2), FileResult(Path("a.png"), "skipped")]
    >>> frame = summary_frame(results)
    >>> frame["image"].tolist(), frame["status"].tolist(), frame["count"].tolist()
    (['a.png', 'b.png'], ['skipped', 'ok'], [<NA>, 2])
    """
    rows = sorted((result.row() for result in results), key=lambda row: row["image"])
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).astype({"count": "Int64"})


def write_summary(path: str | os.PathLike, results: Iterable[FileResult]) -> Path:
    """Write :func:`summary_frame` as CSV atomically; the path written.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "summary.csv"
    >>> written = write_summary(target, [FileResult(Path("a.png"))])
    >>> written.read_text().splitlines()[0]
    'image,status,count,kind,pixel_size_um,diameter_px,seconds,message'
    """
    from nuclei_core.storage import atomic_write_bytes

    atomic_write_bytes(path, export.table_csv(summary_frame(results)))
    return Path(path)
