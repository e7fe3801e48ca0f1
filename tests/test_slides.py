"""Whole slides: reading tile by tile, global normalisation, the seam test, outputs, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from conftest import make_nuclei

from nuclei_core import slides
from nuclei_core.cli import main
from nuclei_core.errors import ImageReadError
from nuclei_core.preprocess import to_model_input
from nuclei_core.segment import SegmentOptions, segment_image
from nuclei_core.slides import (
    Normalisation,
    is_large_image,
    model_input,
    open_slide,
    segment_slide,
    slide_normalisation,
)
from nuclei_core.stitch import open_labels

SEAM_IMAGE = 1024
SEAM_TILE = 256


@pytest.fixture(scope="module")
def crowded():
    """A 1024 x 1024 image with about 900 synthetic nuclei (some touching) and its labels."""
    return make_nuclei(
        (SEAM_IMAGE, SEAM_IMAGE), n_nuclei=900, radius=(6, 10), n_touching_pairs=60, seed=3
    )


def _write_tiled(path, image, tile=(128, 128), **options):
    tifffile.imwrite(path, image, bigtiff=True, tile=tile, **options)
    return path


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
    source = _write_tiled(tmp_path / "crowded.tif", image)
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


def test_the_reader_decodes_only_the_tiles_a_region_needs(tmp_path, monkeypatch):
    image = np.arange(1024 * 1024, dtype=np.uint32).reshape(1024, 1024).astype(np.uint16)
    source = _write_tiled(tmp_path / "big.tif", image, compression="zlib")
    with tifffile.TiffFile(source) as tiff:
        offsets = tiff.pages[0].dataoffsets  # tiles row by row, 8 x 8 of 128 pixels
    read = []
    original = tifffile.FileCache.read

    def recording(self, filehandle, offset, bytecount, *args, **kwargs):
        read.append(offset)
        return original(self, filehandle, offset, bytecount, *args, **kwargs)

    monkeypatch.setattr(tifffile.FileCache, "read", recording)
    with open_slide(source) as slide:
        region = slide.read(200, 300, 300, 420)
    np.testing.assert_array_equal(region, image[200:300, 300:420])
    wanted = {offsets[row * 8 + column] for row in (1, 2) for column in (2, 3)}
    assert set(read) == wanted


def test_a_pyramid_is_read_at_level_0_and_normalised_from_a_smaller_level(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (2560, 2048), dtype=np.uint8)
    smaller = image[::2, ::2] // 2  # a darker level 1 tells which level was sampled
    source = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(source, bigtiff=True) as writer:
        writer.write(image, tile=(256, 256), subifds=1, metadata={"axes": "YX"})
        writer.write(smaller, tile=(256, 256), subfiletype=1)
    with open_slide(source) as slide:
        assert slide.shape == (2560, 2048) and slide.levels == [(2560, 2048), (1280, 1024)]
        assert not slide.colour
        np.testing.assert_array_equal(slide.read(300, 0, 364, 70), image[300:364, :70])
        limits = slide_normalisation(slide)
    assert limits.high == pytest.approx(np.percentile(smaller.astype(np.float32), 99.8))


def test_global_normalisation_equals_the_whole_image_one_for_small_images(crowded, tmp_path):
    image, _ = crowded
    inverted = 255 - image  # a bright background is inverted
    source = _write_tiled(tmp_path / "bright.tif", inverted)
    with open_slide(source) as slide:
        limits = slide_normalisation(slide)
    assert limits.invert
    np.testing.assert_allclose(model_input(inverted, limits), to_model_input(inverted), atol=1e-6)
    # One tile of the slide is scaled as the whole image is, not by its own percentiles.
    part = inverted[:100, :100]
    expected = to_model_input(inverted)[:100, :100]
    np.testing.assert_allclose(model_input(part, limits), expected, atol=1e-6)


def test_uncompressed_strips_are_read_through_a_memory_map(tmp_path, monkeypatch):
    image = np.random.default_rng(2).integers(0, 65535, (900, 700), dtype=np.uint16)
    source = tmp_path / "plain.tif"
    tifffile.imwrite(source, image, byteorder=">", bigtiff=True)  # contiguous, big-endian
    monkeypatch.setattr(slides, "LARGEST_CHUNK", 1000)  # the one strip is far larger
    with open_slide(source) as slide:
        region = slide.read(100, 200, 300, 260)
    np.testing.assert_array_equal(region, image[100:300, 200:260])
    assert region.dtype.isnative


def test_compressed_strips_too_large_to_read_in_parts_are_refused(tmp_path, monkeypatch):
    source = tmp_path / "strip.tif"
    tifffile.imwrite(source, np.zeros((300, 200), np.uint8), compression="zlib", rowsperstrip=300)
    monkeypatch.setattr(slides, "LARGEST_CHUNK", 300 * 200 - 1)
    with pytest.raises(ImageReadError, match=r"strip\.tif: stored in strips of 300 x 200 pixels"):
        open_slide(source)


def test_rgb_slides_are_read_as_colour(tmp_path):
    rgb = np.zeros((300, 200, 3), np.uint8)
    rgb[..., 0] = 200
    source = _write_tiled(tmp_path / "he.tif", rgb, tile=(64, 64), photometric="rgb")
    with open_slide(source) as slide:
        assert slide.colour and slide.read(10, 10, 12, 13).shape == (2, 3, 3)


def test_outputs_are_readable_and_the_csv_has_one_row_per_nucleus(trained_model, tmp_path):
    image, _ = make_nuclei((600, 700), n_nuclei=200, radius=(6, 10), seed=5)
    source = _write_tiled(
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
    source = _write_tiled(tmp_path / "wide.tif", np.zeros((700, 1300), np.uint8))
    regions = []
    original = slides.SlideReader.read

    def recording(self, top, left, bottom, right, level=0):
        regions.append((bottom - top) * (right - left))
        return original(self, top, left, bottom, right, level)

    monkeypatch.setattr(slides.SlideReader, "read", recording)
    segment_slide(tiny_model, source, tmp_path, SegmentOptions(tile_size=256), margin=64)
    windows = regions[1:]  # the first read is the normalisation sample (the whole small image)
    assert len(windows) == 3 * 6 and max(windows) <= (256 + 2 * 64) ** 2


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a TIFF file"),
        (b"II*\x00" + b"\x07" * 40, "truncated or corrupt TIFF"),
        (b"", "not a TIFF file"),
    ],
)
def test_a_file_that_is_not_a_readable_tiff_is_named_in_the_error(tmp_path, content, problem):
    source = tmp_path / "scan.tif"
    source.write_bytes(content)
    with pytest.raises(ImageReadError, match=rf"scan\.tif: {problem}"):
        open_slide(source)


def test_an_uncompressed_file_shorter_than_its_header_is_refused_on_opening(tmp_path):
    source = tmp_path / "cut.tif"
    tifffile.imwrite(source, np.zeros((512, 512), np.uint8))  # one uncompressed strip
    data = source.read_bytes()
    source.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.tif: the file is shorter than its header"):
        open_slide(source)


def test_a_damaged_tile_is_named_with_the_file_and_the_region(tmp_path):
    image = (np.random.default_rng(0).random((512, 512)) * 255).astype(np.uint8)
    source = _write_tiled(tmp_path / "damaged.tif", image, compression="zlib")
    with tifffile.TiffFile(source) as tiff:
        offset = tiff.pages[0].dataoffsets[5]  # rows 128-256, columns 128-256
    data = bytearray(source.read_bytes())
    data[offset : offset + 64] = b"\xff" * 64
    source.write_bytes(bytes(data))
    with open_slide(source) as slide:
        np.testing.assert_array_equal(slide.read(0, 0, 128, 512), image[:128])  # intact
        with pytest.raises(ImageReadError, match=r"damaged\.tif: cannot read rows 130-140"):
            slide.read(130, 130, 140, 140)


def test_a_stack_of_channels_is_refused_by_name(tmp_path):
    source = tmp_path / "channels.tif"
    tifffile.imwrite(source, np.zeros((2, 64, 64), np.uint8), metadata={"axes": "CYX"})
    with pytest.raises(ImageReadError, match=r"channels\.tif: .*axes CYX"):
        open_slide(source)


def test_only_tiffs_over_the_limit_are_large(tmp_path, write_png):
    tiff = _write_tiled(tmp_path / "a.tif", np.zeros((300, 300), np.uint8))
    png = write_png(tmp_path / "a.png", np.zeros((300, 300), np.uint8))
    assert is_large_image(tiff, limit=300 * 300 - 1)
    assert not is_large_image(tiff, limit=300 * 300)
    assert not is_large_image(png, limit=10)
    assert not is_large_image(tmp_path / "missing.tif", limit=10)


def test_model_input_of_a_flat_slide_is_zero():
    assert model_input(np.full((4, 4), 9, np.uint8), Normalisation(9.0, 9.0, False)).max() == 0


def test_cli_segments_large_tiffs_as_slides(tiny_model_file, tmp_path, monkeypatch, capsys):
    (tmp_path / "in").mkdir()
    _write_tiled(tmp_path / "in" / "small.tif", np.zeros((200, 200), np.uint8))
    _write_tiled(tmp_path / "in" / "large.tif", np.zeros((300, 500), np.uint8))
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
    large = _write_tiled(tmp_path / "large.tif", np.zeros((300, 500), np.uint8))
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
    from nuclei_core.model import ModelConfig, build_unet

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
    source = _write_tiled(tmp_path / "in" / "scan.tif", np.zeros((300, 500), np.uint8))
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
    source = _write_tiled(tmp_path / "scan.tif", image)
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
