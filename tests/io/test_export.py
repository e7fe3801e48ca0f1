"""Tests of nuclei_core.io.export: PNG encoding and 16-bit label images."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import tifffile

from nuclei_core.errors import InputError
from nuclei_core.io import export, imread

# ============================================================================== writing


def test_encode_png_round_trip_16bit_labels(synthetic_sample):
    _, labels = synthetic_sample
    encoded = export.encode_png(export.labels_to_uint16(labels * 1000))
    read = imread.read_image(encoded)
    assert read.dtype == np.uint16
    np.testing.assert_array_equal(read, labels * 1000)
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(imread.read_image(export.encode_png(rgb)), rgb)  # not BGR
    with pytest.raises(InputError, match="70000"):
        export.labels_to_uint16(np.array([[70000]]))


# ============================================================================== other tools


def rasterised(polygon_xy: np.ndarray, shape) -> np.ndarray:
    """Pixels whose centre is inside a polygon given in (x, y) pixel-corner coordinates."""
    from skimage.draw import polygon2mask

    return polygon2mask(shape, np.asarray(polygon_xy)[:, ::-1] - 0.5)


def iou(a, b) -> float:
    return (a & b).sum() / (a | b).sum()


@pytest.fixture
def touching_labels():
    from synthetic import make_nuclei

    labels = make_nuclei((96, 96), n_nuclei=12, radius=(3, 9), n_touching_pairs=3, seed=7)[1]
    labels[1, 1] = labels.max() + 1  # a one-pixel nucleus
    return labels


def test_roi_zip_opens_in_roifile_one_polygon_per_nucleus(touching_labels, tmp_path):
    roifile = pytest.importorskip("roifile")
    from nuclei_core.storage import atomic_write_bytes

    target = tmp_path / "cells_rois.zip"
    atomic_write_bytes(target, export.roi_zip(touching_labels))
    rois = roifile.roiread(target)
    count = int(touching_labels.max())
    assert [roi.name for roi in rois] == [str(label) for label in range(1, count + 1)]
    for label, roi in enumerate(rois, start=1):
        assert roi.roitype == roifile.ROI_TYPE.POLYGON
        mask = rasterised(roi.coordinates(), touching_labels.shape)
        assert iou(mask, touching_labels == label) >= 0.95, label


def test_geojson_is_qupath_detections_with_valid_polygons_and_measurements(touching_labels):
    import json

    shapely = pytest.importorskip("shapely")
    from nuclei_core.segmentation.measure import measure_nuclei

    table = measure_nuclei(touching_labels, pixel_size=0.5)
    collection = json.loads(export.nuclei_geojson(touching_labels, table))
    assert collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert len(features) == int(touching_labels.max())
    rows, cols = np.mgrid[: touching_labels.shape[0], : touching_labels.shape[1]]
    for feature, row in zip(features, table.to_dict("records"), strict=True):
        properties = feature["properties"]
        assert properties["objectType"] == "detection"
        assert properties["name"] == str(row["label"])
        assert properties["measurements"]["area_um2"] == pytest.approx(row["area_um2"])
        polygon = shapely.geometry.shape(feature["geometry"])
        assert polygon.geom_type == "Polygon" and polygon.is_valid
        inside = shapely.contains_xy(polygon, cols + 0.5, rows + 0.5)
        assert iou(inside, touching_labels == row["label"]) >= 0.95
    assert json.loads(export.nuclei_geojson(np.zeros((4, 4), np.int32)))["features"] == []


@pytest.mark.parametrize("scale", [1, 20_000])
def test_label_tiff_records_the_pixel_size(touching_labels, scale):
    import io

    import tifffile

    from nuclei_core.io.metadata import pixel_size

    labels = touching_labels * scale
    data = export.labels_tiff(labels, pixel_size=0.325)
    with tifffile.TiffFile(io.BytesIO(data)) as tiff:
        numerator, denominator = tiff.pages[0].tags["XResolution"].value
        per_unit = numerator / denominator
        if scale == 1:  # 16-bit: ImageJ metadata in µm
            assert tiff.imagej_metadata["unit"] == "um"
            assert per_unit == pytest.approx(1 / 0.325, rel=1e-6)
        else:  # 32-bit: pixels per centimetre
            assert tiff.pages[0].tags["ResolutionUnit"].value == 3
            assert per_unit == pytest.approx(1e4 / 0.325, rel=1e-6)
        np.testing.assert_array_equal(tiff.asarray(), labels)
    assert pixel_size(data).um == pytest.approx(0.325, rel=1e-6)
    assert pixel_size(export.labels_tiff(labels)).um is None


def test_parse_formats():
    assert export.parse_formats("mask,labels,csv") == export.DEFAULT_FORMATS
    assert export.parse_formats(" ROI ,geojson,roi") == ("roi", "geojson")
    for text, message in [("", "no format"), ("csv,xlsx", "unknown format 'xlsx'")]:
        with pytest.raises(InputError, match=message):
            export.parse_formats(text)


def test_more_nuclei_than_a_16_bit_png_holds_leave_out_only_that_format():
    labels = np.zeros((300, 300), np.int32)
    labels[::3, ::3] = np.arange(1, 10_001).reshape(100, 100)
    labels[299, 299] = 70_000  # one id beyond 16 bits
    formats, notes = export.fitting_formats(labels, tuple(export.FORMATS))
    assert "labels" not in formats and len(formats) == len(export.FORMATS) - 1
    assert notes == [
        "Labels (16-bit PNG) hold at most 65535 nuclei, not 70000: use the label TIFF."
    ]
    table = pd.DataFrame({"label": np.unique(labels[labels > 0])})
    files = export.encode_outputs(labels, table, ("tiff", "mask"))
    assert tifffile.imread(io.BytesIO(files["tiff"])).max() == 70_000
    assert export.fitting_formats(labels[:50, :50], ("labels",)) == (["labels"], [])
