"""Tests of nuclei_core.segmentation.region_figures: the same figures as
``skimage.measure.regionprops_table`` on generated label images of every awkward shape."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import regionprops_table
from synthetic import make_nuclei

from nuclei_core.segmentation.measure import measure_nuclei
from nuclei_core.segmentation.region_figures import mean_intensities, region_figures

PROPERTIES = (
    "label",
    "centroid",
    "area",
    "perimeter",
    "equivalent_diameter_area",
    "eccentricity",
    "solidity",
    "intensity_mean",
    "intensity_max",
)


def assert_same_as_regionprops(labels: np.ndarray, intensity: np.ndarray) -> None:
    expected = regionprops_table(labels, intensity_image=intensity, properties=PROPERTIES)
    found = region_figures(labels, intensity)
    assert sorted(found) == sorted(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(found[name], values, rtol=1e-10, atol=1e-9, err_msg=name)


def random_blobs(seed: int) -> np.ndarray:
    """Smoothed random labels: touching, ragged, holed, U-shaped and one-pixel regions."""
    rng = np.random.default_rng(seed)
    height, width = rng.integers(5, 70, size=2)
    labels = rng.integers(0, rng.integers(2, 9), size=(height, width))
    labels = ndi.median_filter(labels, size=int(rng.integers(1, 4))).astype(np.int32)
    if seed % 3 == 0:
        labels[labels == 2] = 0  # a gap in the numbering
    return labels


@pytest.mark.parametrize("seed", range(40))
def test_random_blobs_give_regionprops_figures(seed):
    labels = random_blobs(seed)
    if labels.max() == 0:
        labels[0, 0] = 1
    intensity = np.random.default_rng(seed).random(labels.shape)
    assert_same_as_regionprops(labels, intensity)


def test_generated_nuclei_and_odd_shapes_give_regionprops_figures():
    image, labels = make_nuclei(size=(96, 128), n_nuclei=14, n_touching_pairs=3, seed=4)
    labels[0, :] = 30  # a line along the image's edge
    labels[50, 120] = 31  # one pixel
    labels[60:70, 100:110] = 32
    labels[62:68, 102:108] = 0  # a ring with a hole
    labels[80:90, 5:20] = 33
    labels[80:87, 9:16] = 0  # a U open at the bottom
    labels[90:96, 40:41] = 34  # a vertical line
    labels[70:80, 60:70] = np.eye(10, dtype=np.int32) * 35  # a diagonal of pixels
    assert_same_as_regionprops(labels, image.astype(np.float64))


def test_huge_label_values_are_numbered_without_a_table_of_that_size():
    """regionprops runs out of memory on such labels; the figures are those of the same
    nuclei numbered small."""
    labels = np.zeros((20, 20), dtype=np.int64)
    labels[2:6, 2:9] = 2**40
    labels[10:15, 10:14] = 7
    intensity = np.arange(400, dtype=np.float64).reshape(20, 20)
    small = np.where(labels == 2**40, 8, labels)
    found, expected = region_figures(labels, intensity), region_figures(small, intensity)
    assert found["label"].tolist() == [7, 2**40]
    for name in expected:
        if name != "label":
            np.testing.assert_array_equal(found[name], expected[name])
    assert_same_as_regionprops(small, intensity)
    np.testing.assert_allclose(
        mean_intensities(labels, intensity),
        [intensity[10:15, 10:14].mean(), intensity[2:6, 2:9].mean()],
    )


def test_no_nuclei_give_empty_figures():
    figures = region_figures(np.zeros((8, 8), np.int32), np.ones((8, 8)))
    assert all(values.size == 0 for values in figures.values())


def test_measure_nuclei_keeps_its_columns_and_values():
    image, labels = make_nuclei(size=(80, 80), n_nuclei=9, seed=2)
    table = measure_nuclei(labels, intensity_image=image, pixel_size=0.5)
    expected = regionprops_table(
        labels, intensity_image=image.astype(np.float64), properties=PROPERTIES
    )
    np.testing.assert_array_equal(table["label"], expected["label"])
    np.testing.assert_allclose(table["perimeter_um"], expected["perimeter"] * 0.5, rtol=1e-12)
    np.testing.assert_allclose(table["solidity"], expected["solidity"], rtol=1e-12)
    np.testing.assert_allclose(table["max_intensity"], expected["intensity_max"], rtol=1e-12)
