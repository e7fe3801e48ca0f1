"""Whole slides opened for reading: regions of level 0 (or of a pyramid level), decoded on demand.

:func:`open_slide` opens a TIFF, OME-TIFF or BigTIFF (pyramidal or not) without reading
its pixels: :meth:`SlideReader.read` decodes only the TIFF tiles or strips a region
needs (``tifffile``'s zarr store, opened with ``zarr``; uncompressed pixels stored in one
piece through a memory map).  :func:`is_large_image` tells, from the header alone,
which images the CLI segments as slides (:mod:`nuclei_core.slides.segment`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile

from nuclei_core.checks import check_int
from nuclei_core.errors import ImageReadError
from nuclei_core.io.imread import image_size, is_tiff
from nuclei_core.io.metadata import tiff_pixel_size

__all__ = [
    "LARGE_IMAGE_PIXELS",
    "SlideReader",
    "is_large_image",
    "open_slide",
]

LARGE_IMAGE_PIXELS = 4096 * 4096
"""Images with more pixels than this are segmented as slides (tile by tile) by the CLI."""
LARGEST_CHUNK = 64 * 2**20
"""A TIFF whose tiles or strips hold more pixels than this cannot be read tile by tile."""


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
