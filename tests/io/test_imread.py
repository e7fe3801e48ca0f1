"""Tests of nuclei_core.io.imread: every image format, bad files, the pixel budget."""

from __future__ import annotations

import io as stdio
import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image
from support import assert_one_line_naming, jpeg_bytes, png_bytes, png_claiming, tiff_bytes

from nuclei_core.errors import ImageReadError
from nuclei_core.io import imread
from nuclei_core.locations import MAX_PIXELS_ENV


@pytest.fixture
def noise():
    return np.random.default_rng(7).integers(0, 256, (24, 32), dtype=np.uint8)


# ============================================================================== formats


def test_png_8bit_grey(tmp_path, noise):
    path = tmp_path / "grey.png"
    path.write_bytes(png_bytes(noise))
    image = imread.read_image(path)
    assert image.dtype == np.uint8 and image.shape == (24, 32)
    np.testing.assert_array_equal(image, noise)


def test_png_16bit_grey_keeps_full_range(tmp_path):
    values = np.random.default_rng(1).integers(0, 65536, (20, 30), dtype=np.uint16)
    values[0, 0] = 65535
    path = tmp_path / "grey16.png"
    path.write_bytes(png_bytes(values))
    image = imread.read_image(path)
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, values)


def test_png_rgb(noise):
    rgb = np.dstack([noise, 255 - noise, noise // 2])
    image = imread.read_image(png_bytes(rgb))
    assert image.shape == (24, 32, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, rgb)


def test_png_rgba_drops_alpha_without_blending(noise):
    rgba = np.dstack(
        [noise, 255 - noise, noise // 2, np.arange(32, dtype=np.uint8)[None].repeat(24, 0)]
    )
    image = imread.read_image(png_bytes(rgba, mode="RGBA"))
    assert image.shape == (24, 32, 3)
    np.testing.assert_array_equal(image, rgba[..., :3])


def test_png_grey_with_alpha_gives_grey(noise):
    grey_alpha = np.dstack([noise, np.full_like(noise, 100)])
    image = imread.read_image(png_bytes(grey_alpha, mode="LA"))
    assert image.shape == (24, 32)
    np.testing.assert_array_equal(image, noise)


def test_png_palette_becomes_rgb():
    indices = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    buffer = stdio.BytesIO()
    palette.save(buffer, format="PNG")
    image = imread.read_image(buffer.getvalue())
    assert image.shape == (2, 3, 3)
    assert image[0, 0].tolist() == [255, 0, 0]
    assert image[0, 1].tolist() == [0, 255, 0]
    assert image[0, 2].tolist() == [0, 0, 255]


def test_png_one_bit_becomes_uint8(noise):
    image = imread.read_image(png_bytes(noise > 128))
    assert image.dtype == np.uint8
    assert set(np.unique(image).tolist()) == {0, 255}
    np.testing.assert_array_equal(image > 0, noise > 128)


def test_jpeg_grey_and_rgb(tmp_path):
    smooth = np.add.outer(np.arange(40), np.arange(48)).astype(np.uint8) * 2
    path = tmp_path / "grey.jpg"
    path.write_bytes(jpeg_bytes(Image.fromarray(smooth)))
    grey = imread.read_image(path)
    assert grey.shape == (40, 48) and grey.dtype == np.uint8
    assert np.abs(grey.astype(int) - smooth).mean() < 3

    rgb = np.dstack([smooth, smooth // 2, 255 - smooth])
    colour = imread.read_image(jpeg_bytes(Image.fromarray(rgb)))
    assert colour.shape == (40, 48, 3)
    assert np.abs(colour.astype(int) - rgb).mean() < 4


def test_cmyk_jpeg_becomes_rgb():
    red = imread.read_image(jpeg_bytes(Image.new("CMYK", (16, 8), (0, 255, 255, 0))))
    white = imread.read_image(jpeg_bytes(Image.new("CMYK", (16, 8), (0, 0, 0, 0))))
    assert red.shape == (8, 16, 3) and red.dtype == np.uint8
    assert red[4, 8, 0] > 240 and red[4, 8, 1] < 15 and red[4, 8, 2] < 15
    assert (white > 240).all()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiff_integer(tmp_path, dtype):
    top = np.iinfo(dtype).max
    values = np.random.default_rng(2).integers(0, int(top) + 1, (17, 23)).astype(dtype)
    path = tmp_path / "image.tif"
    path.write_bytes(tiff_bytes(values))
    image = imread.read_image(path)
    assert image.dtype == dtype
    np.testing.assert_array_equal(image, values)


def test_tiff_float32_keeps_values():
    values = np.linspace(-2.5, 1e4, 12 * 9, dtype=np.float32).reshape(12, 9)
    image = imread.read_image(tiff_bytes(values))
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, values)


def test_tiff_rgb_interleaved_and_planar():
    rgb = np.random.default_rng(3).integers(0, 256, (10, 14, 3), dtype=np.uint8)
    np.testing.assert_array_equal(imread.read_image(tiff_bytes(rgb, photometric="rgb")), rgb)
    planar = tiff_bytes(np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(imread.read_image(planar), rgb)


def test_multipage_tiff_gives_first_page_and_warns():
    buffer = stdio.BytesIO()
    with tifffile.TiffWriter(buffer) as writer:
        writer.write(np.full((5, 6), 7, np.uint8))
        writer.write(np.full((5, 6), 9, np.uint8))
        writer.write(np.full((5, 6), 11, np.uint8))
    with pytest.warns(UserWarning, match=r"multi-page.*3 pages.*first"):
        image = imread.read_image(buffer.getvalue(), name="stack.tif")
    assert image.shape == (5, 6)
    assert (image == 7).all()


def test_float_tiff_with_nan_warns_and_fills():
    values = np.arange(12, dtype=np.float32).reshape(3, 4) + 5
    values[1, 1] = np.nan
    values[2, 3] = np.inf
    with pytest.warns(UserWarning, match="NaN/inf"):
        image = imread.read_image(tiff_bytes(values))
    assert np.isfinite(image).all()
    assert image[1, 1] == 5 and image[2, 3] == 5


def test_read_from_file_object_and_bytes_use_names(tmp_path, noise):
    data = png_bytes(noise)
    np.testing.assert_array_equal(imread.read_image(stdio.BytesIO(data)), noise)
    np.testing.assert_array_equal(imread.read_image(data), noise)
    with pytest.raises(ImageReadError, match="upload.png"):
        imread.read_image(stdio.BytesIO(b"not an image"), name="upload.png")


# ============================================================================== bad files


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError) as error:
        imread.read_image(path)
    assert "empty" in assert_one_line_naming(error, str(path))


def test_missing_file(tmp_path):
    path = tmp_path / "missing.tif"
    with pytest.raises(ImageReadError) as error:
        imread.read_image(path)
    assert "no such file" in assert_one_line_naming(error, str(path))


def test_text_renamed_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are my notes, not an image\n" * 10)
    with pytest.raises(ImageReadError) as error:
        imread.read_image(path)
    assert "not a PNG, JPEG or TIFF" in assert_one_line_naming(error, str(path))


@pytest.mark.parametrize("kind", ["png", "jpeg", "tiff", "tiff-zlib"])
def test_truncated_files(tmp_path, kind):
    noisy = np.random.default_rng(4).integers(0, 256, (64, 64), dtype=np.uint8)
    data = {
        "png": lambda: png_bytes(noisy),
        "jpeg": lambda: jpeg_bytes(Image.fromarray(noisy)),
        "tiff": lambda: tiff_bytes(noisy.astype(np.uint16) * 200),
        "tiff-zlib": lambda: tiff_bytes(noisy.astype(np.uint16) * 200, compression="zlib"),
    }[kind]()
    assert imread.read_image(data).shape == (64, 64)  # the whole file is fine
    path = tmp_path / f"cut.{kind}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError) as error:
        imread.read_image(path)
    message = assert_one_line_naming(error, str(path))
    assert "truncated" in message or "corrupt" in message


def test_huge_png_header_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(60000, 60000))
    with pytest.raises(ImageReadError) as error:
        imread.read_image(path)
    message = assert_one_line_naming(error, str(path))
    assert "60000 x 60000" in message and "limit" in message
    # The file has no real pixel data: a decoder would have said "truncated" instead.
    assert "truncated" not in message


def test_pixel_budget_is_configurable(noise):
    tiff, png = tiff_bytes(noise), png_bytes(noise)
    for data in (tiff, png):
        with pytest.raises(ImageReadError, match="limit of 100"):
            imread.read_image(data, name="small.img", max_pixels=100)
        assert imread.read_image(data, max_pixels=24 * 32).shape == (24, 32)


def test_pixel_budget_is_read_from_the_environment_at_each_call(noise, monkeypatch):
    png = png_bytes(noise)  # 32 x 24 = 768 pixels
    monkeypatch.setenv(MAX_PIXELS_ENV, "767")
    with pytest.raises(ImageReadError, match="over the limit of 767"):
        imread.read_image(png, name="x.png")
    monkeypatch.setenv(MAX_PIXELS_ENV, "768")
    assert imread.read_image(png).shape == (24, 32)
    assert imread.read_image(png, max_pixels=768).shape == (24, 32)


@pytest.mark.parametrize("size", [(0, 10), (10, 0)])
def test_zero_size_png(size):
    with pytest.raises(ImageReadError) as error:
        imread.read_image(png_claiming(*size), name="zero.png")
    assert "zero size" in assert_one_line_naming(error, "zero.png")


def test_zero_size_tiff():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tifffile: "writing zero-size array"
        data = tiff_bytes(np.zeros((0, 10), np.uint8))
    with pytest.raises(ImageReadError) as error:
        imread.read_image(data, name="zero.tif")
    assert "zero size" in assert_one_line_naming(error, "zero.tif")


def test_image_size_reads_header_only(tmp_path, noise):
    path = tmp_path / "image.png"
    path.write_bytes(png_bytes(noise))
    assert imread.image_size(path) == (24, 32)
    tiff = tmp_path / "image.tif"
    tiff.write_bytes(tiff_bytes(noise))
    assert imread.image_size(tiff) == (24, 32)
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    with pytest.raises(ImageReadError, match="bad.png"):
        imread.image_size(bad)
