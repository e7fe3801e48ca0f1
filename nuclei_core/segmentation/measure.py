"""Measuring nuclei: one table row per nucleus of a label image, and its CSV file.

:func:`measure_nuclei` measures shape and intensity (the figures of
``skimage.measure.regionprops_table``, computed for all nuclei at once by
:mod:`nuclei_core.segmentation.region_figures`) into a :class:`pandas.DataFrame` whose column names
carry the unit: ``_px`` (pixels; for the area, a count of pixels), ``_um``
(micrometres), ``_um2`` (square micrometres).  Without a pixel size sizes are in pixels; with one
(micrometres per pixel) they are in micrometres, and the centroids are given in both
(the pixel ones are napari's and the label image's coordinates: row ``y``, column ``x``).
:func:`write_measurements_csv` writes that table atomically through
:mod:`nuclei_core.storage`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from nuclei_core.checks import (
    check_array,
    check_finite,
    check_label_image,
    check_positive,
    check_same_shape,
)
from nuclei_core.errors import InputError, InputTypeError
from nuclei_core.segmentation.preprocess import grey
from nuclei_core.segmentation.region_figures import mean_intensities, region_figures
from nuclei_core.storage import atomic_write_text

__all__ = [
    "MEASUREMENT_COLUMNS",
    "UM_COLUMNS",
    "area_column",
    "measure_nuclei",
    "write_measurements_csv",
]

#: Columns of :func:`measure_nuclei` without a pixel size, in order.
MEASUREMENT_COLUMNS = (
    "label",
    "centroid_y_px",
    "centroid_x_px",
    "area_px",
    "perimeter_px",
    "equivalent_diameter_px",
    "eccentricity",
    "solidity",
)
#: Columns with a pixel size, in order (pixel centroids kept for napari).
UM_COLUMNS = (
    "label",
    "centroid_y_px",
    "centroid_x_px",
    "centroid_y_um",
    "centroid_x_um",
    "area_um2",
    "perimeter_um",
    "equivalent_diameter_um",
    "eccentricity",
    "solidity",
)
_INTENSITY_COLUMNS = ("mean_intensity", "max_intensity")

# region_figures' names (regionprops_table's) -> ours.
_COLUMN_NAMES = {
    "centroid-0": "centroid_y_px",
    "centroid-1": "centroid_x_px",
    "area": "area_px",
    "perimeter": "perimeter_px",
    "equivalent_diameter_area": "equivalent_diameter_px",
    "intensity_mean": "mean_intensity",
    "intensity_max": "max_intensity",
}
_LENGTHS = ("centroid_y", "centroid_x", "perimeter", "equivalent_diameter")


def _in_micrometres(table: pd.DataFrame, pixel_size: float) -> pd.DataFrame:
    for name in _LENGTHS:
        table[f"{name}_um"] = table[f"{name}_px"] * pixel_size
    table["area_um2"] = table["area_px"] * pixel_size**2
    return table


def _channel_columns(labels: np.ndarray, channels: np.ndarray) -> dict:
    check_array(channels, "channel_images")
    if channels.ndim != 3 or channels.shape[:2] != labels.shape:
        raise InputError(
            f"channel_images must have shape {labels.shape + ('C',)}, got {channels.shape}"
        )
    check_finite(channels, "channel_images")
    return {
        f"mean_intensity_ch{index}": mean_intensities(
            labels, channels[..., index].astype(np.float64)
        )
        for index in range(channels.shape[-1])
    }


def measure_nuclei(
    labels: np.ndarray,
    intensity_image: np.ndarray | None = None,
    pixel_size: float | None = None,
    channel_images: np.ndarray | None = None,
) -> pd.DataFrame:
    """Measure every nucleus of a label image (one row per nucleus); column names say the unit.

    The figures are ``skimage.measure.regionprops_table``'s, computed for all nuclei at
    once (:func:`~nuclei_core.segmentation.region_figures.region_figures`).  Without
    ``pixel_size`` the columns are :data:`MEASUREMENT_COLUMNS`: ``label``,
    ``centroid_y_px``, ``centroid_x_px`` (row and column, pixels), ``area_px`` (number of
    pixels), ``perimeter_px``, ``equivalent_diameter_px`` (diameter of the disc of the same
    area), ``eccentricity``, ``solidity``.  With ``pixel_size`` they are
    :data:`UM_COLUMNS`: the pixel centroids, the centroids in µm, ``area_um2`` (µm²),
    ``perimeter_um`` and ``equivalent_diameter_um`` (µm).  With ``intensity_image`` also
    ``mean_intensity`` and ``max_intensity``; with ``channel_images`` also
    ``mean_intensity_ch0``, ``mean_intensity_ch1`` ...

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image, 0 = background.
    intensity_image : ndarray, shape (H, W) or (H, W, C), optional
        Image whose greyscale (mean over the channels, as float) is measured.
    pixel_size : float, optional
        Micrometres per pixel.
    channel_images : ndarray, shape (H, W, C), optional
        Every channel of a multi-channel image: one mean-intensity column per channel.

    Returns
    -------
    pandas.DataFrame
        One row per nucleus, sorted by label; no rows (same columns) without nuclei.

    Examples
    --------
    >>> labels = np.zeros((10, 10), dtype=np.int32)
    >>> labels[2:4, 3:8] = 1
    >>> measure_nuclei(labels, intensity_image=labels * 2.0)[["area_px", "mean_intensity"]]
       area_px  mean_intensity
    0     10.0             2.0
    >>> measure_nuclei(labels, pixel_size=0.5)[["centroid_x_px", "centroid_x_um", "area_um2"]]
       centroid_x_px  centroid_x_um  area_um2
    0            5.0            2.5       2.5
    """
    check_label_image(labels)
    columns = list(MEASUREMENT_COLUMNS if pixel_size is None else UM_COLUMNS)
    intensity = None
    if intensity_image is not None:
        check_array(intensity_image, "intensity_image")
        check_same_shape(intensity_image, "intensity_image", labels.shape)
        check_finite(intensity_image, "intensity_image")
        intensity = grey(intensity_image, np.float64, "intensity_image")
        columns += _INTENSITY_COLUMNS
    if pixel_size is not None:
        pixel_size = check_positive(pixel_size, "pixel_size")

    table = pd.DataFrame(region_figures(labels, intensity)).rename(columns=_COLUMN_NAMES)
    if pixel_size is not None:
        table = _in_micrometres(table, pixel_size)
    table = table[columns]
    table["label"] = table["label"].astype(np.int64)
    if channel_images is not None:
        for name, values in _channel_columns(labels, np.asarray(channel_images)).items():
            table[name] = values
    return table


def area_column(table: pd.DataFrame) -> str:
    """The area column of a :func:`measure_nuclei` table: ``area_um2`` or ``area_px``.

    Examples
    --------
    >>> area_column(pd.DataFrame(columns=["label", "area_um2"]))
    'area_um2'
    """
    return "area_um2" if "area_um2" in table.columns else "area_px"


def write_measurements_csv(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a measurement table as CSV, atomically.

    Written through :func:`nuclei_core.storage.atomic_write_text`: a reader never
    sees a half-written file, and a failed write leaves the previous file as it was.

    Parameters
    ----------
    table : pandas.DataFrame
        E.g. from :func:`measure_nuclei`; written without the index.
    path : str or os.PathLike
        Destination file; its folder must exist.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    StorageError
        If the file cannot be written (missing folder, no permission, disk full...).

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> written = write_measurements_csv(pd.DataFrame({"label": [1, 2]}), folder + "/m.csv")
    >>> pd.read_csv(written)["label"].tolist()
    [1, 2]
    """
    if not isinstance(table, pd.DataFrame):
        raise InputTypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    target = Path(path)
    atomic_write_text(target, table.to_csv(index=False))
    return target
