"""Slides segmented tile by tile (``nuclei_core.slides.segment``): the seam test, the outputs,
one window in memory, the CLI's tiled path, resuming, QuPath detections."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from support import write_tiled
from synthetic import make_nuclei

from nuclei_core.cli import main
from nuclei_core.segmentation.options import SegmentOptions
from nuclei_core.segmentation.segment import segment_image
from nuclei_core.slides import reader as slides
from nuclei_core.slides.segment import segment_slide
from nuclei_core.slides.stitch import open_labels

SEAM_IMAGE = 1024  # the side of the crowded image (conftest.py)
SEAM_TILE = 256


def _best_iou(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """For every nucleus of ``reference``, its best IoU with a nucleus of ``candidate``."""
    pairs = reference.astype(np.int64) * (int(candidate.max()) + 1) + candidate
    size = (int(reference.max()) + 1, int(candidate.max()) + 1)
    joint = np.bincount(pairs.ravel(), minlength=size[0] * size[1]).reshape(size)
    area_ref, area_cand = joint.sum(axis=1), joint.sum(axis=0)
    union = area_ref[:, None] + area_cand[None, :] - joint
    iou = joint / np.maximum(union, 1)
    iou[:, 0] = 0
    return iou[1:].max(axis=1)


def test_tiled_segmentation_matches_the_whole_image_even_on_the_seams(
    trained_model, crowded, tmp_path
):
    image, _ = crowded
    source = write_tiled(tmp_path / "crowded.tif", image)
    whole = segment_image(trained_model, image, SegmentOptions(tile_size=SEAM_IMAGE)).labels
    found = segment_slide(
        trained_model, source, tmp_path / "out", SegmentOptions(tile_size=SEAM_TILE), margin=64
    )
    tiled = np.asarray(open_labels(found.outputs["labels"]))

    seams = np.arange(SEAM_TILE, SEAM_IMAGE, SEAM_TILE)
    on_seam = np.unique(
        np.concatenate(
            [
                whole[:, seams - 1][whole[:, seams] == whole[:, seams - 1]],
                whole[seams - 1, :][whole[seams, :] == whole[seams - 1, :]],
            ]
        )
    )
    on_seam = on_seam[on_seam > 0]
    assert whole.max() > 800 and on_seam.size > 60  # many nuclei sit on the seams
    best = _best_iou(whole, tiled)
    assert np.mean(best >= 0.95) >= 0.99
    assert np.mean(best[on_seam - 1] >= 0.95) >= 0.97
    assert abs(found.count - int(whole.max())) <= 0.01 * whole.max()
    # Never counted twice: every tiled nucleus matches a different whole-image one.
    assert _best_iou(tiled, whole).min() > 0.5
    assert found.count == int(tiled.max()) == np.unique(tiled).size - 1
    # The check sees a bad stitch: without margins the seam nuclei are cut in two.
    cut = segment_slide(
        trained_model, source, tmp_path / "cut", SegmentOptions(tile_size=SEAM_TILE), margin=0
    )
    cut_best = _best_iou(whole, np.asarray(open_labels(cut.outputs["labels"])))
    assert np.mean(cut_best[on_seam - 1] >= 0.95) < 0.5


def test_outputs_are_readable_and_the_csv_has_one_row_per_nucleus(trained_model, tmp_path):
    image, _ = make_nuclei((600, 700), n_nuclei=200, radius=(6, 10), seed=5)
    source = write_tiled(
        tmp_path / "scan.tif",
        image,
        resolution=(1 / 0.5e-4, 1 / 0.5e-4),
        resolutionunit="CENTIMETER",
    )
    seen = []
    found = segment_slide(
        trained_model,
        source,
        tmp_path / "out",
        SegmentOptions(tile_size=256),
        margin=64,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(done, 9) for done in range(1, 10)]
    assert found.pixel_size == pytest.approx(0.5)
    labels = np.asarray(open_labels(found.outputs["labels"]))
    table = pd.read_csv(found.outputs["csv"])
    assert found.count > 150
    assert len(table) == found.count == np.unique(labels).size - 1
    assert sorted(table["label"]) == list(range(1, found.count + 1))
    assert "area_um2" in table.columns
    # Positions are the slide's, not the tile's.
    row = table.iloc[len(table) // 2]
    rows, columns = np.nonzero(labels == row["label"])
    assert row["centroid_y_px"] == pytest.approx(rows.mean())
    assert row["centroid_x_um"] == pytest.approx(columns.mean() * 0.5)
    assert row["area_um2"] == pytest.approx(rows.size * 0.25)
    assert found.table()["label"].tolist() == table["label"].tolist()
    assert found.overview.dtype == np.uint8 and found.overview.shape == (600, 700, 3)
    assert found.outputs["overview"].stat().st_size > 0


def test_memory_holds_one_window_at_a_time(tiny_model, tmp_path, monkeypatch):
    source = write_tiled(tmp_path / "wide.tif", np.zeros((700, 1300), np.uint8))
    regions = []
    original = slides.SlideReader.read

    def recording(self, top, left, bottom, right, level=0):
        regions.append((bottom - top) * (right - left))
        return original(self, top, left, bottom, right, level)

    monkeypatch.setattr(slides.SlideReader, "read", recording)
    segment_slide(tiny_model, source, tmp_path, SegmentOptions(tile_size=256), margin=64)
    windows = regions[1:]  # the first read is the normalisation sample (the whole small image)
    assert len(windows) == 3 * 6 and max(windows) <= (256 + 2 * 64) ** 2


def test_cli_segments_large_tiffs_as_slides(tiny_model_file, tmp_path, monkeypatch, capsys):
    (tmp_path / "in").mkdir()
    write_tiled(tmp_path / "in" / "small.tif", np.zeros((200, 200), np.uint8))
    write_tiled(tmp_path / "in" / "large.tif", np.zeros((300, 500), np.uint8))
    monkeypatch.setattr(slides, "LARGE_IMAGE_PIXELS", 300 * 300)
    code = main(
        [
            "predict",
            str(tmp_path / "in"),
            "--out",
            str(tmp_path / "out"),
            "--model",
            str(tiny_model_file),
            "--tile-size",
            "128",
            "--backend",
            "tensorflow",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "large.tif: 0 nuclei (300 x 500 in 12 tiles" in printed
    names = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert "large_labels.ome.zarr" in names and "large_nuclei.csv" in names
    assert "small_labels.png" in names  # the small one takes the whole-image path
    assert open_labels(tmp_path / "out" / "large_labels.ome.zarr").shape == (300, 500)


def test_cli_names_a_bad_tile_size(tiny_model_file, tmp_path, monkeypatch, capsys):
    large = write_tiled(tmp_path / "large.tif", np.zeros((300, 500), np.uint8))
    monkeypatch.setattr(slides, "LARGE_IMAGE_PIXELS", 1000)
    code = main(
        [
            "predict",
            str(large),
            "--out",
            str(tmp_path / "out"),
            "--model",
            str(tiny_model_file),
            "--tile-size",
            "100",
        ]
    )
    assert code == 2  # a bad argument, as for every option
    error = capsys.readouterr().err
    assert "--tile-size must be a multiple of 32, at least 64; got 100" in error
    assert not (tmp_path / "out" / "large_nuclei.csv").exists()  # refused before any image


def test_an_expected_diameter_is_refused_on_the_tiled_path(tmp_path):
    from nuclei_core.errors import ConfigError
    from nuclei_core.network.model import ModelConfig, build_unet

    tifffile.imwrite(tmp_path / "scan.tif", np.zeros((100, 150), np.uint8), tile=(64, 64))
    model = build_unet(ModelConfig(depth=2, base_filters=4))
    options = SegmentOptions(tile_size=64, diameter=12.0)
    with pytest.raises(ConfigError, match="scan.tif: an expected nucleus diameter is not applied"):
        segment_slide(model, tmp_path / "scan.tif", tmp_path / "out", options, margin=32)
    assert not (tmp_path / "out").exists()
    # The CLI's default, an estimated diameter, segments a slide as it is.
    auto = SegmentOptions(tile_size=64, diameter="auto")
    found = segment_slide(model, tmp_path / "scan.tif", tmp_path / "auto", auto, margin=32)
    assert found.tiles == 6 and (tmp_path / "auto" / "scan_nuclei.csv").is_file()


def test_resume_skips_a_finished_slide_and_redoes_one_cut_off(
    tiny_model, tiny_model_file, tmp_path, capsys
):
    (tmp_path / "in").mkdir()
    source = write_tiled(tmp_path / "in" / "scan.tif", np.zeros((300, 500), np.uint8))
    out = tmp_path / "out"
    command = ["predict", str(source), "--out", str(out), "--model", str(tiny_model_file)]
    command += ["--tiled", "--tile-size", "128", "--backend", "tensorflow", "--resume"]
    command += ["--formats", "csv,geojson"]
    assert main(command) == 0
    assert "resume: 0 images finished before, 1 to do" in capsys.readouterr().out
    assert (out / "scan_nuclei.geojson").is_file()
    assert main(command) == 0
    assert "resume: 1 images finished before, 0 to do" in capsys.readouterr().out

    def cut_off(done, total):
        if done == 3:
            raise KeyboardInterrupt  # the job killed half way through the slide

    with pytest.raises(KeyboardInterrupt):
        segment_slide(tiny_model, source, out, SegmentOptions(tile_size=128), progress=cut_off)
    assert not (out / "scan_overview.png").exists()
    assert main(command) == 0
    assert "resume: 0 images finished before, 1 to do" in capsys.readouterr().out
    assert (out / "scan_overview.png").is_file()


def test_a_slide_streams_qupath_detections_that_match_its_labels_and_table(
    trained_model, make_sample, tmp_path
):
    from shapely.geometry import shape as geometry

    image, _ = make_sample((300, 400), n_nuclei=30, n_touching_pairs=3, seed=91)
    source = write_tiled(tmp_path / "scan.tif", image)
    found = segment_slide(
        trained_model, source, tmp_path / "out", SegmentOptions(tile_size=128), geojson=True
    )
    assert list(found.outputs) == ["labels", "csv", "geojson", "overview"]
    collection = json.loads(found.outputs["geojson"].read_text())
    features = collection["features"]
    assert collection["type"] == "FeatureCollection" and len(features) == found.count >= 20
    table = pd.read_csv(found.outputs["csv"]).set_index("label")
    labels = np.asarray(open_labels(found.outputs["labels"]))
    for feature in features:
        label = feature["properties"]["label"]
        polygon = geometry(feature["geometry"])
        assert polygon.is_valid and feature["properties"]["objectType"] == "detection"
        measured = feature["properties"]["measurements"]
        assert measured["centroid_x_px"] == pytest.approx(table.loc[label, "centroid_x_px"])
        rows, cols = np.nonzero(labels == label)  # the outline is around the slide's pixels
        assert polygon.centroid.x == pytest.approx(cols.mean() + 0.5, abs=1.0)
        assert polygon.centroid.y == pytest.approx(rows.mean() + 0.5, abs=1.0)
        assert polygon.area == pytest.approx(rows.size, rel=0.25)
    options = SegmentOptions(tile_size=128)
    without = segment_slide(trained_model, source, tmp_path / "plain", options)
    assert "geojson" not in without.outputs
    assert not list((tmp_path / "plain").glob("*.geojson"))
