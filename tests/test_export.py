"""Tests of nuclei_core.export: PNG encoding and 16-bit label images."""

from __future__ import annotations

import numpy as np
import pytest

from nuclei_core import export, imread
from nuclei_core.errors import InputError

# ============================================================================== writing


def test_encode_png_round_trip_16bit_labels(synthetic_sample):
    _, labels = synthetic_sample
    encoded = export.encode_png(export.labels_to_uint16(labels * 1000))
    read = imread.read_image(encoded)
    assert read.dtype == np.uint16
    np.testing.assert_array_equal(read, labels * 1000)
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(imread.read_image(export.encode_png(rgb)), rgb)  # not BGR
    with pytest.raises(InputError, match="70000"):
        export.labels_to_uint16(np.array([[70000]]))
