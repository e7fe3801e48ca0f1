"""Measuring nuclei: one table row per nucleus of a label image, and its CSV file.

:func:`measure_nuclei` measures shape (and intensity, and sizes in micrometres when
the pixel size is known) with ``skimage.measure.regionprops_table`` into a
:class:`pandas.DataFrame`; :func:`write_measurements_csv` writes that table atomically
through :mod:`nuclei_core.storage`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from skimage.measure import regionprops_table

from nuclei_core.checks import (
    check_array,
    check_finite,
    check_label_image,
    check_positive,
    check_same_shape,
)
from nuclei_core.errors import InputTypeError
from nuclei_core.preprocess import grey
from nuclei_core.storage import atomic_write_text

__all__ = ["MEASUREMENT_COLUMNS", "measure_nuclei", "write_measurements_csv"]

#: Columns of :func:`measure_nuclei` that are always present, in order.
MEASUREMENT_COLUMNS = (
    "label",
    "centroid_y",
    "centroid_x",
    "area",
    "perimeter",
    "equivalent_diameter",
    "eccentricity",
    "solidity",
)
_INTENSITY_COLUMNS = ("mean_intensity", "max_intensity")

# What skimage.measure.regionprops_table is asked for, and its column names -> ours.
_SHAPE_PROPERTIES = (
    "label",
    "centroid",
    "area",
    "perimeter",
    "equivalent_diameter_area",
    "eccentricity",
    "solidity",
)
_INTENSITY_PROPERTIES = ("intensity_mean", "intensity_max")
_COLUMN_NAMES = {
    "centroid-0": "centroid_y",
    "centroid-1": "centroid_x",
    "equivalent_diameter_area": "equivalent_diameter",
    "intensity_mean": "mean_intensity",
    "intensity_max": "max_intensity",
}


def measure_nuclei(
    labels: np.ndarray,
    intensity_image: np.ndarray | None = None,
    pixel_size: float | None = None,
) -> pd.DataFrame:
    """Measure every nucleus of a label image (one row per nucleus).

    Uses ``skimage.measure.regionprops_table``.  Columns: ``label``, ``centroid_y``,
    ``centroid_x`` (pixels), ``area`` (pixels), ``perimeter`` (pixels),
    ``equivalent_diameter`` (diameter of the disc of the same area, pixels),
    ``eccentricity``, ``solidity``; with ``intensity_image`` also ``mean_intensity`` and
    ``max_intensity``; with ``pixel_size`` also ``area_um2`` and ``equivalent_diameter_um``.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Label image, 0 = background.
    intensity_image : ndarray, shape (H, W) or (H, W, C), optional
        Image whose greyscale (mean over the channels, as float) is measured.
    pixel_size : float, optional
        Micrometres per pixel.

    Returns
    -------
    pandas.DataFrame
        One row per nucleus, sorted by label; no rows (same columns) without nuclei.

    Examples
    --------
    >>> labels = np.zeros((10, 10), dtype=np.int32)
    >>> labels[2:4, 3:8] = 1
    >>> table = measure_nuclei(labels, intensity_image=labels * 2.0, pixel_size=0.5)
    >>> table[["label", "centroid_y", "centroid_x", "area", "mean_intensity", "area_um2"]]
       label  centroid_y  centroid_x  area  mean_intensity  area_um2
    0      1         2.5         5.0  10.0             2.0       2.5
    """
    check_label_image(labels)
    properties = list(_SHAPE_PROPERTIES)
    columns = list(MEASUREMENT_COLUMNS)
    intensity = None
    if intensity_image is not None:
        check_array(intensity_image, "intensity_image")
        check_same_shape(intensity_image, "intensity_image", labels.shape)
        check_finite(intensity_image, "intensity_image")
        intensity = grey(intensity_image, np.float64, "intensity_image")
        properties += _INTENSITY_PROPERTIES
        columns += _INTENSITY_COLUMNS
    if pixel_size is not None:
        check_positive(pixel_size, "pixel_size")

    measured = regionprops_table(labels, intensity_image=intensity, properties=properties)
    table = pd.DataFrame(measured).rename(columns=_COLUMN_NAMES)[columns]
    table["label"] = table["label"].astype(np.int64)
    if pixel_size is not None:
        table["area_um2"] = table["area"] * float(pixel_size) ** 2
        table["equivalent_diameter_um"] = table["equivalent_diameter"] * float(pixel_size)
    return table


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
