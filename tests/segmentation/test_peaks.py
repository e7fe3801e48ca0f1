"""Tests of nuclei_core.segmentation.peaks: the compiled h-maxima give skimage's seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from synthetic import make_nuclei

from nuclei_core.errors import InputError
from nuclei_core.segmentation.peaks import h_maxima_tops
from nuclei_core.segmentation.postprocess import labels_from_probabilities


def skimage_tops(foreground, distance, height):
    """The seeds as the engine found them before: h_maxima once per component's box."""
    components, _ = ndi.label(foreground, structure=ndi.generate_binary_structure(2, 1))
    tops = np.zeros(foreground.shape, dtype=bool)
    for index, box in enumerate(ndi.find_objects(components), start=1):
        inside = components[box] == index
        local = np.where(inside, distance[box], 0).astype(np.float32)
        tops[box] |= h_maxima(local, height).view(bool) & inside
    return tops


def distance_of_nuclei(seed: int):
    """A distance map as the network draws one: each generated nucleus's distance to its
    edge over its largest, a little noise, touching nuclei in one component."""
    _, labels = make_nuclei(size=(96, 96), n_nuclei=12, n_touching_pairs=4, seed=seed)
    distance = np.zeros(labels.shape, np.float32)
    for label in range(1, labels.max() + 1):
        inside = labels == label
        edge = ndi.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
        distance[inside] = edge[inside] / edge.max()
    noise = np.random.default_rng(seed).normal(0, 0.03, labels.shape).astype(np.float32)
    return labels > 0, np.clip(ndi.gaussian_filter(distance, 1.0) + noise, 0, 1).astype(np.float32)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("height", [0.05, 0.2, 0.5])
def test_generated_nuclei_get_skimage_seeds(seed, height):
    foreground, distance = distance_of_nuclei(seed)
    np.testing.assert_array_equal(
        h_maxima_tops(foreground, distance, height), skimage_tops(foreground, distance, height)
    )


@pytest.mark.parametrize("seed", range(60))
def test_random_maps_with_plateaus_and_diagonal_contacts_get_skimage_seeds(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(3, 50, size=2))
    distance = ndi.gaussian_filter(rng.random(shape), rng.uniform(0.5, 3)).astype(np.float32)
    if seed % 3 == 0:
        distance = (np.round(distance * 20) / 20).astype(np.float32)  # flat tops and shelves
    foreground = distance > np.quantile(distance, rng.uniform(0, 0.6))
    height = float(rng.choice([0.01, 0.05, 0.2]))
    np.testing.assert_array_equal(
        h_maxima_tops(foreground, distance, height), skimage_tops(foreground, distance, height)
    )


def test_a_component_flatter_than_the_height_has_no_seed_and_stays_one_nucleus():
    distance = np.full((10, 10), 0.5, np.float32)
    distance[2:8, 2:8] = 0.6
    assert not h_maxima_tops(np.ones((10, 10), bool), distance, 0.2).any()
    probabilities = np.stack([np.ones((10, 10)), np.zeros((10, 10)), distance], axis=-1)
    assert labels_from_probabilities(probabilities.astype(np.float32)).max() == 1


def test_a_height_of_zero_is_refused():
    with pytest.raises(InputError, match="height"):
        h_maxima_tops(np.ones((4, 4), bool), np.ones((4, 4), np.float32), 0.0)
    with pytest.raises(InputError, match="peak_height"):
        labels_from_probabilities(np.ones((4, 4, 3), np.float32), peak_height=0.0)
