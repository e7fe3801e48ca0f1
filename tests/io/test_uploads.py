"""Tests of nuclei_core.io.uploads: reading uploaded images and ground truth, warnings as text."""

from __future__ import annotations

import io as stdio

import numpy as np
import pytest
import tifffile
from support import png_bytes

from nuclei_core.errors import GroundTruthError, ImageReadError
from nuclei_core.io import uploads


def test_read_upload_returns_the_image_and_its_warnings_as_text():
    buffer = stdio.BytesIO()
    with tifffile.TiffWriter(buffer) as writer:
        writer.write(np.full((5, 6), 7, np.uint8))
        writer.write(np.full((5, 6), 9, np.uint8))
    image, notes = uploads.read_upload(buffer.getvalue(), "stack.tif")
    assert image.shape == (5, 6) and (image == 7).all()
    assert len(notes) == 1 and "multi-page" in notes[0] and "\n" not in notes[0]
    image, notes = uploads.read_upload(png_bytes(np.zeros((3, 4), np.uint8)), "plain.png")
    assert image.shape == (3, 4) and notes == []


def test_read_upload_names_the_file_it_refuses():
    with pytest.raises(ImageReadError, match=r"^broken\.png: "):
        uploads.read_upload(b"\x89PNG not really", "broken.png")


def test_read_ground_truth_fits_the_image(synthetic_sample):
    image, labels = synthetic_sample
    found, notes = uploads.read_ground_truth(
        png_bytes(labels.astype(np.uint16)), "truth.png", image.shape
    )
    assert np.array_equal(found, labels) and notes == []
    with pytest.raises(GroundTruthError, match=r"^truth\.png: .*differs from image size"):
        uploads.read_ground_truth(png_bytes(labels.astype(np.uint16)), "truth.png", (32, 32, 3))


def test_image_digest_is_short_and_follows_the_content():
    assert uploads.image_digest(b"abc") == uploads.image_digest(bytearray(b"abc"))
    assert uploads.image_digest(b"abc") != uploads.image_digest(b"abd")
    assert len(uploads.image_digest(b"")) == 16
