"""Tests of nuclei_core.io.metadata: the pixel size recorded in OME, ImageJ and plain TIFF files."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from support import png_bytes

from nuclei_core.io.metadata import PixelSize, pixel_size

IMAGE = np.zeros((2, 8, 8), np.uint16)


def written(**options) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, options.pop("data", IMAGE), **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            written(ome=True, metadata={"axes": "CYX", "PhysicalSizeX": 0.325}),
            PixelSize(0.325, "OME-TIFF metadata"),
        ),
        (
            written(
                ome=True,
                metadata={"axes": "CYX", "PhysicalSizeX": 650, "PhysicalSizeXUnit": "nm"},
            ),
            PixelSize(0.65, "OME-TIFF metadata"),
        ),
        (
            written(imagej=True, resolution=(4.0, 4.0), metadata={"unit": "micron"}),
            PixelSize(0.25, "ImageJ TIFF metadata"),
        ),
        (
            written(imagej=True, resolution=(2000.0, 2000.0), metadata={"unit": "mm"}),
            PixelSize(0.5, "ImageJ TIFF metadata"),
        ),
        (
            written(resolution=(20_000.0, 20_000.0), resolutionunit="CENTIMETER"),
            PixelSize(0.5, "TIFF resolution tags"),
        ),
        (
            written(resolution=(25_400.0, 25_400.0), resolutionunit="INCH"),
            PixelSize(1.0, "TIFF resolution tags"),
        ),
    ],
    ids=["ome-um", "ome-nm", "imagej-micron", "imagej-mm", "tiff-cm", "tiff-inch"],
)
def test_pixel_size_is_read_where_the_file_records_it(data, expected):
    found = pixel_size(data)
    assert found.source == expected.source
    assert found.um == pytest.approx(expected.um)


@pytest.mark.parametrize(
    "data",
    [
        written(),  # no resolution at all
        written(resolution=(72.0, 72.0), resolutionunit="INCH"),  # a screen default
        written(resolution=(300.0, 300.0), resolutionunit="INCH"),  # a print default
        written(resolution=(5.0, 5.0), resolutionunit="NONE"),  # no unit
        png_bytes(np.zeros((4, 4), np.uint8)),
        b"II*\x00 damaged",
    ],
    ids=["none", "72dpi", "300dpi", "no-unit", "png", "damaged"],
)
def test_no_pixel_size_without_a_plausible_record(data):
    assert pixel_size(data) == PixelSize(None)


def test_pixel_size_reads_a_path(tmp_path):
    target = tmp_path / "cells.tif"
    target.write_bytes(written(resolution=(10_000.0, 10_000.0), resolutionunit="CENTIMETER"))
    assert pixel_size(target).um == pytest.approx(1.0)
