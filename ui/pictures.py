"""Showing pictures in the page: shrunk for the browser, side by side, with the error legend."""

from __future__ import annotations

import cv2
import numpy as np
import streamlit as st

from nuclei_core.checks import as_rgb_uint8, check_int
from nuclei_core.io.render import error_legend, thumbnail

PAGE_WIDTH = 1460
"""About the widest picture ``st.image`` shows unscaled in the wide layout (pixels)."""
MAT_COLOUR = (240, 242, 246)
"""Streamlit's light background grey: the mat around gallery pictures that are not square."""


def display_size(rgb: np.ndarray, max_side: int = 2048, max_width: int = PAGE_WIDTH) -> np.ndarray:
    """Shrink very large or very wide pictures for the browser (the downloads keep full size).

    ``st.image`` scales a picture wider than the page down to the page width; a
    1-pixel-high strip would become 0 pixels high and fail, so wide pictures are
    shrunk to ``max_width`` here, keeping at least one pixel of height.

    Examples
    --------
    >>> display_size(np.zeros((3, 5000, 3), np.uint8)).shape
    (1, 1460, 3)
    """
    width = rgb.shape[1]
    side = min(max_side, max(rgb.shape[:2]) * max_width // width) if width > max_width else max_side
    return thumbnail(rgb, max(1, side))


def square_picture(rgb: np.ndarray, side: int = 256, mat=MAT_COLOUR) -> np.ndarray:
    """A picture shrunk to fit a ``side`` x ``side`` square and centred on a grey mat.

    Every gallery picture then has the same height, whatever the image's shape.

    Examples
    --------
    >>> square = square_picture(np.full((10, 40, 3), 9, np.uint8), side=20)
    >>> square.shape, square[0, 0].tolist(), square[10, 10].tolist()
    ((20, 20, 3), [240, 242, 246], [9, 9, 9])
    >>> square_picture(np.zeros((5, 10, 3), np.uint8), side=20)[5:15, :, 0].max()
    np.uint8(0)
    """
    rgb = as_rgb_uint8(rgb, "rgb")
    side = check_int(side, "side", minimum=1)
    height, width = rgb.shape[:2]
    if max(height, width) < side:
        scale = side / max(height, width)
        size = (min(side, max(1, round(width * scale))), min(side, max(1, round(height * scale))))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_NEAREST)
    else:
        small = thumbnail(rgb, side)
    height, width = small.shape[:2]
    square = np.empty((side, side, 3), np.uint8)
    square[...] = mat
    top, left = (side - height) // 2, (side - width) // 2
    square[top : top + height, left : left + width] = small[..., :3]
    return square


def show_pictures(pictures, widths=None) -> None:
    """Show ``(rgb, caption)`` or ``(rgb, caption, alt)`` side by side, shrunk for the browser.

    ``widths`` are relative column widths (default: equal).
    """
    columns = st.columns(widths or len(pictures))
    for column, (picture, caption, *alt) in zip(columns, pictures, strict=True):
        column.image(
            display_size(picture),
            caption=caption,
            alt=alt[0] if alt else caption,
            width="stretch",
            output_format="PNG",
        )


def error_legend_html() -> str:
    """The error colours as a line of coloured squares (fixed HTML, no user text).

    Examples
    --------
    >>> error_legend_html().count("<span")
    3
    """
    parts = [
        f'<span style="display:inline-block;width:0.9em;height:0.9em;background:{colour};'
        f'vertical-align:middle;margin-right:0.3em"></span>{name}'
        for name, colour in error_legend()
    ]
    return " &nbsp; ".join(parts)


def show_error_legend() -> None:
    """Show the legend of the error overlay under the pictures."""
    st.markdown(error_legend_html(), unsafe_allow_html=True)
