"""Classical baselines without learning: threshold a nucleus channel, split with a watershed.

What the network is measured against, as a CellProfiler pipeline would segment nuclei:
:func:`otsu_labels` for bright nuclei on a dark background (fluorescence, or any image
after :func:`nuclei_core.segmentation.preprocess.to_model_input`), and :func:`hematoxylin_labels`
for H&E-stained tissue, where nuclei are the hematoxylin-rich (purple) parts.  Both
smooth the channel, threshold it with Otsu's method, fill holes and split touching
nuclei with :func:`nuclei_core.segmentation.postprocess.labels_from_mask`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb2hed
from skimage.filters import gaussian, threshold_otsu

from nuclei_core.checks import check_array, check_finite, check_int
from nuclei_core.errors import InputError
from nuclei_core.segmentation.postprocess import labels_from_mask
from nuclei_core.segmentation.preprocess import grey

__all__ = ["hematoxylin_labels", "otsu_labels"]


def _threshold_and_split(channel: np.ndarray, min_size: int, min_distance: int) -> np.ndarray:
    """Nuclei where the smoothed ``channel`` is above its Otsu threshold, holes filled, split."""
    smoothed = gaussian(channel, sigma=1.0, preserve_range=True)
    if smoothed.min() == smoothed.max():
        return np.zeros(smoothed.shape, dtype=np.int32)
    mask = smoothed > threshold_otsu(smoothed)
    mask = ndi.binary_fill_holes(mask)
    return labels_from_mask(mask, min_size, min_distance)


def _check_arguments(image: np.ndarray, min_size: int, min_distance: int) -> None:
    """The checks both baselines make after the shape of ``image``."""
    check_finite(image, "image")
    check_int(min_size, "min_size", minimum=0)
    check_int(min_distance, "min_distance", minimum=1)


def otsu_labels(image: np.ndarray, min_size: int = 15, min_distance: int = 5) -> np.ndarray:
    """Classical baseline without learning: Otsu threshold, then distance watershed.

    As a CellProfiler pipeline would do it for bright nuclei on a dark background: average
    the channels, smooth with a Gaussian (sigma 1), threshold with Otsu's method, fill holes,
    then split touching nuclei with
    :func:`~nuclei_core.segmentation.postprocess.labels_from_mask`.  A
    constant image has no nuclei.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
        Greyscale or RGB image, nuclei bright (e.g. the model input, float in [0, 1]).
    min_size : int, optional
        Nuclei with fewer pixels are removed.
    min_distance : int, optional
        Minimum distance in pixels between two seeds of the watershed.

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
        0 = background, nuclei numbered 1..N.

    Examples
    --------
    >>> image = np.zeros((40, 40))
    >>> image[5:15, 5:15] = 1.0
    >>> image[25:35, 20:32] = 1.0
    >>> int(otsu_labels(image).max())
    2
    >>> int(otsu_labels(np.full((40, 40), 0.5)).max())
    0
    """
    check_array(image, "image")
    if image.ndim == 3 and image.shape[2] != 3:
        raise InputError(f"image must be (H, W) or (H, W, 3), got shape {image.shape}")
    _check_arguments(image, min_size, min_distance)
    return _threshold_and_split(grey(image, np.float32, "image"), min_size, min_distance)


def hematoxylin_labels(image: np.ndarray, min_size: int = 15, min_distance: int = 5) -> np.ndarray:
    """Classical baseline for H&E-stained tissue: hematoxylin channel, Otsu, watershed.

    Colour deconvolution (``skimage.color.rgb2hed``, Ruifrok and Johnston's stain
    vectors) separates the hematoxylin stain that marks nuclei from eosin; its channel
    is smoothed with a Gaussian (sigma 1), thresholded with Otsu's method, holes are
    filled, and touching nuclei are split by a distance-transform watershed
    (:func:`~nuclei_core.segmentation.postprocess.labels_from_mask`).  A constant image has no
    nuclei.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3)
        RGB image in transmitted light as read (e.g. ``uint8``; floats in [0, 1]).
    min_size, min_distance : int, optional
        As in :func:`otsu_labels`.

    Returns
    -------
    labels : ndarray of int32, shape (H, W)
        As :func:`otsu_labels` returns them.

    Raises
    ------
    InputError
        ``image`` is not an RGB image (a greyscale image has no stain colours).

    Examples
    --------
    >>> from skimage.color import hed2rgb
    >>> stains = np.zeros((40, 40, 3)); stains[..., 1] = 0.05  # eosin everywhere
    >>> stains[5:15, 5:15, 0] = stains[25:35, 20:32, 0] = 0.4  # two nuclei
    >>> int(hematoxylin_labels(hed2rgb(stains)).max())
    2
    """
    check_array(image, "image")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(
            f"image must be an RGB image (H, W, 3) to separate the stains, got shape {image.shape}"
        )
    _check_arguments(image, min_size, min_distance)
    hematoxylin = rgb2hed(image)[..., 0].astype(np.float32)
    return _threshold_and_split(hematoxylin, min_size, min_distance)
