"""Tests of bench.tools.half_size: the 20x view of a 40x data set's split."""

from __future__ import annotations

import numpy as np
from synthetic import make_flat_dataset

from bench.tools.half_size import half_size, write_half_size
from nuclei_core.datasets.folders import discover_dataset, load_sample, select_split


def test_half_size_keeps_every_nucleus_large_enough_and_numbers_them():
    labels = np.zeros((40, 40), np.int32)
    labels[4:16, 4:16] = 7  # 12 x 12: 6 x 6 at half size
    labels[20:22, 20:22] = 9  # 2 x 2: one pixel at half size, dropped
    image = np.where(labels > 0, 200, 20).astype(np.uint8)
    small_image, small_labels = half_size(image, labels)
    assert small_image.shape == (20, 20) and small_labels.shape == (20, 20)
    assert set(np.unique(small_labels)) == {0, 1}
    assert (small_labels == 1).sum() == 36
    assert small_image[small_labels == 1].min() == 200  # inside stays inside


def test_the_view_of_a_split_holds_that_split_only(tmp_path):
    data = make_flat_dataset(tmp_path / "data", n_images=30, size=(64, 64), n_nuclei=3)
    test_ids = {sample.id for sample in select_split(discover_dataset(data), "test")}
    assert test_ids
    count = write_half_size(data, "test", tmp_path / "view")
    view = discover_dataset(tmp_path / "view")
    assert count == len(test_ids) and {sample.id for sample in view.samples} == test_ids
    image, labels = load_sample(view.samples[0])
    assert image.shape[:2] == (32, 32) and labels.dtype.kind in "iu"
