"""Encoding results for download or disk, as the tools biologists use open them.

PNG mask, 16-bit label PNG, label TIFF with the pixel size (napari, Fiji), CSV, an
ImageJ/Fiji ROI set (:func:`roi_zip`, read by ``roifile`` and Fiji's ROI Manager) and
QuPath detections as GeoJSON (:func:`nuclei_geojson`).  Outlines come from
:func:`nuclei_core.io.outlines.label_outlines`.  :data:`FORMATS` names every format the
CLI and the app write and its file name.  Arrays in, bytes out; nothing here writes a
file (``storage`` does).
"""

from __future__ import annotations

import io
import json
import math
import zipfile

import numpy as np

from nuclei_core.checks import check_label_image, check_positive
from nuclei_core.errors import ImageReadError, InputError, InputTypeError

__all__ = [
    "DEFAULT_FORMATS",
    "FORMATS",
    "encode_outputs",
    "geojson_features",
    "encode_png",
    "labels_png16",
    "labels_tiff",
    "labels_to_uint16",
    "mask_png",
    "nuclei_geojson",
    "parse_formats",
    "roi_zip",
    "table_csv",
]

#: Output formats: name -> (file name suffix after the image's stem, MIME type).
FORMATS = {
    "mask": ("_mask.png", "image/png"),
    "labels": ("_labels.png", "image/png"),
    "csv": ("_nuclei.csv", "text/csv"),
    "roi": ("_rois.zip", "application/zip"),
    "geojson": ("_nuclei.geojson", "application/geo+json"),
    "tiff": ("_labels.tif", "image/tiff"),
}
DEFAULT_FORMATS = ("mask", "labels", "csv")


def parse_formats(text: str) -> tuple[str, ...]:
    """Format names of a comma list (``"mask,roi"``), checked against :data:`FORMATS`.

    Raises
    ------
    InputError
        An unknown or missing format.

    Examples
    --------
    >>> parse_formats("csv, roi")
    ('csv', 'roi')
    >>> parse_formats("csv,pdf")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: formats: unknown format 'pdf' (choose from mask, labels, csv, roi, geojson, tiff)
    """  # noqa: E501
    names = tuple(dict.fromkeys(part.strip().lower() for part in str(text).split(",")))
    names = tuple(name for name in names if name)
    if not names:
        raise InputError(f"formats: no format given (choose from {', '.join(FORMATS)})")
    for name in names:
        if name not in FORMATS:
            raise InputError(f"formats: unknown format {name!r} (choose from {', '.join(FORMATS)})")
    return names


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a ``uint8``/``uint16`` greyscale or ``uint8`` RGB array.

    Label images with up to 65,535 nuclei fit a 16-bit PNG.

    Examples
    --------
    >>> encode_png(np.zeros((2, 2), np.uint16))[:4]
    b'\\x89PNG'
    """
    import cv2

    array = np.asarray(array)
    if array.dtype not in (np.uint8, np.uint16):
        raise InputTypeError(f"PNG data must be uint8 or uint16, got {array.dtype}")
    if array.ndim == 3:
        array = array[..., ::-1]  # OpenCV writes BGR
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise ImageReadError(f"cannot encode an array of shape {array.shape} as PNG")
    return encoded.tobytes()


def labels_to_uint16(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    """Label image as ``uint16`` for a 16-bit PNG; refuses more than 65,535 nuclei.

    Examples
    --------
    >>> labels_to_uint16(np.array([[0, 2]], np.int32)).dtype
    dtype('uint16')
    """
    labels = np.asarray(labels)
    if labels.size and int(labels.max()) > np.iinfo(np.uint16).max:
        raise InputError(f"{name}: {int(labels.max())} nuclei do not fit a 16-bit image")
    return labels.astype(np.uint16)


def mask_png(labels: np.ndarray) -> bytes:
    """Binary mask PNG of a label image: nuclei 255, background 0.

    Examples
    --------
    >>> mask_png(np.array([[0, 3]]))[:4]
    b'\\x89PNG'
    """
    return encode_png(((np.asarray(labels) > 0) * 255).astype(np.uint8))


def labels_png16(labels: np.ndarray) -> bytes:
    """16-bit label PNG (0 = background, 1..N = nuclei); refuses more than 65,535 nuclei.

    Examples
    --------
    >>> labels_png16(np.array([[0, 3]]))[:4]
    b'\\x89PNG'
    """
    return encode_png(labels_to_uint16(labels))


def labels_tiff(labels: np.ndarray, pixel_size: float | None = None) -> bytes:
    """Label image as a compressed TIFF (16-bit, 32-bit above 65,535 nuclei).

    With ``pixel_size`` (µm per pixel) the file records it as Fiji and napari read it:
    ImageJ metadata (``unit`` µm, resolution in pixels per µm) for a 16-bit image, TIFF
    resolution tags in pixels per centimetre for a 32-bit one.

    Examples
    --------
    >>> import tifffile
    >>> labels = np.zeros((4, 4), np.int32); labels[1:3, 1:3] = 70_000
    >>> tifffile.imread(io.BytesIO(labels_tiff(labels))).dtype
    dtype('uint32')
    >>> with tifffile.TiffFile(io.BytesIO(labels_tiff(labels // 10, 0.25))) as tiff:
    ...     tiff.pages[0].tags["XResolution"].value, tiff.imagej_metadata["unit"]
    ((4, 1), 'um')
    """
    import tifffile

    labels = np.asarray(labels)
    buffer = io.BytesIO()
    small = not labels.size or labels.max() <= 65535
    array = labels.astype(np.uint16 if small else np.uint32)
    if pixel_size is None:
        tifffile.imwrite(buffer, array, compression="zlib")
        return buffer.getvalue()
    per_um = 1.0 / check_positive(pixel_size, "pixel_size")
    if small:
        tifffile.imwrite(
            buffer,
            array,
            imagej=True,
            resolution=(per_um, per_um),
            metadata={"unit": "um", "axes": "YX"},
            compression="zlib",
        )
    else:
        tifffile.imwrite(
            buffer,
            array,
            resolution=(per_um * 1e4, per_um * 1e4),
            resolutionunit="CENTIMETER",
            compression="zlib",
        )
    return buffer.getvalue()


def roi_zip(labels: np.ndarray) -> bytes:
    """ImageJ/Fiji ROI set: a zip of one polygon ROI per nucleus, named by its label.

    Entries are ``0001.roi``, ``0002.roi`` ... (the label, zero-padded) holding a
    sub-pixel polygon ROI named by the label; Fiji's ROI Manager opens the zip.

    Examples
    --------
    >>> import roifile
    >>> labels = np.zeros((8, 8), np.int32); labels[2:5, 2:6] = 7
    >>> with zipfile.ZipFile(io.BytesIO(roi_zip(labels))) as archive:
    ...     roi = roifile.ImagejRoi.frombytes(archive.read("0007.roi"))
    >>> archive.namelist(), roi.name, roi.coordinates().min(axis=0).tolist()
    (['0007.roi'], '7', [2.0, 2.0])
    """
    import roifile

    from nuclei_core.io import outlines  # scikit-image's contours: only for outline formats

    labels = check_label_image(labels)
    width = max(4, len(str(int(labels.max()) if labels.size else 0)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for label, outline in outlines.label_outlines(labels).items():
            roi = roifile.ImagejRoi.frompoints(outline[:-1], name=str(label))
            roi.roitype = roifile.ROI_TYPE.POLYGON
            archive.writestr(f"{label:0{width}d}.roi", roi.tobytes())
    return buffer.getvalue()


def _number(value):
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def geojson_features(labels: np.ndarray, table=None, offset=(0, 0)) -> list[dict]:
    """One QuPath detection (a GeoJSON Polygon feature) per nucleus of ``labels``.

    ``table`` (a :func:`nuclei_core.segmentation.measure.measure_nuclei` table, matched by
    ``label``) gives each feature its ``"measurements"``; ``offset`` ``(x, y)`` moves
    the outlines, e.g. from a tile to its slide.

    Examples
    --------
    >>> labels = np.zeros((8, 8), np.int32); labels[2:5, 2:6] = 1
    >>> feature = geojson_features(labels, offset=(100, 0))[0]
    >>> feature["properties"]["name"], min(x for x, _ in feature["geometry"]["coordinates"][0])
    ('1', 102.0)
    """
    from nuclei_core.io import outlines  # scikit-image's contours: only for outline formats

    labels = check_label_image(labels)
    rows = {}
    if table is not None:
        for record in table.to_dict("records"):
            rows[int(record["label"])] = {
                key: _number(value) for key, value in record.items() if key != "label"
            }
    features = []
    for label, outline in outlines.label_outlines(labels).items():
        properties = {"objectType": "detection", "name": str(label), "label": label}
        if label in rows:
            properties["measurements"] = rows[label]
        coordinates = (outline + np.asarray(offset, dtype=float)).round(3).tolist()
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [coordinates]},
                "properties": properties,
            }
        )
    return features


def nuclei_geojson(labels: np.ndarray, table=None) -> bytes:
    """QuPath detections: a GeoJSON FeatureCollection, one Polygon feature per nucleus.

    Each feature has ``"objectType": "detection"`` and ``"name"`` (the label) in its
    properties, as QuPath writes them, and the nucleus's row of ``table`` (a
    :func:`nuclei_core.segmentation.measure.measure_nuclei` table, matched by ``label``) as
    ``"measurements"`` (:func:`geojson_features`).  Coordinates are pixels, ``(0, 0)``
    the image's top-left corner.

    Examples
    --------
    >>> labels = np.zeros((8, 8), np.int32); labels[2:5, 2:6] = 1
    >>> feature = json.loads(nuclei_geojson(labels))["features"][0]
    >>> feature["geometry"]["type"], feature["properties"]["objectType"]
    ('Polygon', 'detection')
    """
    collection = {"type": "FeatureCollection", "features": geojson_features(labels, table)}
    return json.dumps(collection, separators=(",", ":")).encode("utf-8")


def table_csv(table) -> bytes:
    """A table (``pandas.DataFrame``) as UTF-8 CSV bytes, without the index.

    Examples
    --------
    >>> import pandas as pd
    >>> table_csv(pd.DataFrame({"label": [1], "area": [49]}))
    b'label,area\\n1,49\\n'
    """
    return table.to_csv(index=False).encode("utf-8")


def fitting_formats(labels, formats) -> tuple[list[str], list[str]]:
    """The formats of ``formats`` that can hold ``labels``, and a note for each left out:
    the 16-bit label PNG holds at most 65,535 nuclei (the label TIFF holds more).

    Examples
    --------
    >>> labels = np.zeros((2, 2), np.int32); labels[0, 0] = 70_000
    >>> fitting_formats(labels, ("labels", "tiff"))
    (['tiff'], ['Labels (16-bit PNG) hold at most 65535 nuclei, not 70000: use the label TIFF.'])
    """
    largest = int(np.max(labels)) if np.size(labels) else 0
    limit = int(np.iinfo(np.uint16).max)
    if "labels" not in formats or largest <= limit:
        return list(formats), []
    note = f"Labels (16-bit PNG) hold at most {limit} nuclei, not {largest}: use the label TIFF."
    return [name for name in formats if name != "labels"], [note]


def encode_outputs(labels, table, formats=DEFAULT_FORMATS, pixel_size=None) -> dict:
    """Bytes of each format asked for: ``{format: bytes}`` (file suffixes in :data:`FORMATS`).

    ``table`` is the :func:`nuclei_core.segmentation.measure.measure_nuclei` table (CSV and GeoJSON
    measurements); ``pixel_size`` (µm per pixel) goes into the label TIFF.

    Examples
    --------
    >>> import pandas as pd
    >>> labels = np.zeros((6, 6), np.int32); labels[1:4, 1:4] = 1
    >>> sorted(encode_outputs(labels, pd.DataFrame({"label": [1]}), ("csv", "roi")))
    ['csv', 'roi']
    """
    makers = {
        "mask": lambda: mask_png(labels),
        "labels": lambda: labels_png16(labels),
        "csv": lambda: table_csv(table),
        "roi": lambda: roi_zip(labels),
        "geojson": lambda: nuclei_geojson(labels, table),
        "tiff": lambda: labels_tiff(labels, pixel_size),
    }
    return {name: makers[name]() for name in parse_formats(",".join(formats))}
