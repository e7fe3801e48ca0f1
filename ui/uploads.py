"""What the upload widgets accept: file types of images, ground truth and model files.

Reading the uploads is the engine's work (:mod:`nuclei_core.io.uploads`); the types
here only filter the browser's file dialog.
"""

from __future__ import annotations

from nuclei_core.datasets.folders import IMAGE_SUFFIXES

IMAGE_TYPES = tuple(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES)
"""Microscopy images: PNG, JPEG, TIFF."""
GROUND_TRUTH_TYPES = ("png", "tif", "tiff", "zip")
"""Ground truth: a binary mask or label image (PNG, TIFF), or a zip of one mask per nucleus."""
MODEL_TYPES = ("keras", "zip")
"""Model files: Keras 3 ``.keras`` archives and BioImage Model Zoo packages (``.zip``)."""
