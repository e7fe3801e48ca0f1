"""Stitching the nuclei of overlapping tiles into one label image of any size.

A large image is cut into *cores*, ``tile`` pixels a side, that cover it without
overlapping (:func:`tile_grid`).  Each core is segmented inside its *window*: the core
grown by ``margin`` pixels on every side (clipped at the image's edges), so that a
nucleus on the core's edge lies whole in the window.  Of a window's nuclei, a tile keeps
those whose centre lies in its core (:func:`centred_nuclei`); a nucleus cut by the
window's outer edge has its centre outside the core and is left to the neighbouring tile.
The core is grown by :data:`SEAM_TOLERANCE` pixels for that test, so a nucleus whose
centre the two tiles on either side of a seam place a pixel apart is kept by both, never
by neither; :func:`add_nuclei` then writes the second copy nowhere, because it finds the
nucleus already there.  A seam nucleus is thus one nucleus, never cut in two nor counted
twice.

The global label image lives on disk, in a chunked OME-Zarr store
(:func:`label_store`, :func:`open_labels`), and only one window of it is in memory at a
time.  OME-Zarr rather than a tiled BigTIFF: a nucleus that crosses a seam is written
into chunks of tiles already done, which a zarr array allows (any region can be read and
rewritten) and a TIFF writer, which writes its tiles once and in order, does not; napari,
Fiji (MoBIE / n5-viewer) and QuPath read OME-Zarr, and zarr in Python or any language
reads the array as it is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from nuclei_core.checks import check_int, check_label_image
from nuclei_core.errors import ConfigError, ImageReadError, StorageError
from nuclei_core.network.predict import SIZE_MULTIPLE

__all__ = [
    "LABEL_DTYPE",
    "SEAM_TOLERANCE",
    "Tile",
    "add_nuclei",
    "centred_nuclei",
    "label_store",
    "open_labels",
    "tile_grid",
]

SEAM_TOLERANCE = 8
"""Pixels by which a core is grown when deciding which nuclei are centred in it."""
LABEL_DTYPE = np.int32
"""dtype of the global label image (room for two billion nuclei)."""
ALIGNMENT = SIZE_MULTIPLE
"""Cores and margins are multiples of this, so every window starts on the pooling grid
of the whole image (a U-Net is not shift-invariant) and tiles match a whole-image pass."""


@dataclass(frozen=True)
class Tile:
    """One tile: its ``core`` and its ``window`` as ``(top, left, bottom, right)`` in the image.

    Examples
    --------
    >>> tile = Tile(core=(64, 0, 128, 64), window=(32, 0, 160, 96))
    >>> tile.window_shape, tile.core_in_window
    ((128, 96), (32, 0, 96, 64))
    """

    core: tuple[int, int, int, int]
    window: tuple[int, int, int, int]

    @property
    def window_shape(self) -> tuple[int, int]:
        top, left, bottom, right = self.window
        return bottom - top, right - left

    @property
    def core_in_window(self) -> tuple[int, int, int, int]:
        """The core in the window's coordinates."""
        top, left = self.window[:2]
        return (self.core[0] - top, self.core[1] - left, self.core[2] - top, self.core[3] - left)


def tile_grid(height: int, width: int, tile: int = 1024, margin: int = 128) -> list[Tile]:
    """The tiles of an image, row by row: cores of ``tile`` pixels, windows ``margin`` wider.

    Raises
    ------
    ConfigError
        ``tile`` or ``margin`` not a multiple of 32, or ``tile`` under 64.

    Examples
    --------
    >>> tiles = tile_grid(100, 300, tile=128, margin=32)
    >>> len(tiles), tiles[1].core, tiles[1].window
    (3, (0, 128, 100, 256), (0, 96, 100, 288))
    """
    check_int(height, "height", minimum=1)
    check_int(width, "width", minimum=1)
    check_int(tile, "tile", minimum=64)
    check_int(margin, "margin", minimum=0)
    if tile % ALIGNMENT or margin % ALIGNMENT:
        raise ConfigError(
            f"tile and margin must be multiples of {ALIGNMENT}, got tile {tile}, margin {margin}"
        )
    tiles = []
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            window = (
                max(0, top - margin),
                max(0, left - margin),
                min(height, bottom + margin),
                min(width, right + margin),
            )
            tiles.append(Tile((top, left, bottom, right), window))
    return tiles


def _centres(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, rows, columns)``: every label present and the mean position of its pixels."""
    height, width = labels.shape
    flat = labels.ravel()
    counts = np.bincount(flat)
    rows = np.bincount(flat, weights=np.repeat(np.arange(height, dtype=np.float64), width))
    columns = np.bincount(flat, weights=np.tile(np.arange(width, dtype=np.float64), height))
    ids = np.flatnonzero(counts)
    ids = ids[ids > 0]
    return ids, rows[ids] / counts[ids], columns[ids] / counts[ids]


def centred_nuclei(labels: np.ndarray, tile: Tile, tolerance: int = SEAM_TOLERANCE) -> np.ndarray:
    """The labels of a window whose centre lies in the tile's core grown by ``tolerance``.

    Parameters
    ----------
    labels : ndarray of int, shape of ``tile.window_shape``
        The window's label image.
    tile : Tile
    tolerance : int
        Pixels by which the core is grown (see the module's description).

    Returns
    -------
    ndarray of int64
        The labels kept, in increasing order.

    Examples
    --------
    >>> labels = np.zeros((64, 96), np.int32)
    >>> labels[10:20, 20:30] = 1; labels[10:20, 60:70] = 2
    >>> tile = Tile(core=(0, 0, 64, 48), window=(0, 0, 64, 96))
    >>> centred_nuclei(labels, tile).tolist()
    [1]
    """
    check_label_image(labels)
    if labels.shape != tile.window_shape:
        raise ConfigError(
            f"labels must have the window's shape {tile.window_shape}, got {labels.shape}"
        )
    ids, rows, columns = _centres(labels)
    top, left, bottom, right = tile.core_in_window
    inside = (
        (rows >= top - tolerance)
        & (rows < bottom + tolerance)
        & (columns >= left - tolerance)
        & (columns < right + tolerance)
    )
    return ids[inside].astype(np.int64)


def add_nuclei(
    existing: np.ndarray, labels: np.ndarray, ids, next_id: int, min_size: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Write the nuclei ``ids`` of a window's ``labels`` into the global labels of that window.

    A nucleus whose pixels are more than half taken already is the same nucleus, kept
    before by a neighbouring tile, and is skipped; otherwise it gets the next global
    label and the pixels still free (pixels two nuclei claim stay with the first).  One
    left with fewer than ``min_size`` free pixels is skipped too.

    Parameters
    ----------
    existing : ndarray of int, shape (h, w)
        The global label image over the window, as written so far; not modified.
    labels : ndarray of int, shape (h, w)
        The window's own nuclei.
    ids : sequence of int
        The labels of ``labels`` to add (see :func:`centred_nuclei`).
    next_id : int
        The global label of the first nucleus added.
    min_size : int
        Smallest nucleus written (pixels).

    Returns
    -------
    updated : ndarray of int32, shape (h, w)
        ``existing`` with the nuclei added.
    added : ndarray of int64
        The global labels given, ``next_id``, ``next_id + 1`` ...

    Examples
    --------
    >>> existing = np.zeros((4, 8), np.int32); existing[:, :3] = 7
    >>> labels = np.zeros((4, 8), np.int32); labels[:, :4] = 1; labels[:, 5:] = 2
    >>> updated, added = add_nuclei(existing, labels, [1, 2], next_id=8)
    >>> added.tolist(), updated[0].tolist()
    ([8], [7, 7, 7, 0, 0, 8, 8, 8])
    """
    check_label_image(existing, "existing")
    check_label_image(labels)
    if existing.shape != labels.shape:
        raise ConfigError(
            f"existing and labels must have the same shape, got {existing.shape} and {labels.shape}"
        )
    check_int(next_id, "next_id", minimum=1)
    updated = existing.astype(LABEL_DTYPE, copy=True)
    boxes = ndi.find_objects(labels)
    added = []
    for label in ids:
        box = boxes[int(label) - 1] if 0 < int(label) <= len(boxes) else None
        if box is None:
            continue
        nucleus = labels[box] == label
        area = int(nucleus.sum())
        free = nucleus & (updated[box] == 0)
        kept = int(free.sum())
        if 2 * (area - kept) > area or kept < max(min_size, 1):
            continue
        updated[box][free] = next_id + len(added)
        added.append(next_id + len(added))
    return updated, np.asarray(added, np.int64)


def _ome_attributes(name: str, pixel_size: float | None, levels: int = 1) -> dict:
    """NGFF 0.4 ``multiscales`` (``levels`` levels, each half the last; axes y and x) and
    ``image-label`` metadata."""
    unit = {"unit": "micrometer"} if pixel_size else {}
    datasets = [
        {
            "path": str(level),
            "coordinateTransformations": [
                {"type": "scale", "scale": [(pixel_size or 1.0) * 2**level] * 2}
            ],
        }
        for level in range(levels)
    ]
    return {
        "multiscales": [
            {
                "version": "0.4",
                "name": name,
                "axes": [
                    {"name": "y", "type": "space", **unit},
                    {"name": "x", "type": "space", **unit},
                ],
                "datasets": datasets,
            }
        ],
        "image-label": {"version": "0.4"},
    }


@contextlib.contextmanager
def label_store(
    path: str | os.PathLike,
    shape: tuple[int, int],
    *,
    chunk: int = 1024,
    pixel_size: float | None = None,
) -> Iterator:
    """Yield a new, all-zero global label image on disk: an OME-Zarr folder at ``path``.

    The store is written in a temporary folder beside ``path`` and moved there when the
    block succeeds (an older store of that name is replaced then); if the block raises,
    the temporary folder is removed.  The array (``"0"`` in the folder) is ``int32``,
    in ``chunk``-pixel chunks compressed with Zstandard; on success halved copies
    (``"1"``, ``"2"``, ... every second pixel) follow until one fits in a chunk, for
    viewers that zoom out. NGFF 0.4 metadata lists the levels and gives the pixel size
    in micrometres where known.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "labels.ome.zarr"
    >>> with label_store(target, (300, 200), chunk=128) as labels:
    ...     labels[10:20, 10:20] = 5
    >>> int(open_labels(target)[15, 15]), open_labels(target).shape
    (5, (300, 200))
    """
    import zarr
    from numcodecs import Zstd

    target = Path(path)
    check_int(chunk, "chunk", minimum=1)
    temporary = target.with_name(f".{target.name}.partial")
    try:
        if temporary.exists():
            shutil.rmtree(temporary)
        group = zarr.open_group(str(temporary), mode="w", zarr_format=2)
        group.attrs.update(_ome_attributes(target.name, pixel_size))
        array = group.create_array(
            "0",
            shape=tuple(int(side) for side in shape),
            chunks=(min(chunk, shape[0]), min(chunk, shape[1])),
            dtype=LABEL_DTYPE,
            fill_value=0,
            compressors=Zstd(level=3),
            chunk_key_encoding={"name": "v2", "separator": "/"},
        )
    except OSError as error:
        raise StorageError(f"{target}: cannot create the label store ({error})") from None
    try:
        yield array
        levels = _add_levels(group, array, chunk)
        group.attrs.update(_ome_attributes(target.name, pixel_size, levels))
        if target.exists():
            shutil.rmtree(target)
        os.replace(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _add_levels(group, array, chunk: int) -> int:
    """Add halved copies of ``array`` (``"1"``, ``"2"``, ...) until one fits in a chunk.

    Viewers (napari, QuPath) show a large slide from the level that suits the zoom.
    Labels are halved by keeping every second pixel, so every id stays an id; a
    level is made from the last one, a block of ``2 * chunk`` pixels at a time.
    Returns the number of levels, the full-size one included.
    """
    level, source = 1, array
    while max(source.shape) > chunk:
        shape = tuple((side + 1) // 2 for side in source.shape)
        target = group.create_array(
            str(level),
            shape=shape,
            chunks=source.chunks,
            dtype=source.dtype,
            fill_value=0,
            compressors=source.compressors,
            chunk_key_encoding={"name": "v2", "separator": "/"},
        )
        block = 2 * chunk
        for top in range(0, source.shape[0], block):
            for left in range(0, source.shape[1], block):
                halved = source[top : top + block : 2, left : left + block : 2]
                target[
                    top // 2 : top // 2 + halved.shape[0], left // 2 : left // 2 + halved.shape[1]
                ] = halved
        level, source = level + 1, target
    return level


def open_labels(path: str | os.PathLike):
    """The label image of an OME-Zarr store written by :func:`label_store`, read lazily.

    Slicing the returned ``zarr.Array`` reads only the chunks it needs.

    Raises
    ------
    ImageReadError
        ``path`` is not such a store.

    Examples
    --------
    >>> open_labels("no/such.ome.zarr")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.ImageReadError: no/such.ome.zarr: not an OME-Zarr label store
    """
    import zarr

    try:
        return zarr.open_array(str(Path(path) / "0"), mode="r")
    except (OSError, ValueError, KeyError, zarr.errors.BaseZarrError):
        raise ImageReadError(f"{path}: not an OME-Zarr label store") from None
