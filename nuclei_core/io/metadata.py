"""Pixel size of an image file: micrometres per pixel, read where the file records it.

:func:`pixel_size` looks, in this order, at OME-TIFF metadata (``PhysicalSizeX``),
ImageJ TIFF metadata (``unit`` with the ``XResolution`` tag) and plain TIFF resolution
tags (``XResolution`` with ``ResolutionUnit`` inch or centimetre).  Resolutions that
are a screen or print default (72 dpi and the like, tens of micrometres per pixel or
more) are not a microscope's pixel size and are ignored.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import tifffile

from nuclei_core.io.imread import ImageSource, is_tiff, source_bytes

__all__ = ["PixelSize", "pixel_size", "tiff_pixel_size"]

#: Pixel sizes outside this range (micrometres) are taken for a software default.
PLAUSIBLE_UM = (1e-4, 20.0)

_UM_PER_UNIT = {
    "m": 1e6,
    "cm": 1e4,
    "mm": 1e3,
    "um": 1.0,
    "µm": 1.0,
    "μm": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "nanometre": 1e-3,
    "inch": 25_400.0,
    "in": 25_400.0,
}


@dataclass(frozen=True)
class PixelSize:
    """Micrometres per pixel (``um``, None when unknown) and where it was read (``source``).

    Examples
    --------
    >>> PixelSize(0.5, "OME-TIFF metadata").um
    0.5
    """

    um: float | None
    source: str = ""


def _plausible(value: float | None) -> float | None:
    if value is None or not PLAUSIBLE_UM[0] <= value <= PLAUSIBLE_UM[1]:
        return None
    return float(value)


def _in_um(value: float, unit: str | None) -> float | None:
    factor = _UM_PER_UNIT.get((unit or "um").strip().lower().replace("\\u00b5", "µ"))
    return None if factor is None else value * factor


def _ome(tiff: tifffile.TiffFile) -> float | None:
    xml = tiff.ome_metadata or ""
    pixels = re.search(r"<(?:\w+:)?Pixels\b[^>]*>", xml)
    if pixels is None:
        return None
    size = re.search(r'PhysicalSizeX="([^"]+)"', pixels.group(0))
    unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', pixels.group(0))
    if size is None:
        return None
    try:
        return _in_um(float(size.group(1)), unit.group(1) if unit else "um")
    except ValueError:
        return None


def _resolution(page) -> float | None:
    """Pixels per resolution unit along x from the XResolution tag, or None."""
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    numerator, denominator = tag.value
    return numerator / denominator if numerator and denominator else None


def tiff_pixel_size(tiff: tifffile.TiffFile) -> PixelSize:
    """Pixel size recorded in an open TIFF file (see the module's docstring for the order).

    Examples
    --------
    >>> import numpy as np
    >>> buffer = io.BytesIO()
    >>> tifffile.imwrite(buffer, np.zeros((4, 4), np.uint8), imagej=True,
    ...                  resolution=(2.0, 2.0), metadata={"unit": "um"})
    >>> with tifffile.TiffFile(io.BytesIO(buffer.getvalue())) as tiff:
    ...     tiff_pixel_size(tiff)
    PixelSize(um=0.5, source='ImageJ TIFF metadata')
    """
    if tiff.is_ome:
        value = _plausible(_ome(tiff))
        if value is not None:
            return PixelSize(value, "OME-TIFF metadata")
    page = tiff.pages[0]
    per_unit = _resolution(page)
    if per_unit is None:
        return PixelSize(None)
    if tiff.is_imagej and (tiff.imagej_metadata or {}).get("unit"):
        value = _plausible(_in_um(1.0 / per_unit, tiff.imagej_metadata["unit"]))
        if value is not None:
            return PixelSize(value, "ImageJ TIFF metadata")
    unit = page.tags.get("ResolutionUnit")
    unit_name = {2: "inch", 3: "cm"}.get(int(unit.value) if unit is not None else 2)
    if unit_name is None:
        return PixelSize(None)
    value = _plausible(_in_um(1.0 / per_unit, unit_name))
    return PixelSize(value, "TIFF resolution tags" if value is not None else "")


def pixel_size(source: ImageSource, name: str | None = None) -> PixelSize:
    """Micrometres per pixel recorded in an image file; ``PixelSize(None)`` when it has none.

    Parameters
    ----------
    source : str, Path, bytes or binary file object
        The image file.
    name : str, optional
        Name used in error messages.

    Raises
    ------
    ImageReadError
        The file cannot be read.

    Examples
    --------
    >>> import numpy as np
    >>> buffer = io.BytesIO()
    >>> tifffile.imwrite(buffer, np.zeros((4, 4), np.uint8), resolution=(10_000 / 0.65,) * 2,
    ...                  resolutionunit="CENTIMETER")
    >>> round(pixel_size(buffer.getvalue()).um, 6)
    0.65
    >>> pixel_size(b"\\x89PNG not a tiff")
    PixelSize(um=None, source='')
    """
    data, _ = source_bytes(source, name)
    if not is_tiff(data):
        return PixelSize(None)
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            return tiff_pixel_size(tiff)
    except Exception:  # a damaged file has no usable pixel size; read_image names the damage
        return PixelSize(None)
