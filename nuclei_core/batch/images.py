"""Segmenting many images: one result per image, a summary table, one zip of every output.

* :func:`folder_images` lists the images of a folder typed by the user (checked as
  :func:`nuclei_core.evaluation.evaluate.check_dataset_folder` checks dataset folders);
* :func:`segment_batch` reads and segments paths or uploaded ``(name, bytes)`` one by
  one and yields a :class:`BatchItem` per image; a file that cannot be read gives a
  failed item with the reason (one line naming the file) and the others go on;
  ``progress`` gets a :class:`BatchProgress` (images done, ETA) after each image;
  sizes are in micrometres where the user gives a pixel size or the file records one
  (:func:`nuclei_core.io.metadata.pixel_size`), in pixels otherwise;
* :func:`summary_frame` (one row per image) and :func:`combined_table` (one row per
  nucleus, with the image's name); :mod:`nuclei_core.batch.archive` zips them with
  every image's outputs.

An item keeps its outputs encoded (PNG bytes), its measurement table and an
overlay thumbnail, not its label image: a batch of large images stays small.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nuclei_core.checks import check_positive
from nuclei_core.datasets.folders import flat_images
from nuclei_core.errors import DatasetError, InputTypeError, NucleiError
from nuclei_core.evaluation.evaluate import check_dataset_folder
from nuclei_core.io import export
from nuclei_core.io.metadata import pixel_size as file_pixel_size
from nuclei_core.io.render import overlay, thumbnail
from nuclei_core.io.uploads import read_upload
from nuclei_core.segmentation.measure import MEASUREMENT_COLUMNS, area_column
from nuclei_core.segmentation.options import SegmentOptions
from nuclei_core.segmentation.preprocess import to_display_rgb
from nuclei_core.segmentation.segment import segment_image

__all__ = [
    "SUMMARY_COLUMNS",
    "BatchItem",
    "BatchProgress",
    "combined_table",
    "folder_images",
    "segment_batch",
    "summary_frame",
]

SUMMARY_COLUMNS = (
    "image",
    "status",
    "count",
    "mean_area",
    "area_unit",
    "mean_intensity",
    "kind",
    "pixel_size_um",
    "diameter_px",
    "seconds",
    "message",
)
"""Columns of :func:`summary_frame`: ``area_unit`` is ``px`` or ``µm²`` (``pixel_size_um``
known), ``diameter_px`` the expected nucleus diameter used (given or estimated; empty: the
image was segmented as it is), ``message`` a failure's reason or the warnings of reading
the file."""
COMBINED_CSV = "nuclei.csv"
SUMMARY_CSV = "summary.csv"
PER_IMAGE_FOLDER = "per_image"


@dataclass
class BatchItem:
    """What one image of a batch gave: its numbers and outputs, or why it failed.

    ``status`` is ``"ok"`` or ``"failed"``; a failed item has ``message`` (one line
    naming the file) and no outputs.  ``stem`` names its files, unique in the batch.
    """

    name: str
    stem: str
    status: str = "ok"
    message: str = ""
    kind: str = ""
    count: int = 0
    pixel_size: float | None = None  # micrometres per pixel, when known
    diameter: float | None = None  # expected nucleus diameter used (pixels), given or estimated
    table: pd.DataFrame | None = None  # one row per nucleus (measure.measure_nuclei)
    files: dict = field(default_factory=dict)  # file name -> PNG bytes (mask, labels)
    thumbnail: np.ndarray | None = None  # uint8 (h, w, 3) overlay with outlines
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def mean(self, column: str) -> float:
        """Mean of a measurement over the image's nuclei (NaN without nuclei or failed)."""
        if self.table is None or not len(self.table):
            return math.nan
        return float(self.table[column].mean())

    def row(self) -> dict:
        """One row of :func:`summary_frame`."""
        segmented = self.ok and self.table is not None
        return {
            "image": self.name,
            "status": self.status,
            "count": self.count if self.ok else None,
            "mean_area": self.mean(area_column(self.table)) if segmented else math.nan,
            "area_unit": ("µm²" if self.pixel_size else "px") if segmented else "",
            "mean_intensity": self.mean("mean_intensity"),
            "kind": self.kind,
            "pixel_size_um": self.pixel_size,
            "diameter_px": None if self.diameter is None else round(self.diameter, 2),
            "seconds": round(self.seconds, 3),
            "message": self.message,
        }

    def outputs(self) -> dict[str, bytes]:
        """Every file of this image: mask PNG, label image, measurements CSV."""
        if not self.ok:
            return {}
        return {**self.files, f"{self.stem}_nuclei.csv": export.table_csv(self.table)}


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands after an image: ``done`` of ``total``, seconds so far, last name."""

    done: int
    total: int
    elapsed: float
    name: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the mean pace so far (``None`` before the first image).

        Examples
        --------
        >>> BatchProgress(done=2, total=5, elapsed=10.0).eta_seconds
        15.0
        """
        if not self.done:
            return None
        return self.elapsed / self.done * (self.total - self.done)


def folder_images(text, base=None) -> list[Path]:
    """The images directly in a folder typed by the user (PNG, JPEG, TIFF), by name.

    The folder is resolved and checked as
    :func:`nuclei_core.evaluation.evaluate.check_dataset_folder`
    does (``~`` expanded, relative to ``base`` or the project folder).

    Raises
    ------
    DatasetError
        Empty text, missing or unreadable folder, or no image in it.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "b.png").write_bytes(b""); _ = (folder / "notes.txt").write_bytes(b"")
    >>> [path.name for path in folder_images(folder)]
    ['b.png']
    """
    folder = check_dataset_folder(text, base)
    try:
        found = flat_images(folder)
    except OSError as error:
        raise DatasetError(f"{folder}: cannot list the folder ({error.strerror})") from None
    if not found:
        raise DatasetError(f"{folder}: no PNG, JPEG or TIFF image in this folder")
    return found


def _source_name(source) -> str:
    """The file name of a path or of an uploaded ``(name, bytes)`` pair."""
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    if (
        isinstance(source, tuple)
        and len(source) == 2
        and isinstance(source[0], str)
        and isinstance(source[1], (bytes, bytearray, memoryview))
    ):
        return Path(source[0].replace("\\", "/")).name
    raise InputTypeError(
        f"images: each must be a path or a (name, bytes) pair, got {type(source).__name__}"
    )


def _unique_stem(name: str, taken: set) -> str:
    """A file-name stem for ``name``'s outputs that no earlier image of the batch has."""
    stem = Path(name).stem.strip() or "image"
    unique, number = stem, 2
    while unique.lower() in taken:
        unique, number = f"{stem}-{number}", number + 1
    taken.add(unique.lower())
    return unique


def _reason(error: Exception, name: str) -> str:
    """One line naming the file: the error's first line, with the name in front if missing."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, OSError) and not isinstance(error, NucleiError):
        text = f"cannot read the file ({error.strerror or error})"
    return text if name in text else f"{name}: {text}"


def _label_file(stem: str, labels: np.ndarray) -> tuple[str, bytes]:
    """The label image as a 16-bit PNG, or a TIFF above 65,535 nuclei."""
    if labels.size and int(labels.max()) > np.iinfo(np.uint16).max:
        return f"{stem}_labels.tif", export.labels_tiff(labels)
    return f"{stem}_labels.png", export.labels_png16(labels)


def _segment_one(model, source, item: BatchItem, options, pixel_size, thumbnail_side) -> None:
    """Read, segment and encode one image into ``item`` (raises on a bad file)."""
    if isinstance(source, (str, os.PathLike)):
        data = Path(source).read_bytes()
    else:
        data = bytes(source[1])
    image, notes = read_upload(data, item.name)
    if pixel_size is None:
        pixel_size = file_pixel_size(data, item.name).um
    found = segment_image(model, image, options, pixel_size=pixel_size)
    item.pixel_size = pixel_size
    item.kind = found.kind
    item.count = found.count
    item.diameter = found.diameter
    item.table = found.table
    item.message = " ".join(dict.fromkeys(notes))
    label_name, label_data = _label_file(item.stem, found.labels)
    item.files = {f"{item.stem}_mask.png": export.mask_png(found.labels), label_name: label_data}
    item.thumbnail = thumbnail(overlay(to_display_rgb(image), found.labels), thumbnail_side)


def segment_batch(
    model,
    images: Iterable,
    options: SegmentOptions | None = None,
    progress: Callable[[BatchProgress], None] | None = None,
    thumbnail_side: int = 192,
    pixel_size: float | None = None,
) -> Iterator[BatchItem]:
    """Segment images one by one, yielding a :class:`BatchItem` for each, bad files included.

    Parameters
    ----------
    model : keras.Model or runtime.OpenVinoModel
        The segmentation network.
    images : iterable of path or (str, bytes)
        Image files, or uploaded files as ``(name, content)`` pairs.
    options : SegmentOptions, optional
        Threshold, minimum size, test-time flips (default ``SegmentOptions()``).
    progress : callable, optional
        ``progress(BatchProgress)`` after each image, failed ones included.
    thumbnail_side : int, optional
        Longer side of each overlay thumbnail, in pixels.
    pixel_size : float, optional
        Micrometres per pixel of every image; by default each file's own where it
        records one (OME or ImageJ TIFF, resolution tags), else sizes stay in pixels.

    Yields
    ------
    BatchItem
        In the order of ``images``.  A file that cannot be read or segmented
        (``NucleiError`` or ``OSError``) gives a failed item whose ``message`` is one
        line naming the file; the batch goes on.

    Raises
    ------
    InputTypeError
        An entry of ``images`` is neither a path nor a ``(name, bytes)`` pair
        (checked before the first image is segmented).

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig, build_unet
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> good = export.encode_png(np.zeros((32, 32), np.uint8))
    >>> items = list(segment_batch(model, [("a.png", good), ("b.png", b"not an image")]))
    >>> [(item.name, item.status) for item in items]
    [('a.png', 'ok'), ('b.png', 'failed')]
    >>> items[1].message
    'b.png: not a PNG, JPEG or TIFF image'
    """
    options = options or SegmentOptions()
    if pixel_size is not None:
        pixel_size = check_positive(pixel_size, "pixel_size")
    sources = list(images)
    names = [_source_name(source) for source in sources]
    taken: set = set()
    started = time.perf_counter()
    for done, (source, name) in enumerate(zip(sources, names, strict=True), start=1):
        item = BatchItem(name=name, stem=_unique_stem(name, taken))
        image_started = time.perf_counter()
        try:
            _segment_one(model, source, item, options, pixel_size, thumbnail_side)
        except (NucleiError, OSError) as error:
            item = BatchItem(
                name=name, stem=item.stem, status="failed", message=_reason(error, name)
            )
        item.seconds = time.perf_counter() - image_started
        if progress is not None:
            progress(BatchProgress(done, len(sources), time.perf_counter() - started, name))
        yield item


def summary_frame(items: Iterable[BatchItem]) -> pd.DataFrame:
    """One row per image: :data:`SUMMARY_COLUMNS`.

    Examples
    --------
    >>> summary_frame([BatchItem("a.png", "a", status="failed", message="a.png: empty")])[
    ...     ["image", "status", "message"]].values.tolist()
    [['a.png', 'failed', 'a.png: empty']]
    """
    return pd.DataFrame([item.row() for item in items], columns=list(SUMMARY_COLUMNS))


def combined_table(items: Iterable[BatchItem]) -> pd.DataFrame:
    """One row per nucleus of every segmented image, ``image`` (its file name) first.

    Images measured in micrometres and in pixels give both sets of columns, each
    empty (NaN) on the other images' rows.

    Examples
    --------
    >>> item = BatchItem("a.png", "a", count=1, table=pd.DataFrame({"label": [1], "area": [9.0]}))
    >>> combined_table([item]).values.tolist()
    [['a.png', 1, 9.0]]
    """
    tables = [
        item.table.assign(image=item.name) for item in items if item.ok and item.table is not None
    ]
    tables = [table for table in tables if len(table)]
    if not tables:
        return pd.DataFrame(columns=["image", *MEASUREMENT_COLUMNS])
    combined = pd.concat(tables, ignore_index=True)
    return combined[["image", *[column for column in combined if column != "image"]]]
