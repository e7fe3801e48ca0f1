"""What the upload widgets accept: file types of images, ground truth and model files, and
the largest image the Segment page takes.

Reading the uploads is the engine's work (:mod:`nuclei_core.io.uploads`); the types
here filter the browser's file dialog, and :data:`SEGMENT_SIDE` is both the limit the
Segment page's uploader names and the one it applies (larger images: the folder or
slide pages, which run in the server's queue).
"""

from __future__ import annotations

from nuclei_core.datasets.folders import IMAGE_SUFFIXES

IMAGE_TYPES = tuple(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES)
"""Microscopy images: PNG, JPEG, TIFF."""
GROUND_TRUTH_TYPES = ("png", "tif", "tiff", "zip")
"""Ground truth: a binary mask or label image (PNG, TIFF), or a zip of one mask per nucleus."""
MODEL_TYPES = ("keras", "zip")
"""Model files: Keras 3 ``.keras`` archives and BioImage Model Zoo packages (``.zip``)."""

SEGMENT_SIDE = 4096
"""The Segment page segments images of up to 4096 x 4096 pixels (checked from the file's
header before decoding); larger ones are refused with the pages that take them."""
SEGMENT_MAX_PIXELS = SEGMENT_SIDE * SEGMENT_SIDE
