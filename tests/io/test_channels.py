"""Tests of nuclei_core.io.channels: channels and planes of multi-channel and multi-page images."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import tifffile
from support import png_bytes

from nuclei_core.errors import ImageReadError, InputError
from nuclei_core.io.channels import (
    channel_images,
    list_channels,
    list_planes,
    read_stack,
    select_image,
)
from nuclei_core.io.imread import read_image


def tiff(array, **options) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    return buffer.getvalue()


def marked(shape):
    """An array whose every plane/channel is filled with a distinct value: 10 * index + 1."""
    values = np.arange(int(np.prod(shape[:-2]))).reshape(shape[:-2]) * 10 + 1
    return np.broadcast_to(values[..., None, None], shape).astype(np.uint16).copy()


@pytest.mark.parametrize(
    ("array", "options", "channels", "planes"),
    [
        (marked((2, 6, 5)), {"imagej": True, "metadata": {"axes": "CYX"}}, 2, ["plane 0"]),
        (marked((3, 6, 5)), {"photometric": "minisblack"}, 3, ["plane 0"]),  # channel-first
        (
            np.moveaxis(marked((4, 6, 5)), 0, -1),
            {"photometric": "minisblack", "planarconfig": "contig"},
            4,
            ["plane 0"],
        ),  # channel-last
        (marked((3, 2, 6, 5)), {"imagej": True, "metadata": {"axes": "ZCYX"}}, 2, None),
        (marked((2, 3, 6, 5)), {"imagej": True, "metadata": {"axes": "TZYX"}}, 1, None),
        (marked((7, 6, 5)), {}, 1, None),  # a long page series: planes
        (marked((5, 6, 5)), {"ome": True, "metadata": {"axes": "CYX"}}, 5, ["plane 0"]),
    ],
    ids=["imagej-CYX", "generic-3", "channel-last-4", "ZCYX", "TZYX", "generic-7", "ome-5"],
)
def test_stacks_of_every_layout_give_planes_x_height_x_width_x_channels(
    array, options, channels, planes
):
    stack = read_stack(tiff(array, **options), name="cells.tif")
    assert stack.data.shape[1:3] == (6, 5)
    assert stack.n_channels == channels and stack.is_multichannel == (channels > 1)
    assert list_channels(stack) == [f"channel {i}" for i in range(channels)]
    if planes is not None:
        assert list_planes(stack) == planes
    # every (plane, channel) is a distinct, flat image: nothing was mixed up
    values = {int(stack.data[p, 0, 0, c]) for p in range(stack.n_planes) for c in range(channels)}
    assert len(values) == stack.n_planes * channels
    assert all(
        np.ptp(stack.data[p, ..., c]) == 0 for p in range(stack.n_planes) for c in range(channels)
    )


def test_plane_names_say_which_axis():
    stack = read_stack(tiff(marked((2, 3, 6, 5)), imagej=True, metadata={"axes": "TZYX"}))
    assert stack.plane_axes == "TZ"
    assert list_planes(stack)[:4] == ["t 0, z 0", "t 0, z 1", "t 0, z 2", "t 1, z 0"]
    generic = read_stack(tiff(marked((7, 6, 5))), name="pages.tif")
    assert list_planes(generic)[1] == "page 1"
    assert generic.notes == ("pages.tif: multi-page TIFF with 7 pages, read as 7 planes",)
    few = read_stack(tiff(marked((3, 6, 5)), photometric="minisblack"), name="few.tif")
    assert few.notes == ("few.tif: multi-page TIFF with 3 pages, read as 3 channels",)


def test_select_channel_plane_and_maximum_projection():
    stack = read_stack(tiff(marked((3, 2, 6, 5)), imagej=True, metadata={"axes": "ZCYX"}))
    assert select_image(stack).shape == (6, 5)
    assert int(select_image(stack)[0, 0]) == 1  # plane 0, channel 0: today's first page
    assert int(select_image(stack, channel=1, plane=2)[0, 0]) == 10 * (2 * 2 + 1) + 1
    assert int(select_image(stack, channel=0, plane="max")[0, 0]) == 10 * 4 + 1
    assert int(select_image(stack, channel=1, plane="MAX")[0, 0]) == 10 * 5 + 1
    every = channel_images(stack, 1)
    assert every.shape == (6, 5, 2) and every[0, 0].tolist() == [21, 31]


@pytest.mark.parametrize(
    ("channel", "plane", "message"),
    [
        (2, None, "cells.tif: no channel 2 (the image has 2 channels: 0-1)"),
        (-1, None, "cells.tif: no channel -1 (the image has 2 channels: 0-1)"),
        (0, 3, "cells.tif: no plane 3 (the image has 3 planes: 0-2)"),
        (0, "top", "cells.tif: plane must be an index or 'max', got 'top'"),
    ],
)
def test_missing_channel_or_plane_is_one_line_naming_the_file(channel, plane, message):
    data = tiff(marked((3, 2, 6, 5)), imagej=True, metadata={"axes": "ZCYX"})
    stack = read_stack(data, name="cells.tif")
    with pytest.raises(InputError) as error:
        select_image(stack, channel=channel, plane=plane)
    assert str(error.value) == message


def test_rgb_images_stay_in_colour_and_offer_their_colours():
    rgb = np.zeros((6, 5, 3), np.uint8)
    rgb[..., 2] = 200
    for data in (png_bytes(rgb), tiff(rgb, photometric="rgb")):
        stack = read_stack(data, name="he.png")
        assert stack.colour and not stack.is_multichannel
        assert list_channels(stack) == ["red", "green", "blue"]
        np.testing.assert_array_equal(select_image(stack), rgb)
        assert int(select_image(stack, channel=2)[0, 0]) == 200
    grey = read_stack(png_bytes(rgb[..., 2]))
    assert grey.n_channels == 1 and select_image(grey).shape == (6, 5)


def test_default_selection_matches_read_image_of_a_multipage_tiff():
    data = tiff(marked((3, 6, 5)))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        first_page = read_image(data)
    np.testing.assert_array_equal(select_image(read_stack(data)), first_page)


def test_stack_carries_the_pixel_size_and_notes():
    array = np.ones((2, 6, 5), np.float32)
    array[0] = np.nan
    data = tiff(
        array,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"axes": "CYX", "unit": "um"},
    )
    stack = read_stack(data, name="nan.tif")
    assert stack.pixel_size.um == pytest.approx(0.5)
    assert stack.notes == ("nan.tif: 30 NaN/inf pixels set to the lowest value",)
    assert np.isfinite(stack.data).all()


def test_bad_files_and_budgets_are_refused_naming_the_file():
    with pytest.raises(
        ImageReadError, match="stack.tif: (truncated or corrupt TIFF|TIFF file has no pages)"
    ):
        read_stack(b"II*\x00 damaged", name="stack.tif")
    with pytest.raises(ImageReadError, match="big.tif: image is 5 x 6 = 30 pixels"):
        read_stack(tiff(marked((2, 6, 5))), name="big.tif", max_pixels=20)
    with pytest.raises(ImageReadError, match="long.tif: stack .* over the limit of 480"):
        read_stack(tiff(marked((20, 6, 5))), name="long.tif", max_pixels=30)
    with pytest.raises(ImageReadError, match="empty.tif: file is empty"):
        read_stack(b"", name="empty.tif")
