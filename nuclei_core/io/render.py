"""Drawing nuclei for the app: colour-blind-friendly overlays, outlines and error maps.

The drawing functions take a display image (``uint8``, e.g. from
:func:`nuclei_core.segmentation.preprocess.to_display_rgb`) and a label image or error map, and
return a new ``uint8 (H, W, 3)`` picture; the inputs are never modified.  Colours
are Okabe-Ito, distinguishable for the common forms of colour blindness.  Also here:
the error colours' legend, the probability map as a picture, thumbnails and the
ground-truth / prediction slider view.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
from skimage.segmentation import find_boundaries

from nuclei_core.checks import (
    as_rgb_uint8,
    check_colour,
    check_fraction,
    check_label_image,
    check_same_shape,
)
from nuclei_core.errors import InputError

__all__ = [
    "ERROR_COLOURS",
    "NUCLEUS_PALETTE",
    "error_legend",
    "error_overlay",
    "outlines",
    "overlay",
    "probability_rgb",
    "split_view",
    "thumbnail",
]

#: Okabe-Ito qualitative colours (black left out) used to fill nuclei, one per label in turn.
#: They stay distinguishable for the common forms of colour blindness.
NUCLEUS_PALETTE = (
    (230, 159, 0),  # orange
    (86, 180, 233),  # sky blue
    (0, 158, 115),  # bluish green
    (240, 228, 66),  # yellow
    (0, 114, 178),  # blue
    (213, 94, 0),  # vermillion
    (204, 121, 167),  # reddish purple
)

#: Legend of :func:`error_overlay`: error-map code -> (name, RGB colour).  Three Okabe-Ito
#: colours far from the purple and pink of H&E-stained tissue (CIELAB distance over 70 from
#: hematoxylin and eosin) that stay distinct for deuteranopes, protanopes and tritanopes.
ERROR_COLOURS = MappingProxyType(
    {
        1: ("true positive", (0, 158, 115)),  # bluish green
        2: ("false positive", (213, 94, 0)),  # vermillion
        3: ("false negative", (240, 228, 66)),  # yellow
    }
)


def outlines(labels: np.ndarray) -> np.ndarray:
    """Return the outline of every nucleus (its 1-pixel inner rim) for drawing.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image, 0 = background.

    Returns
    -------
    ndarray of bool, shape (H, W)
        True on nucleus pixels that touch the background or another nucleus
        (``skimage.segmentation.find_boundaries(labels, mode="inner")``).

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((5, 5), dtype=np.int32)
    >>> labels[1:4, 1:4] = 1
    >>> outlines(labels).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 0, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    check_label_image(labels)
    return find_boundaries(labels, mode="inner")


def _paint(
    image: np.ndarray, codes: np.ndarray, colours: np.ndarray, alpha: float, edges: np.ndarray
) -> np.ndarray:
    """Return a copy of ``image`` with ``colours[codes]`` blended in and ``edges`` opaque.

    Pixels with code 0 are left as they are; the blend and the colour look-up touch only the
    coloured pixels, so no whole-image float copy is made.
    """
    result = image.copy()
    inside = codes > 0
    original = result[inside].astype(np.float32)
    fill = colours[codes[inside]].astype(np.float32)
    blended = (1.0 - alpha) * original + alpha * fill
    result[inside] = np.rint(blended).astype(np.uint8)
    result[edges] = colours[codes[edges]]
    return result


def overlay(
    image_rgb_uint8: np.ndarray,
    labels: np.ndarray,
    colour: tuple[int, int, int] | None = None,
    alpha: float = 0.35,
) -> np.ndarray:
    """Draw nuclei over an image: semi-transparent fill and opaque outline.

    Parameters
    ----------
    image_rgb_uint8 : ndarray of uint8, shape (H, W, 3) or (H, W)
        Display image (e.g. from ``preprocess.to_display_rgb``); grey is shown as grey.
    labels : ndarray of int, shape (H, W)
        Label image, 0 = background.
    colour : (int, int, int), optional
        One RGB colour for every nucleus.  By default nucleus ``k`` gets
        ``NUCLEUS_PALETTE[(k - 1) % 7]`` (Okabe-Ito, colour-blind friendly).
    alpha : float, optional
        Opacity of the fill, from 0 (invisible) to 1 (opaque).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        A new image; the input is not modified.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((6, 6, 3), dtype=np.uint8)
    >>> labels = np.zeros((6, 6), dtype=np.int32)
    >>> labels[1:5, 1:5] = 1
    >>> drawn = overlay(image, labels, colour=(255, 0, 255), alpha=0.5)
    >>> drawn[1, 1].tolist(), drawn[2, 2].tolist(), drawn[0, 0].tolist()
    ([255, 0, 255], [128, 0, 128], [0, 0, 0])
    """
    image = as_rgb_uint8(image_rgb_uint8, "image_rgb_uint8")
    check_label_image(labels)
    check_same_shape(image, "image_rgb_uint8", labels.shape)
    check_fraction(alpha, "alpha")
    if colour is None:
        palette = np.array(NUCLEUS_PALETTE, dtype=np.uint8)
    else:
        palette = np.array([check_colour(colour, "colour")], dtype=np.uint8)
    # codes: 0 = background, 1..len(palette) = palette entry of each nucleus.
    codes = np.zeros(labels.shape, dtype=np.int32)
    inside = labels > 0
    codes[inside] = (labels[inside] - 1) % len(palette) + 1
    colours = np.concatenate([np.zeros((1, 3), dtype=np.uint8), palette])
    # Outlines come from the labels, so touching nuclei of the same colour stay apart.
    edges = find_boundaries(labels, mode="inner")
    return _paint(image, codes, colours, alpha, edges)


def error_overlay(
    image_rgb_uint8: np.ndarray, error_map: np.ndarray, alpha: float = 0.5
) -> np.ndarray:
    """Draw a detection error map over an image, in colour-blind-safe colours.

    Parameters
    ----------
    image_rgb_uint8 : ndarray of uint8, shape (H, W, 3) or (H, W)
        Display image.
    error_map : ndarray of int, shape (H, W)
        0 = background, 1 = true positive, 2 = false positive, 3 = false negative.
    alpha : float, optional
        Opacity of the fill; the outline of each coloured region is opaque.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        A new image coloured as in :data:`ERROR_COLOURS` (the legend).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((6, 6, 3), dtype=np.uint8)
    >>> error_map = np.zeros((6, 6), dtype=np.uint8)
    >>> error_map[1:5, 1:5] = 2
    >>> drawn = error_overlay(image, error_map)
    >>> drawn[1, 1].tolist() == list(ERROR_COLOURS[2][1])
    True
    """
    image = as_rgb_uint8(image_rgb_uint8, "image_rgb_uint8")
    check_label_image(error_map, "error_map")
    check_same_shape(image, "image_rgb_uint8", error_map.shape)
    check_fraction(alpha, "alpha")
    if error_map.max() > 3:
        raise InputError(f"error_map codes must be 0 to 3, got {int(error_map.max())}")
    colours = np.zeros((4, 3), dtype=np.uint8)
    for code, (_, rgb) in ERROR_COLOURS.items():
        colours[code] = rgb
    edges = find_boundaries(error_map, mode="inner")
    return _paint(image, error_map, colours, alpha, edges)


def error_legend() -> list[tuple[str, str]]:
    """``(name, "#rrggbb")`` of the :func:`error_overlay` colours, for a legend.

    Examples
    --------
    >>> [name for name, _ in error_legend()]
    ['true positive', 'false positive', 'missed nucleus (false negative)']
    """
    legend = []
    for code in sorted(ERROR_COLOURS):
        name, (red, green, blue) = ERROR_COLOURS[code]
        if name == "false negative":
            name = "missed nucleus (false negative)"
        legend.append((name, f"#{red:02x}{green:02x}{blue:02x}"))
    return legend


def probability_rgb(probabilities: np.ndarray) -> np.ndarray:
    """The foreground probability (channel 0) as a viridis-coloured ``uint8 (H, W, 3)`` picture.

    Examples
    --------
    >>> probability_rgb(np.zeros((2, 3, 2), np.float32)).shape
    (2, 3, 3)
    """
    from matplotlib import colormaps

    channel = np.asarray(probabilities)
    channel = channel[..., 0] if channel.ndim == 3 else channel
    table = (colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    index = np.clip(np.nan_to_num(channel) * 255 + 0.5, 0, 255).astype(np.uint8)
    return table[index]


def thumbnail(rgb: np.ndarray, max_side: int = 256) -> np.ndarray:
    """A copy of a picture whose longer side is at most ``max_side`` pixels.

    Examples
    --------
    >>> thumbnail(np.zeros((1000, 500, 3), np.uint8)).shape
    (256, 128, 3)
    """
    import cv2

    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return rgb.copy()
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def split_view(left: np.ndarray, right: np.ndarray, fraction: float) -> np.ndarray:
    """Slider view: ``left`` up to ``fraction`` of the width, ``right`` after, a white line between.

    Examples
    --------
    >>> view = split_view(np.zeros((2, 10, 3), np.uint8), np.full((2, 10, 3), 9, np.uint8), 0.5)
    >>> view[0, 0].tolist(), view[0, 9].tolist(), view[0, 5].tolist()
    ([0, 0, 0], [9, 9, 9], [255, 255, 255])
    """
    left = as_rgb_uint8(left, "left")
    right = check_same_shape(as_rgb_uint8(right, "right"), "right", left.shape[:2], "left")
    width = left.shape[1]
    cut = int(round(min(max(float(fraction), 0.0), 1.0) * width))
    view = right.copy()
    view[:, :cut] = left[:, :cut]
    line = max(1, width // 300)
    if 0 < cut < width:
        view[:, max(0, cut - line // 2) : cut + (line + 1) // 2] = 255
    return view
