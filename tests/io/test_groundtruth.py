"""Tests of nuclei_core.io.groundtruth: binary masks, label images, zips of per-nucleus masks."""

from __future__ import annotations

import numpy as np
import pytest
from support import assert_one_line_naming, png_bytes, tiff_bytes, zip_bytes

from nuclei_core.errors import GroundTruthError
from nuclei_core.io import groundtruth

# ============================================================================== ground truth


def test_binary_mask_becomes_components():
    mask = np.zeros((20, 20), np.uint8)
    mask[2:6, 2:6] = 255
    mask[10:15, 10:18] = 255
    mask[17:19, 1:3] = 255
    labels = groundtruth.read_labels(png_bytes(mask))
    assert labels.dtype == np.int32
    assert labels.max() == 3
    np.testing.assert_array_equal(labels > 0, mask > 0)
    assert len(np.unique(labels[10:15, 10:18])) == 1


def test_label_image_keeps_touching_nuclei(synthetic_sample):
    _, labels = synthetic_sample
    assert labels.max() == 5
    read = groundtruth.read_labels(png_bytes(labels.astype(np.uint16)))
    np.testing.assert_array_equal(read, labels)  # touching discs 1 and 2 stay apart
    from_tiff = groundtruth.read_labels(tiff_bytes(labels.astype(np.uint16)), kind="labels")
    np.testing.assert_array_equal(from_tiff, labels)


def test_zip_of_per_nucleus_masks(synthetic_sample):
    _, labels = synthetic_sample
    members = {
        f"masks/nucleus{index:02d}.png": png_bytes((labels == index).astype(np.uint8) * 255)
        for index in range(1, 6)
    }
    members["__MACOSX/._nucleus01.png"] = b"resource fork"
    members["masks/.DS_Store"] = b"finder"
    read = groundtruth.read_labels(zip_bytes(members), name="truth.zip", shape=labels.shape)
    assert read.max() == 5
    np.testing.assert_array_equal(read, labels)  # members sorted by name: same numbering


def test_labels_size_mismatch():
    mask = np.zeros((10, 12), np.uint8)
    mask[2:5, 2:5] = 255
    with pytest.raises(GroundTruthError) as error:
        groundtruth.read_labels(png_bytes(mask), name="mask.png", shape=(10, 14))
    message = assert_one_line_naming(error, "mask.png")
    assert "12 x 10" in message and "14 x 10" in message


def test_binary_mask_with_many_values_refused():
    mask = np.zeros((10, 10), np.uint8)
    mask[1:4, 1:4], mask[5:8, 5:8] = 255, 128
    assert groundtruth.read_labels(png_bytes(mask), kind="auto").max() == 255  # a label image
    with pytest.raises(GroundTruthError) as error:
        groundtruth.read_labels(png_bytes(mask), name="lossy.png", kind="binary")
    assert "binary" in assert_one_line_naming(error, "lossy.png")


def test_empty_mask_refused():
    with pytest.raises(GroundTruthError) as error:
        groundtruth.read_labels(png_bytes(np.zeros((8, 8), np.uint8)), name="blank.png")
    assert "empty" in assert_one_line_naming(error, "blank.png")


@pytest.mark.parametrize("member", ["../evil.png", "masks/../../evil.png", "/etc/evil.png"])
def test_zip_with_unsafe_names_refused(member):
    mask = png_bytes(np.eye(8, dtype=np.uint8) * 255)
    with pytest.raises(GroundTruthError) as error:
        groundtruth.read_labels(zip_bytes({"ok.png": mask, member: mask}), name="truth.zip")
    assert "unsafe" in assert_one_line_naming(error, "truth.zip")


def test_zip_refusals():
    with pytest.raises(GroundTruthError, match="no mask images"):
        groundtruth.read_labels(zip_bytes({"__MACOSX/._a.png": b"x"}), name="truth.zip")
    small, large = np.eye(8, dtype=np.uint8) * 255, np.eye(9, dtype=np.uint8) * 255
    with pytest.raises(GroundTruthError, match="differs"):
        groundtruth.read_labels(zip_bytes({"a.png": png_bytes(small), "b.png": png_bytes(large)}))
    with pytest.raises(GroundTruthError, match="b.png"):
        groundtruth.read_labels(zip_bytes({"a.png": png_bytes(small), "b.png": b"not an image"}))


def test_colour_and_unreadable_masks_refused():
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[2:5, 2:5] = (255, 0, 0)
    with pytest.raises(GroundTruthError, match="colour"):
        groundtruth.read_labels(png_bytes(colour), name="rgb.png")
    with pytest.raises(GroundTruthError, match="junk.png"):
        groundtruth.read_labels(b"junk", name="junk.png")


def test_labels_from_masks_paints_in_order_and_names_a_mask_of_another_size():
    first, second = np.zeros((6, 8), np.uint8), np.zeros((6, 8), np.uint8)
    first[1:4, 1:4], second[3:5, 3:6] = 255, 255
    masks = [("a.png", png_bytes(first)), ("b.png", png_bytes(second))]
    labels = groundtruth.labels_from_masks(masks)
    assert labels.dtype == np.int32 and labels[2, 2] == 1 and labels[3, 3] == 2  # later wins
    assert np.array_equal(groundtruth.labels_from_masks(masks, shape=(6, 8)), labels)
    with pytest.raises(GroundTruthError, match=r"a.png: mask size 8 x 6 differs from image size"):
        groundtruth.labels_from_masks(masks, shape=(6, 9))
    wrong = [*masks, ("c.png", png_bytes(np.zeros((5, 8), np.uint8)))]
    with pytest.raises(GroundTruthError, match=r"c.png: .* differs from the other masks \(8 x 6\)"):
        groundtruth.labels_from_masks(wrong)
