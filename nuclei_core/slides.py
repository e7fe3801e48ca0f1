"""Whole-slide and very large images: read tile by tile, segment tile by tile, stitch.

:func:`open_slide` opens a TIFF, OME-TIFF or BigTIFF (pyramidal or not; level 0 is
segmented) without reading its pixels: :meth:`SlideReader.read` decodes only the TIFF
tiles or strips a region needs (``tifffile``'s zarr store, opened with ``zarr``).
:func:`segment_slide` segments such a file in overlapping windows
(:func:`nuclei_core.stitch.tile_grid`) with the per-image steps of
:mod:`nuclei_core.segment` (network pass, seeded watershed), stitches the nuclei across
the seams (:mod:`nuclei_core.stitch`) into an OME-Zarr label image and appends their
measurements (:func:`nuclei_core.measure.measure_nuclei`) to a CSV file as each tile
finishes.  Intensities are normalised once for the whole slide
(:func:`slide_normalisation`, from a downsampled pyramid level or a regular sample of
level 0), not per tile, so that all tiles look alike to the network.  Memory holds one
window at a time, whatever the size of the slide.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from nuclei_core import export
from nuclei_core.checks import check_int, check_positive
from nuclei_core.errors import ConfigError, ImageReadError
from nuclei_core.imread import fill_non_finite, image_size, is_tiff
from nuclei_core.measure import measure_nuclei
from nuclei_core.metadata import tiff_pixel_size
from nuclei_core.postprocess import labels_from_probabilities
from nuclei_core.preprocess import COLOUR_INVERT_MEDIAN, grey, is_colour
from nuclei_core.segment import AUTO, SegmentOptions
from nuclei_core.stitch import Tile, add_nuclei, centred_nuclei, label_store, tile_grid

__all__ = [
    "DEFAULT_MARGIN",
    "LARGE_IMAGE_PIXELS",
    "Normalisation",
    "SlideReader",
    "SlideResult",
    "is_large_image",
    "model_input",
    "open_slide",
    "segment_slide",
    "slide_normalisation",
    "slide_output_folder",
    "slide_outputs",
    "tile_nuclei",
]

LARGE_IMAGE_PIXELS = 4096 * 4096
"""Images with more pixels than this are segmented as slides (tile by tile) by the CLI."""
DEFAULT_MARGIN = 128
"""Pixels of context around each tile's core (more than the radius of a large nucleus)."""
SAMPLE_PIXELS = 1_000_000
"""About this many pixels are sampled for the slide's intensity percentiles."""
OVERVIEW_SIDE = 2048
"""The longest side of the overview picture."""
LARGEST_CHUNK = 64 * 2**20
"""A TIFF whose tiles or strips hold more pixels than this cannot be read tile by tile."""
_PERCENTILES = (1.0, 99.8)  # those of nuclei_core.preprocess.normalise


class SlideReader:
    """A TIFF file open for reading regions of its level 0; use :func:`open_slide`.

    Attributes
    ----------
    path : pathlib.Path
    shape : tuple of int
        ``(height, width)`` of level 0.
    colour : bool
        Each pixel holds red, green and blue (regions are ``(h, w, 3)``, else ``(h, w)``).
    pixel_size : float or None
        Micrometres per pixel, as the file records it.
    levels : list of tuple
        ``(height, width)`` of every pyramid level, level 0 first.
    """

    def __init__(self, path: str | os.PathLike):
        import zarr

        self.path = Path(path)
        self._tiff = _open_tiff(self.path)
        try:
            series = self._tiff.series[0]
            axes = series.axes
            if axes not in ("YX", "YXS"):
                raise ImageReadError(
                    f"{self.path}: whole slides must be grey (YX) or RGB (YXS) images, "
                    f"got axes {axes} {tuple(series.shape)}"
                )
            self.colour = axes == "YXS"
            self.shape = (int(series.shape[0]), int(series.shape[1]))
            self.levels = [(int(level.shape[0]), int(level.shape[1])) for level in series.levels]
            self.pixel_size = tiff_pixel_size(self._tiff).um
            self.dtype = np.dtype(series.dtype)
            page = series.levels[0].keyframe
            # Uncompressed pixels stored in one piece are read through a memory map.
            self._offset = series.levels[0].dataoffset if page.is_memmappable else None
            self._file_dtype = np.dtype(self._tiff.byteorder + series.dtype.char)
            self._file_shape = tuple(series.levels[0].shape)
            if self._offset is not None:
                self._check_length()
            if self._offset is None and int(np.prod(page.chunks[:2])) > LARGEST_CHUNK:
                raise ImageReadError(
                    f"{self.path}: stored in strips of {page.chunks[0]} x {page.chunks[1]} pixels, "
                    "too large to read in parts; save it as a tiled TIFF"
                )
            self._stores = [series.aszarr(level=index) for index in range(len(self.levels))]
            self._arrays = [zarr.open_array(store, mode="r") for store in self._stores]
        except ImageReadError:
            self.close()
            raise
        except Exception as error:  # tifffile and zarr raise many types for damaged files
            self.close()
            raise ImageReadError(f"{self.path}: truncated or corrupt TIFF ({error})") from None

    def read(self, top: int, left: int, bottom: int, right: int, level: int = 0) -> np.ndarray:
        """The pixels of rows ``top:bottom`` and columns ``left:right`` of a level.

        Returns ``(h, w)`` for a grey slide, ``(h, w, 3)`` for an RGB one (alpha dropped).

        Raises
        ------
        ImageReadError
            The file's data for that region is damaged.
        """
        try:
            if level == 0 and self._offset is not None:
                region = self._mapped(top, left, bottom, right)
            else:
                region = np.asarray(self._arrays[level][top:bottom, left:right])
        except Exception as error:  # a damaged tile raises whatever its codec raises
            raise ImageReadError(
                f"{self.path}: cannot read rows {top}-{bottom}, columns {left}-{right} ({error})"
            ) from None
        if region.dtype == bool:
            region = region.astype(np.uint8) * 255
        return region[..., :3] if self.colour else region

    def _check_length(self) -> None:
        """Refuse a file shorter than its header says (truncated, or a forged header)."""
        needed = self._offset + int(np.prod(self._file_shape)) * self._file_dtype.itemsize
        size = self.path.stat().st_size
        if size < needed:
            raise ImageReadError(
                f"{self.path}: the file is shorter than its header says ({size} bytes, "
                f"{self.shape[1]} x {self.shape[0]} pixels need {needed}): truncated, or "
                "a header that claims more pixels than it holds"
            )

    def _mapped(self, top: int, left: int, bottom: int, right: int) -> np.ndarray:
        """A region of uncompressed, contiguous pixels: mapped, copied, unmapped (so the pages
        read do not stay resident)."""
        mapped = np.memmap(
            self.path, self._file_dtype, mode="r", offset=self._offset, shape=self._file_shape
        )
        region = np.array(mapped[top:bottom, left:right], self._file_dtype.newbyteorder("="))
        del mapped  # the last reference: the map is closed here
        return region

    def close(self) -> None:
        for store in getattr(self, "_stores", []):
            store.close()
        self._tiff.close()

    def __enter__(self) -> SlideReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_tiff(path: Path) -> tifffile.TiffFile:
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as error:
        raise ImageReadError(f"{path}: cannot read file ({error.strerror})") from None
    if not is_tiff(magic):
        raise ImageReadError(
            f"{path}: not a TIFF file (whole slides are read from TIFF, OME-TIFF or BigTIFF)"
        )
    try:
        tiff = tifffile.TiffFile(path)
        if not tiff.series:
            raise ValueError("no image series")
        return tiff
    except Exception as error:  # tifffile raises many types for damaged files
        raise ImageReadError(f"{path}: truncated or corrupt TIFF ({error})") from None


def open_slide(path: str | os.PathLike) -> SlideReader:
    """Open a TIFF, OME-TIFF or BigTIFF for reading regions, without reading its pixels.

    Raises
    ------
    ImageReadError
        No such file, not a TIFF, damaged, or neither grey nor RGB; the message names
        the file.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "slide.tif"
    >>> tifffile.imwrite(target, np.arange(64 * 96, dtype=np.uint16).reshape(64, 96), tile=(32, 32))
    >>> with open_slide(target) as slide:
    ...     slide.shape, slide.read(0, 32, 2, 35).tolist()
    ((64, 96), [[32, 33, 34], [128, 129, 130]])
    """
    return SlideReader(path)


def is_large_image(path: str | os.PathLike, limit: int | None = None) -> bool:
    """Whether ``path`` is a TIFF of more than ``limit`` pixels (:data:`LARGE_IMAGE_PIXELS`).

    Only the header is read; a file that is not a readable image is not large (its
    reader reports the problem).

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "small.tif"
    >>> tifffile.imwrite(target, np.zeros((20, 30), np.uint8))
    >>> is_large_image(target), is_large_image(target, limit=500)
    (False, True)
    """
    limit = LARGE_IMAGE_PIXELS if limit is None else check_int(limit, "limit", minimum=0)
    try:
        with open(path, "rb") as handle:
            if not is_tiff(handle.read(4)):
                return False
        height, width = image_size(path)
    except (OSError, ImageReadError):
        return False
    return height * width > limit


@dataclass(frozen=True)
class Normalisation:
    """The slide's intensity limits and whether it is inverted (bright background).

    :func:`model_input` scales every region between ``low`` and ``high`` as
    :func:`nuclei_core.preprocess.to_model_input` scales a whole image, and inverts it
    when ``invert`` is set.
    """

    low: float
    high: float
    invert: bool


def _sample(slide: SlideReader) -> np.ndarray:
    """About :data:`SAMPLE_PIXELS` pixels of the slide on a regular grid.

    The smallest pyramid level with at least that many pixels when there is one; else
    every ``step``-th row and column of level 0 (the grid
    :func:`nuclei_core.preprocess.normalise` samples), read in bands of rows.
    """
    for index in range(len(slide.levels) - 1, 0, -1):
        height, width = slide.levels[index]
        if height * width >= SAMPLE_PIXELS:
            return slide.read(0, 0, height, width, level=index)
    height, width = slide.shape
    step = max(1, int(np.sqrt(height * width / SAMPLE_PIXELS)))
    band = step * max(1, 1024 // step)
    parts = [
        slide.read(top, 0, min(top + band, height), width)[::step, ::step]
        for top in range(0, height, band)
    ]
    return np.concatenate(parts)


def slide_normalisation(slide: SlideReader) -> Normalisation:
    """Intensity limits (1st and 99.8th percentiles) and inversion for the whole slide.

    Estimated on a sample (a downsampled pyramid level, or a regular grid of level 0),
    with the rules of :func:`nuclei_core.preprocess.to_model_input`: the slide is
    inverted when the median of its normalised grey is above 0.5 (grey) or above
    :data:`~nuclei_core.preprocess.COLOUR_INVERT_MEDIAN` (colour).  For an image of up
    to :data:`SAMPLE_PIXELS` pixels the sample is the whole image, and the limits are
    exactly those of the whole-image path.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "dark.tif"
    >>> tifffile.imwrite(target, np.tile(np.arange(100, dtype=np.uint8), (50, 1)))
    >>> with open_slide(target) as slide:
    ...     limits = slide_normalisation(slide)
    >>> round(limits.low, 2), round(limits.high, 2), limits.invert
    (0.99, 99.0, False)
    """
    sample, _ = fill_non_finite(_sample(slide))
    values = np.asarray(sample, np.float32)
    low, high = (float(value) for value in np.percentile(values, _PERCENTILES))
    if not high > low:
        low, high = float(values.min()), float(values.max())
    scaled = np.clip((values - low) / (high - low), 0, 1) if high > low else values * 0
    median = float(np.median(grey(scaled)))
    invert = median > (COLOUR_INVERT_MEDIAN if is_colour(sample) else 0.5)
    return Normalisation(low, high, invert)


def model_input(region: np.ndarray, normalisation: Normalisation) -> np.ndarray:
    """A region of a slide as the model's input: float32 ``(h, w, 3)`` in [0, 1], nuclei bright.

    Examples
    --------
    >>> x = model_input(np.array([[0, 50, 100]], np.uint8), Normalisation(0.0, 100.0, True))
    >>> x.shape, x[0, :, 0].tolist()
    ((1, 3, 3), [1.0, 0.5, 0.0])
    """
    region, _ = fill_non_finite(region)
    low, high = normalisation.low, normalisation.high
    if high > low:
        scaled = (np.asarray(region, np.float32) - np.float32(low)) / np.float32(high - low)
        np.clip(scaled, 0.0, 1.0, out=scaled)
    else:
        scaled = np.zeros(region.shape, np.float32)
    if normalisation.invert:
        scaled = 1.0 - scaled
    if scaled.ndim == 2:
        scaled = np.repeat(scaled[..., None], 3, axis=-1)
    return np.ascontiguousarray(scaled, dtype=np.float32)


def slide_output_folder(path: str | os.PathLike) -> Path:
    """Where the app puts a slide's outputs: ``<data folder>/slides/<file name>``.

    Examples
    --------
    >>> from nuclei_core.locations import data_folder
    >>> slide_output_folder("/scans/case 7.tif") == data_folder() / "slides" / "case 7"
    True
    """
    from nuclei_core.locations import data_folder

    return data_folder() / "slides" / Path(path).stem


def slide_outputs(out: str | os.PathLike, stem: str, geojson: bool = False) -> dict[str, Path]:
    """The files :func:`segment_slide` writes for an image named ``stem`` into ``out``.

    The overview comes last: it is written once every other output is complete.

    Examples
    --------
    >>> list(slide_outputs("out", "scan", geojson=True))
    ['labels', 'csv', 'geojson', 'overview']
    >>> slide_outputs("out", "scan")["labels"].as_posix()
    'out/scan_labels.ome.zarr'
    """
    folder = Path(out)
    outputs = {
        "labels": folder / f"{stem}_labels.ome.zarr",
        "csv": folder / f"{stem}_nuclei.csv",
        "geojson": folder / f"{stem}_nuclei.geojson",
        "overview": folder / f"{stem}_overview.png",
    }
    if not geojson:
        del outputs["geojson"]
    return outputs


@contextlib.contextmanager
def _feature_stream(path: Path | None):
    """Yield ``write(features)``, which appends GeoJSON features to a FeatureCollection
    at ``path``, written atomically when the block ends well; None writes nothing."""
    from nuclei_core.storage import atomic_path

    if path is None:
        yield lambda features: None
        return
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        handle.write('{"type":"FeatureCollection","features":[')
        written = 0

        def write(features):
            nonlocal written
            for feature in features:
                handle.write(("," if written else "") + json.dumps(feature, separators=(",", ":")))
                written += 1

        yield write
        handle.write("]}")


@dataclass
class SlideResult:
    """What :func:`segment_slide` found and wrote.

    ``overview`` is the downsampled picture with the nuclei drawn (``uint8 (h, w, 3)``,
    also in the ``overview`` file); ``seconds`` the time spent reading, segmenting the
    windows (network and watershed), stitching and measuring, and in all.
    """

    path: Path
    shape: tuple[int, int]
    count: int
    tiles: int
    pixel_size: float | None
    outputs: dict[str, Path]
    overview: np.ndarray
    seconds: dict = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """The measurements, one row per nucleus, read back from the CSV file."""
        return pd.read_csv(self.outputs["csv"])


class _Overview:
    """A downsampled copy of the slide and of its labels, filled in window by window."""

    def __init__(self, shape: tuple[int, int], colour: bool, dtype):
        self.step = max(1, -(-max(shape) // OVERVIEW_SIDE))
        size = (-(-shape[0] // self.step), -(-shape[1] // self.step))
        self.image = np.zeros(size + ((3,) if colour else ()), dtype)
        self.labels = np.zeros(size, np.int32)

    def _place(self, target: np.ndarray, region: np.ndarray, top: int, left: int) -> None:
        first_row, first_column = -top % self.step, -left % self.step
        sampled = region[first_row :: self.step, first_column :: self.step]
        row, column = (top + first_row) // self.step, (left + first_column) // self.step
        target[row : row + sampled.shape[0], column : column + sampled.shape[1]] = sampled

    def add(self, image: np.ndarray, labels: np.ndarray, top: int, left: int) -> None:
        self._place(self.image, image, top, left)
        self._place(self.labels, labels, top, left)

    def picture(self) -> np.ndarray:
        from nuclei_core.preprocess import to_display_rgb
        from nuclei_core.render import overlay

        return overlay(to_display_rgb(self.image), self.labels, alpha=0.25)


def _write_rows(writer, table: pd.DataFrame, top: int, left: int, pixel_size) -> None:
    """Append one tile's measurements, positions moved from the window to the slide."""
    table["centroid_y_px"] += top
    table["centroid_x_px"] += left
    if pixel_size:
        table["centroid_y_um"] += top * pixel_size
        table["centroid_x_um"] += left * pixel_size
    writer.writerows(table.itertuples(index=False, name=None))


def _encode_png(picture: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


def tile_nuclei(
    model, region: np.ndarray, tile: Tile, normalisation: Normalisation, options: SegmentOptions
) -> tuple[np.ndarray, np.ndarray]:
    """The nuclei of one tile's window: its label image and the labels centred in its core.

    One network pass over the window (``region``, the slide's pixels of ``tile.window``),
    then the seeded watershed of :func:`nuclei_core.postprocess.labels_from_probabilities`
    with ``options.threshold``, ``options.min_size`` and ``options.min_confidence``, then
    :func:`nuclei_core.stitch.centred_nuclei`.  A tile's work depends on no other tile;
    only the stitching (:func:`nuclei_core.stitch.add_nuclei`) goes in order.

    Examples
    --------
    >>> from nuclei_core.model import ModelConfig, build_unet
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> tile = Tile(core=(0, 0, 64, 64), window=(0, 0, 96, 96))
    >>> labels, kept = tile_nuclei(model, np.zeros((96, 96), np.uint8), tile,
    ...                            Normalisation(0.0, 255.0, False), SegmentOptions())
    >>> labels.shape, kept.tolist()
    ((96, 96), [])
    """
    from nuclei_core.predict import SIZE_MULTIPLE, predict_probabilities

    side = max(64, -(-max(region.shape[:2]) // SIZE_MULTIPLE) * SIZE_MULTIPLE)
    probabilities = predict_probabilities(
        model, model_input(region, normalisation), tile_size=side, tta=options.tta
    )
    labels = labels_from_probabilities(
        probabilities,
        threshold=options.threshold,
        min_size=options.min_size,
        min_confidence=options.min_confidence,
    )
    return labels, centred_nuclei(labels, tile)


def _stitch_tile(labels_out, existing, labels, kept, tile, count, min_size) -> np.ndarray:
    """Add a tile's nuclei to the label store (rows that changed only); the window's labels."""
    updated, added = add_nuclei(existing, labels, kept, count + 1, min_size)
    if added.size:
        top, left, _, right = tile.window
        changed = np.flatnonzero((updated != existing).any(axis=1))
        first, last = int(changed[0]), int(changed[-1]) + 1
        labels_out[top + first : top + last, left:right] = updated[first:last]
    return updated


def segment_slide(
    model,
    path: str | os.PathLike,
    out: str | os.PathLike,
    options: SegmentOptions | None = None,
    *,
    margin: int = DEFAULT_MARGIN,
    pixel_size: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    geojson: bool = False,
) -> SlideResult:
    """Find, count and measure the nuclei of a slide of any size, one tile at a time.

    Each core of ``options.tile_size`` pixels is segmented in a window ``margin``
    pixels wider on every side (one network pass per window, then the seeded watershed
    of :func:`nuclei_core.postprocess.labels_from_probabilities` with
    ``options.threshold``, ``options.min_size`` and ``options.min_confidence``); the nuclei
    centred in the core are stitched into the slide's label image (:mod:`nuclei_core.stitch`)
    and measured.

    Parameters
    ----------
    model : keras.Model or OpenVINO model
        As :func:`nuclei_core.runtime.load_inference_model` gives it.
    path : str or path-like
        A TIFF, OME-TIFF or BigTIFF, grey or RGB; level 0 of a pyramid is segmented.
    out : str or path-like
        Folder of the outputs (:func:`slide_outputs`): ``<stem>_labels.ome.zarr``
        (int32 labels, OME-Zarr), ``<stem>_nuclei.csv`` (one row per nucleus, written as the
        tiles finish, in place once all are done), ``<stem>_nuclei.geojson`` with
        ``geojson`` (QuPath detections with their measurements, streamed the same way)
        and ``<stem>_overview.png``.
    options : SegmentOptions, optional
        Threshold, smallest nucleus, flips, and the core size (``tile_size``, a
        multiple of 32); the defaults of :class:`~nuclei_core.segment.SegmentOptions`.
    margin : int
        Context around each core (a multiple of 32); should exceed a nucleus's diameter.
    pixel_size : float, optional
        Micrometres per pixel; by default the file's own, else sizes are in pixels.
    progress : callable, optional
        ``progress(done, total)`` after each tile.

    Returns
    -------
    SlideResult

    Raises
    ------
    ImageReadError
        The file cannot be read as a slide (the message names it).
    ConfigError
        ``options`` gives an expected nucleus diameter, which the tiled path does not
        apply (its tiles would need rescaling and stitching at another scale);
        ``diameter="auto"`` segments the slide as it is.

    Examples
    --------
    >>> import tempfile
    >>> from nuclei_core.model import ModelConfig, build_unet
    >>> folder = Path(tempfile.mkdtemp())
    >>> tifffile.imwrite(folder / "scan.tif", np.zeros((100, 150), np.uint8), tile=(64, 64))
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> found = segment_slide(model, folder / "scan.tif", folder, SegmentOptions(tile_size=64),
    ...                       margin=32)
    >>> found.tiles, found.count, sorted(p.name for p in folder.iterdir())
    (6, 0, ['scan.tif', 'scan_labels.ome.zarr', 'scan_nuclei.csv', 'scan_overview.png'])
    """
    from nuclei_core.storage import atomic_path, atomic_write_bytes, ensure_dir

    options = SegmentOptions() if options is None else options
    if options.diameter == AUTO:  # one scale for the whole slide: as it is
        options = replace(options, diameter=None)
    if options.diameter is not None or options.diameter_um is not None:
        raise ConfigError(
            f"{path}: an expected nucleus diameter is not applied to slides segmented tile by "
            "tile; leave it out for this file"
        )
    if pixel_size is not None:
        pixel_size = check_positive(pixel_size, "pixel_size")
    started = time.perf_counter()
    seconds = {"read": 0.0, "segment": 0.0, "stitch": 0.0}
    with open_slide(path) as slide:
        pixel_size = pixel_size or slide.pixel_size
        tiles = tile_grid(*slide.shape, tile=options.tile_size, margin=margin)
        outputs = slide_outputs(ensure_dir(out), slide.path.stem, geojson)
        # The overview is written last: without it the other outputs are not complete.
        outputs["overview"].unlink(missing_ok=True)
        normalisation = slide_normalisation(slide)
        overview = _Overview(slide.shape, slide.colour, slide.dtype)
        blank = np.zeros((1, 1), np.int32)
        columns = measure_nuclei(blank, intensity_image=blank, pixel_size=pixel_size).columns
        count = 0
        with (
            label_store(outputs["labels"], slide.shape, pixel_size=pixel_size) as labels_out,
            atomic_path(outputs["csv"]) as csv_path,
            open(csv_path, "w", newline="") as handle,
            _feature_stream(outputs.get("geojson")) as write_features,
        ):
            writer = csv.writer(handle)
            writer.writerow(columns)
            seconds["read"] += time.perf_counter() - started
            for done, tile in enumerate(tiles, start=1):
                moment = time.perf_counter()
                top, left, bottom, right = tile.window
                region = slide.read(top, left, bottom, right)
                existing = np.asarray(labels_out[top:bottom, left:right])
                read = time.perf_counter()
                labels, kept = tile_nuclei(model, region, tile, normalisation, options)
                segmented = time.perf_counter()
                updated = _stitch_tile(
                    labels_out, existing, labels, kept, tile, count, options.min_size
                )
                if updated.max() > count:
                    new = np.where(updated > count, updated, 0)
                    table = measure_nuclei(new, intensity_image=region, pixel_size=pixel_size)
                    _write_rows(writer, table, top, left, pixel_size)
                    handle.flush()
                    if geojson:
                        write_features(export.geojson_features(new, table, offset=(left, top)))
                    count += len(table)
                overview.add(region, updated, top, left)
                seconds["read"] += read - moment
                seconds["segment"] += segmented - read
                seconds["stitch"] += time.perf_counter() - segmented
                if progress:
                    progress(done, len(tiles))
        picture = overview.picture()
        atomic_write_bytes(outputs["overview"], _encode_png(picture))
        shape = slide.shape
    seconds["total"] = time.perf_counter() - started
    return SlideResult(
        path=Path(path),
        shape=shape,
        count=count,
        tiles=len(tiles),
        pixel_size=pixel_size,
        outputs=outputs,
        overview=picture,
        seconds=seconds,
    )
