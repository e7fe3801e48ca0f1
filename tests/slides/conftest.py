"""Fixtures of the whole-slide tests: a crowded synthetic image, 1024 pixels square."""

from __future__ import annotations

import pytest
from synthetic import make_nuclei


@pytest.fixture(scope="module")
def crowded():
    """A 1024 x 1024 image with about 900 synthetic nuclei (some touching) and its labels."""
    return make_nuclei((1024, 1024), n_nuclei=900, radius=(6, 10), n_touching_pairs=60, seed=3)
