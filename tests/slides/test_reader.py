"""Whole slides opened for reading (``nuclei_core.slides.reader``): only the tiles a region
needs, memory-mapped strips, damaged or unsuitable files named in the error, large images."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from support import write_tiled

from nuclei_core.errors import ImageReadError
from nuclei_core.slides import reader as slides
from nuclei_core.slides.reader import is_large_image, open_slide


def test_the_reader_decodes_only_the_tiles_a_region_needs(tmp_path, monkeypatch):
    image = np.arange(1024 * 1024, dtype=np.uint32).reshape(1024, 1024).astype(np.uint16)
    source = write_tiled(tmp_path / "big.tif", image, compression="zlib")
    with tifffile.TiffFile(source) as tiff:
        offsets = tiff.pages[0].dataoffsets  # tiles row by row, 8 x 8 of 128 pixels
    read = []
    original = tifffile.FileCache.read

    def recording(self, filehandle, offset, bytecount, *args, **kwargs):
        read.append(offset)
        return original(self, filehandle, offset, bytecount, *args, **kwargs)

    monkeypatch.setattr(tifffile.FileCache, "read", recording)
    with open_slide(source) as slide:
        region = slide.read(200, 300, 300, 420)
    np.testing.assert_array_equal(region, image[200:300, 300:420])
    wanted = {offsets[row * 8 + column] for row in (1, 2) for column in (2, 3)}
    assert set(read) == wanted


def test_uncompressed_strips_are_read_through_a_memory_map(tmp_path, monkeypatch):
    image = np.random.default_rng(2).integers(0, 65535, (900, 700), dtype=np.uint16)
    source = tmp_path / "plain.tif"
    tifffile.imwrite(source, image, byteorder=">", bigtiff=True)  # contiguous, big-endian
    monkeypatch.setattr(slides, "LARGEST_CHUNK", 1000)  # the one strip is far larger
    with open_slide(source) as slide:
        region = slide.read(100, 200, 300, 260)
    np.testing.assert_array_equal(region, image[100:300, 200:260])
    assert region.dtype.isnative


def test_compressed_strips_too_large_to_read_in_parts_are_refused(tmp_path, monkeypatch):
    source = tmp_path / "strip.tif"
    tifffile.imwrite(source, np.zeros((300, 200), np.uint8), compression="zlib", rowsperstrip=300)
    monkeypatch.setattr(slides, "LARGEST_CHUNK", 300 * 200 - 1)
    with pytest.raises(ImageReadError, match=r"strip\.tif: stored in strips of 300 x 200 pixels"):
        open_slide(source)


def test_rgb_slides_are_read_as_colour(tmp_path):
    rgb = np.zeros((300, 200, 3), np.uint8)
    rgb[..., 0] = 200
    source = write_tiled(tmp_path / "he.tif", rgb, tile=(64, 64), photometric="rgb")
    with open_slide(source) as slide:
        assert slide.colour and slide.read(10, 10, 12, 13).shape == (2, 3, 3)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a TIFF file"),
        (b"II*\x00" + b"\x07" * 40, "truncated or corrupt TIFF"),
        (b"", "not a TIFF file"),
    ],
)
def test_a_file_that_is_not_a_readable_tiff_is_named_in_the_error(tmp_path, content, problem):
    source = tmp_path / "scan.tif"
    source.write_bytes(content)
    with pytest.raises(ImageReadError, match=rf"scan\.tif: {problem}"):
        open_slide(source)


def test_an_uncompressed_file_shorter_than_its_header_is_refused_on_opening(tmp_path):
    source = tmp_path / "cut.tif"
    tifffile.imwrite(source, np.zeros((512, 512), np.uint8))  # one uncompressed strip
    data = source.read_bytes()
    source.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.tif: the file is shorter than its header"):
        open_slide(source)


def test_a_damaged_tile_is_named_with_the_file_and_the_region(tmp_path):
    image = (np.random.default_rng(0).random((512, 512)) * 255).astype(np.uint8)
    source = write_tiled(tmp_path / "damaged.tif", image, compression="zlib")
    with tifffile.TiffFile(source) as tiff:
        offset = tiff.pages[0].dataoffsets[5]  # rows 128-256, columns 128-256
    data = bytearray(source.read_bytes())
    data[offset : offset + 64] = b"\xff" * 64
    source.write_bytes(bytes(data))
    with open_slide(source) as slide:
        np.testing.assert_array_equal(slide.read(0, 0, 128, 512), image[:128])  # intact
        with pytest.raises(ImageReadError, match=r"damaged\.tif: cannot read rows 130-140"):
            slide.read(130, 130, 140, 140)


def test_a_stack_of_channels_is_refused_by_name(tmp_path):
    source = tmp_path / "channels.tif"
    tifffile.imwrite(source, np.zeros((2, 64, 64), np.uint8), metadata={"axes": "CYX"})
    with pytest.raises(ImageReadError, match=r"channels\.tif: .*axes CYX"):
        open_slide(source)


def test_only_tiffs_over_the_limit_are_large(tmp_path, write_png):
    tiff = write_tiled(tmp_path / "a.tif", np.zeros((300, 300), np.uint8))
    png = write_png(tmp_path / "a.png", np.zeros((300, 300), np.uint8))
    assert is_large_image(tiff, limit=300 * 300 - 1)
    assert not is_large_image(tiff, limit=300 * 300)
    assert not is_large_image(png, limit=10)
    assert not is_large_image(tmp_path / "missing.tif", limit=10)
