"""Tests of nuclei_core.segmentation.measure: measurements of hand-made shapes and their CSV
file."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from support import disc

from nuclei_core.errors import InputError, InputTypeError, StorageError
from nuclei_core.segmentation.measure import (
    MEASUREMENT_COLUMNS,
    UM_COLUMNS,
    area_column,
    measure_nuclei,
    write_measurements_csv,
)

# --------------------------------------------------------------------------------------------
# measure_nuclei and CSV
# --------------------------------------------------------------------------------------------


def hand_made_labels():
    labels = np.zeros((40, 40), dtype=np.int32)
    labels[2:6, 3:9] = 1  # 4 x 6 rectangle
    labels[disc(labels.shape, (25, 20), 6)] = 2  # disc centred on a pixel
    return labels


def test_measurements_of_hand_made_shapes():
    labels = hand_made_labels()
    columns = np.tile(np.arange(40, dtype=np.float64), (40, 1))
    table = measure_nuclei(labels, intensity_image=columns)
    assert list(table.columns) == [*MEASUREMENT_COLUMNS, "mean_intensity", "max_intensity"]
    rectangle, circle = table.iloc[0], table.iloc[1]
    assert table["label"].tolist() == [1, 2]
    assert rectangle["area_px"] == 24
    assert (rectangle["centroid_y_px"], rectangle["centroid_x_px"]) == (3.5, 5.5)
    assert rectangle["mean_intensity"] == 5.5  # mean column index 3..8
    assert rectangle["max_intensity"] == 8.0
    assert rectangle["solidity"] == 1.0
    assert rectangle["equivalent_diameter_px"] == pytest.approx(np.sqrt(4 * 24 / np.pi))
    disc_area = disc(labels.shape, (25, 20), 6).sum()
    assert circle["area_px"] == disc_area
    assert (circle["centroid_y_px"], circle["centroid_x_px"]) == (25.0, 20.0)
    assert circle["mean_intensity"] == 20.0
    assert circle["eccentricity"] == pytest.approx(0.0, abs=1e-6)
    assert circle["perimeter_px"] == pytest.approx(2 * np.pi * 6, rel=0.15)
    assert area_column(table) == "area_px"


def test_measurements_use_the_mean_of_the_channels_and_pixel_size():
    labels = hand_made_labels()
    rgb = np.zeros((40, 40, 3), dtype=np.uint8)
    rgb[..., 0] = 30
    rgb[..., 1] = 60
    rgb[..., 2] = 90
    in_pixels = measure_nuclei(labels)
    table = measure_nuclei(labels, intensity_image=rgb, pixel_size=0.5)
    assert list(table.columns) == [*UM_COLUMNS, "mean_intensity", "max_intensity"]
    assert table["mean_intensity"].tolist() == [60.0, 60.0]
    np.testing.assert_allclose(table["area_um2"], in_pixels["area_px"] * 0.25)
    for name in ("perimeter", "equivalent_diameter", "centroid_y", "centroid_x"):
        np.testing.assert_allclose(table[f"{name}_um"], in_pixels[f"{name}_px"] * 0.5)
    np.testing.assert_array_equal(table["centroid_x_px"], in_pixels["centroid_x_px"])
    assert area_column(table) == "area_um2"
    assert "mean_intensity" not in in_pixels.columns
    assert not any(name.endswith(("_um", "_um2")) for name in in_pixels.columns)


def test_every_channel_gets_a_mean_intensity_column():
    labels = hand_made_labels()
    channels = np.stack([np.full((40, 40), 10.0), labels * 100.0, np.zeros((40, 40))], axis=-1)
    table = measure_nuclei(labels, intensity_image=channels[..., 1], channel_images=channels)
    assert table["mean_intensity_ch0"].tolist() == [10.0, 10.0]
    assert table["mean_intensity_ch1"].tolist() == [100.0, 200.0]
    assert table["mean_intensity_ch2"].tolist() == [0.0, 0.0]
    assert table["mean_intensity"].tolist() == [100.0, 200.0]
    with pytest.raises(InputError, match="channel_images"):
        measure_nuclei(labels, channel_images=channels[:5])


@pytest.mark.parametrize("with_extras", [False, True])
def test_empty_labels_give_an_empty_table_with_columns(with_extras):
    labels = np.zeros((10, 10), dtype=np.int32)
    if with_extras:
        table = measure_nuclei(labels, intensity_image=np.ones((10, 10)), pixel_size=1.0)
        expected = [*UM_COLUMNS, "mean_intensity", "max_intensity"]
    else:
        table = measure_nuclei(labels)
        expected = list(MEASUREMENT_COLUMNS)
    assert isinstance(table, pd.DataFrame)
    assert len(table) == 0
    assert list(table.columns) == expected


def test_csv_round_trip(tmp_path):
    table = measure_nuclei(hand_made_labels(), intensity_image=np.ones((40, 40)), pixel_size=0.3)
    target = tmp_path / "measurements.csv"
    target.write_text("old content")
    written = write_measurements_csv(table, target)
    assert written == target
    pd.testing.assert_frame_equal(pd.read_csv(target), table)
    assert os.listdir(tmp_path) == ["measurements.csv"]  # no temporary file left
    write_measurements_csv(table, str(tmp_path / "again.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "again.csv"), table)


def test_csv_write_failure_raises_storage_error_naming_the_path(tmp_path):
    table = pd.DataFrame({"label": [1]})
    missing = tmp_path / "no such folder" / "m.csv"
    with pytest.raises(StorageError, match="no such folder"):
        write_measurements_csv(table, missing)
    folder_in_the_way = tmp_path / "taken.csv"
    folder_in_the_way.mkdir()
    with pytest.raises(StorageError, match="taken.csv"):
        write_measurements_csv(table, folder_in_the_way)
    assert os.listdir(tmp_path) == ["taken.csv"]  # the temporary file was removed


def test_csv_rejects_wrong_types(tmp_path):
    with pytest.raises(InputTypeError, match="table"):
        write_measurements_csv({"label": [1]}, tmp_path / "m.csv")
    with pytest.raises(InputTypeError, match="path"):
        write_measurements_csv(pd.DataFrame(), 3)


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "argument"),
    [
        (lambda: measure_nuclei(np.zeros((4, 4))), InputTypeError, "labels"),
        (lambda: measure_nuclei(np.zeros((4, 4, 1), dtype=int)), InputError, "labels"),
        (lambda: measure_nuclei(np.full((4, 4), -1)), InputError, "labels"),
        (
            lambda: measure_nuclei(np.zeros((4, 4), dtype=int), intensity_image=np.zeros((4, 5))),
            InputError,
            "intensity_image",
        ),
        (
            lambda: measure_nuclei(np.zeros((4, 4), dtype=int), pixel_size=0),
            InputError,
            "pixel_size",
        ),
    ],
)
def test_invalid_inputs_raise_errors_naming_the_argument(call, error, argument):
    with pytest.raises(error, match=argument):
        call()
