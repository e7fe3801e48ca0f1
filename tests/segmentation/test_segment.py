"""Tests of nuclei_core.segmentation.segment: segment_image finds the same nuclei as
nuclei_from_probabilities on its probabilities, reusing those the size estimate found."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from nuclei_core.segmentation import segment
from nuclei_core.segmentation.options import SegmentOptions


def squares(side, spacing, size=120):
    """Probabilities with a grid of square nuclei, every other one less certain (0.9)."""
    probabilities = np.zeros((size, size, 2), np.float32)
    certainty = itertools.cycle([0.99, 0.9])
    for top in range(2, size - side, spacing):
        for left in range(2, size - side, spacing):
            probabilities[top : top + side, left : left + side, 0] = next(certainty)
    return probabilities


@pytest.fixture
def passes(monkeypatch):
    """Fake network passes: ``first`` at the image's size, ``second`` at an estimated size;
    counts the times the nuclei are found at the image's size."""
    passes = {"first": squares(6, 24), "second": squares(6, 16), "found": 0}

    def fake_predict(model, image, options, progress=None):
        return passes["first" if options.diameter is None else "second"]

    def counted(*args, **kwargs):
        passes["found"] += 1
        return found(*args, **kwargs)

    found = segment.labels_from_probabilities
    monkeypatch.setattr(segment, "predict_image", fake_predict)
    monkeypatch.setattr(segment, "labels_from_probabilities", counted)
    return passes


@pytest.mark.parametrize("model_diameter", [6.8, 20.0])  # the first pass kept; the second
@pytest.mark.parametrize("min_confidence", [0.0, 0.95])
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_segment_image_finds_what_nuclei_from_probabilities_finds(
    passes, model_diameter, min_confidence, threshold
):
    image = np.zeros((120, 120), np.uint8)
    options = SegmentOptions(
        diameter="auto",
        model_diameter=model_diameter,
        min_confidence=min_confidence,
        threshold=threshold,
    )
    found = segment.segment_image(None, image, options, pixel_size=0.5)
    used = replace(options, diameter=found.diameter)
    labels, table = segment.nuclei_from_probabilities(
        found.probabilities, image, used, pixel_size=0.5
    )
    assert (found.diameter is None) == (model_diameter == 6.8)
    assert found.labels.dtype == labels.dtype and np.array_equal(found.labels, labels)
    assert found.table.equals(table)


@pytest.mark.parametrize(("model_diameter", "searches"), [(6.8, 1), (20.0, 2)])
def test_segment_image_reuses_the_nuclei_the_size_estimate_found(passes, model_diameter, searches):
    options = SegmentOptions(diameter="auto", model_diameter=model_diameter, min_confidence=0.95)
    everything = segment.segment_image(
        None, np.zeros((120, 120), np.uint8), replace(options, min_confidence=0.0)
    )
    passes["found"] = 0
    found = segment.segment_image(None, np.zeros((120, 120), np.uint8), options)
    assert passes["found"] == searches  # the size estimate's passes only
    assert 0 < found.count < everything.count  # the less certain nuclei dropped


@pytest.mark.parametrize(("model_diameter", "searches"), [(6.8, 1), (20.0, 2)])
def test_the_segment_page_path_finds_the_nuclei_once_and_again_only_when_a_slider_moves(
    passes, model_diameter, searches
):
    """``predict_with_size`` then ``nuclei_from_probabilities(found=...)`` (the Segment page)
    gives what ``segment_image`` gives, without finding the nuclei again at the default
    threshold and size; a moved threshold finds them anew."""
    image = np.zeros((120, 120), np.uint8)
    options = SegmentOptions(diameter="auto", model_diameter=model_diameter, min_confidence=0.95)
    whole = segment.segment_image(None, image, options)
    passes["found"] = 0
    probabilities, used, found = segment.predict_with_size(None, image, options)
    labels, table = segment.nuclei_from_probabilities(probabilities, image, used, found=found)
    assert passes["found"] == searches  # the size estimate's only
    assert np.array_equal(labels, whole.labels) and table.equals(whole.table)
    moved = replace(used, threshold=0.3)
    again, _ = segment.nuclei_from_probabilities(probabilities, image, moved, found=found)
    alone, _ = segment.nuclei_from_probabilities(probabilities, image, moved)
    assert np.array_equal(again, alone) and passes["found"] > searches


def test_the_seed_height_of_the_options_decides_whether_a_dip_splits_two_nuclei():
    rows, columns = np.mgrid[:40, :60]
    left = np.hypot(rows - 20, columns - 21)
    right = np.hypot(rows - 20, columns - 39)
    probabilities = np.zeros((40, 60, 3), np.float32)
    probabilities[..., 0] = np.minimum(left, right) < 11  # two discs that overlap
    # A distance map with peaks of 1 and 0.95 and a pass of 0.7 between them: the lower peak
    # rises 0.25 above the pass.
    cones = np.maximum(1 - left / 11, 0.95 * (1 - right / 11))
    probabilities[..., 2] = np.maximum(cones, 0.7) * probabilities[..., 0]

    def count(height):
        options = SegmentOptions(peak_height=height)
        return int(segment.find_nuclei(probabilities, options).max())

    assert count(0.2) == 2 and count(0.3) == 1
    with pytest.raises(Exception, match="peak_height must be between 0 and 1"):
        SegmentOptions(peak_height=0.0)
