"""Stitching tiles: the tile grid, which nuclei a tile keeps, writing them once, the label store."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from nuclei_core.errors import ConfigError, ImageReadError
from nuclei_core.slides.stitch import (
    SEAM_TOLERANCE,
    Tile,
    add_nuclei,
    centred_nuclei,
    label_store,
    open_labels,
    tile_grid,
)


def test_cores_cover_the_image_once_and_windows_add_the_margin_inside_it():
    height, width, tile, margin = 700, 530, 256, 64
    cover = np.zeros((height, width), np.int32)
    tiles = tile_grid(height, width, tile, margin)
    for item in tiles:
        top, left, bottom, right = item.core
        cover[top:bottom, left:right] += 1
        w_top, w_left, w_bottom, w_right = item.window
        assert w_top == max(0, top - margin) and w_left == max(0, left - margin)
        assert w_bottom == min(height, bottom + margin) and w_right == min(width, right + margin)
    assert (cover == 1).all()
    assert len(tiles) == 3 * 3


@pytest.mark.parametrize(("tile", "margin"), [(100, 32), (256, 20), (32, 0)])
def test_tiles_off_the_pooling_grid_are_refused(tile, margin):
    with pytest.raises((ConfigError, ValueError), match="tile|margin"):
        tile_grid(500, 500, tile, margin)


def _disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def test_a_tile_keeps_the_nuclei_centred_in_its_core_and_leaves_those_cut_by_the_window():
    tile = Tile(core=(0, 64, 128, 192), window=(0, 32, 128, 224))
    labels = np.zeros(tile.window_shape, np.int32)
    labels[_disc(labels.shape, (60, 100), 8)] = 1  # well inside the core
    labels[_disc(labels.shape, (60, 4), 6)] = 2  # in the left margin, cut by the window edge
    labels[_disc(labels.shape, (100, 160 - 1 + SEAM_TOLERANCE), 6)] = 3  # just past the seam
    labels[_disc(labels.shape, (20, 160 + SEAM_TOLERANCE + 4), 6)] = 4  # beyond the tolerance
    assert centred_nuclei(labels, tile).tolist() == [1, 3]


def test_a_nucleus_both_tiles_of_a_seam_keep_is_written_once():
    shape = (64, 128)
    first = np.zeros(shape, np.int32)
    first[_disc(shape, (30, 63), 10)] = 1  # on the seam at column 64
    second = np.zeros(shape, np.int32)
    second[_disc(shape, (30, 64), 10)] = 5  # the neighbour's slightly shifted copy
    updated, added = add_nuclei(np.zeros(shape, np.int32), first, [1], next_id=1)
    assert added.tolist() == [1]
    again, added_again = add_nuclei(updated, second, [5], next_id=2)
    assert added_again.size == 0
    np.testing.assert_array_equal(again, updated)


def test_touching_nuclei_share_no_pixel_and_the_first_keeps_the_disputed_ones():
    shape = (40, 60)
    existing = np.zeros(shape, np.int32)
    existing[10:30, 10:31] = 3
    labels = np.zeros(shape, np.int32)
    labels[10:30, 28:50] = 1  # claims three columns of nucleus 3
    updated, added = add_nuclei(existing, labels, [1], next_id=4)
    assert added.tolist() == [4]
    assert (updated[10:30, 10:31] == 3).all()
    assert (updated[10:30, 31:50] == 4).all()
    assert existing[10, 40] == 0  # the input is not modified


def test_a_nucleus_left_smaller_than_min_size_is_not_written():
    existing = np.zeros((10, 10), np.int32)
    existing[:, :8] = 1
    labels = np.zeros((10, 10), np.int32)
    labels[:, 6:] = 2  # 40 pixels, 20 of them free
    assert add_nuclei(existing, labels, [2], next_id=2, min_size=21)[1].size == 0
    assert add_nuclei(existing, labels, [2], next_id=2, min_size=20)[1].tolist() == [2]


def test_the_label_store_is_ome_zarr_that_zarr_reads_back(tmp_path):
    target = tmp_path / "scan_labels.ome.zarr"
    with label_store(target, (300, 500), chunk=128, pixel_size=0.25) as labels:
        labels[100:110, 200:230] = 7
    attributes = json.loads((target / ".zattrs").read_text())
    scale = attributes["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]
    assert scale == {"type": "scale", "scale": [0.25, 0.25]}
    assert attributes["multiscales"][0]["axes"][0]["unit"] == "micrometer"
    group = zarr.open_group(str(target), mode="r")
    assert group["0"].chunks == (128, 128) and group["0"].dtype == np.int32
    assert int((np.asarray(open_labels(target)) == 7).sum()) == 300
    assert not list(tmp_path.glob(".*partial"))


def test_the_label_store_has_halved_levels_down_to_one_chunk(tmp_path):
    target = tmp_path / "scan_labels.ome.zarr"
    labels = np.random.default_rng(5).integers(0, 50, (301, 517)).astype(np.int32)
    with label_store(target, labels.shape, chunk=64, pixel_size=0.5) as store:
        store[:] = labels
    group = zarr.open_group(str(target), mode="r")
    datasets = json.loads((target / ".zattrs").read_text())["multiscales"][0]["datasets"]
    assert [dataset["path"] for dataset in datasets] == ["0", "1", "2", "3", "4"]
    scales = [dataset["coordinateTransformations"][0]["scale"] for dataset in datasets]
    assert scales == [[0.5, 0.5], [1.0, 1.0], [2.0, 2.0], [4.0, 4.0], [8.0, 8.0]]
    expected = labels
    for level in range(1, 5):
        expected = expected[::2, ::2]
        np.testing.assert_array_equal(np.asarray(group[str(level)]), expected)
    assert max(group["4"].shape) <= 64 < max(group["3"].shape)


def test_a_failed_store_leaves_no_folder_behind(tmp_path):
    target = tmp_path / "scan_labels.ome.zarr"
    with pytest.raises(RuntimeError), label_store(target, (64, 64)):
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ImageReadError, match="scan_labels.ome.zarr"):
        open_labels(target)
