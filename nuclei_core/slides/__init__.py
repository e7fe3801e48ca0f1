"""Whole slides and very large images: read tile by tile, segment tile by tile, stitch."""
