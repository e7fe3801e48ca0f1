"""Segmenting a whole slide tile by tile: the windows, the per-window steps, the stitching.

:func:`segment_slide` segments a TIFF, OME-TIFF or BigTIFF (:mod:`nuclei_core.slides.reader`;
level 0 of a pyramid) in overlapping windows (:func:`nuclei_core.slides.stitch.tile_grid`)
with the per-image steps of :mod:`nuclei_core.segmentation.segment` (network pass, seeded
watershed: :func:`tile_nuclei`), stitches the nuclei across the seams
(:mod:`nuclei_core.slides.stitch`) into an OME-Zarr label image and appends their
measurements (:func:`nuclei_core.segmentation.measure.measure_nuclei`) to a CSV file as
each tile finishes (:mod:`nuclei_core.slides.outputs`).  Intensities are normalised once
for the whole slide (:mod:`nuclei_core.slides.normalise`), not per tile, so that all
tiles look alike to the network.  Memory holds one window at a time, whatever the size
of the slide.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from nuclei_core.checks import check_positive
from nuclei_core.errors import ConfigError
from nuclei_core.io import export
from nuclei_core.segmentation.measure import measure_nuclei
from nuclei_core.segmentation.options import AUTO, SegmentOptions
from nuclei_core.segmentation.postprocess import labels_from_probabilities
from nuclei_core.slides.normalise import Normalisation, model_input, slide_normalisation
from nuclei_core.slides.outputs import (
    Overview,
    encode_picture,
    feature_stream,
    slide_outputs,
    write_rows,
)
from nuclei_core.slides.reader import open_slide
from nuclei_core.slides.stitch import Tile, add_nuclei, centred_nuclei, label_store, tile_grid

__all__ = ["DEFAULT_MARGIN", "SlideResult", "segment_slide", "tile_nuclei"]

DEFAULT_MARGIN = 128
"""Pixels of context around each tile's core (more than the radius of a large nucleus)."""


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


def tile_nuclei(
    model, region: np.ndarray, tile: Tile, normalisation: Normalisation, options: SegmentOptions
) -> tuple[np.ndarray, np.ndarray]:
    """The nuclei of one tile's window: its label image and the labels centred in its core.

    One network pass over the window (``region``, the slide's pixels of ``tile.window``),
    then the seeded watershed of
    :func:`nuclei_core.segmentation.postprocess.labels_from_probabilities`
    with ``options.threshold``, ``options.min_size`` and ``options.min_confidence``, then
    :func:`nuclei_core.slides.stitch.centred_nuclei`.  A tile's work depends on no other tile;
    only the stitching (:func:`nuclei_core.slides.stitch.add_nuclei`) goes in order.

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig, build_unet
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> tile = Tile(core=(0, 0, 64, 64), window=(0, 0, 96, 96))
    >>> labels, kept = tile_nuclei(model, np.zeros((96, 96), np.uint8), tile,
    ...                            Normalisation(0.0, 255.0, False), SegmentOptions())
    >>> labels.shape, kept.tolist()
    ((96, 96), [])
    """
    from nuclei_core.network.predict import SIZE_MULTIPLE, predict_probabilities

    side = max(64, -(-max(region.shape[:2]) // SIZE_MULTIPLE) * SIZE_MULTIPLE)
    probabilities = predict_probabilities(
        model, model_input(region, normalisation), tile_size=side, tta=options.tta
    )
    labels = labels_from_probabilities(
        probabilities,
        threshold=options.threshold,
        min_size=options.min_size,
        peak_height=options.peak_height,
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
    of :func:`nuclei_core.segmentation.postprocess.labels_from_probabilities` with
    ``options.threshold``, ``options.min_size`` and ``options.min_confidence``); the nuclei
    centred in the core are stitched into the slide's label image (:mod:`nuclei_core.slides.stitch`)
    and measured.

    Parameters
    ----------
    model : keras.Model or OpenVINO model
        As :func:`nuclei_core.network.runtime.load_inference_model` gives it.
    path : str or path-like
        A TIFF, OME-TIFF or BigTIFF, grey or RGB; level 0 of a pyramid is segmented.
    out : str or path-like
        Folder of the outputs (:func:`~nuclei_core.slides.outputs.slide_outputs`):
        ``<stem>_labels.ome.zarr`` (int32 labels, OME-Zarr), ``<stem>_nuclei.csv`` (one
        row per nucleus, written as the tiles finish, in place once all are done),
        ``<stem>_nuclei.geojson`` with ``geojson`` (QuPath detections with their
        measurements, streamed the same way) and ``<stem>_overview.png``.
    options : SegmentOptions, optional
        Threshold, smallest nucleus, flips, and the core size (``tile_size``, a
        multiple of 32); the defaults of :class:`~nuclei_core.segmentation.options.SegmentOptions`.
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
    >>> import tifffile
    >>> from nuclei_core.network.model import ModelConfig, build_unet
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
        overview = Overview(slide.shape, slide.colour, slide.dtype)
        blank = np.zeros((1, 1), np.int32)
        columns = measure_nuclei(blank, intensity_image=blank, pixel_size=pixel_size).columns
        count = 0
        with (
            label_store(outputs["labels"], slide.shape, pixel_size=pixel_size) as labels_out,
            atomic_path(outputs["csv"]) as csv_path,
            open(csv_path, "w", newline="") as handle,
            feature_stream(outputs.get("geojson")) as write_features,
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
                    write_rows(writer, table, top, left, pixel_size)
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
        atomic_write_bytes(outputs["overview"], encode_picture(picture))
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
