"""Tests of nuclei_core.batch.images: segmenting many images, the summary, the combined CSV, the
zip."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from support import png_bytes, tiff_bytes

from nuclei_core.batch import archive as batch_archive
from nuclei_core.batch import images as batch
from nuclei_core.errors import DatasetError, InputError, InputTypeError, StorageError
from nuclei_core.io.imread import read_image
from nuclei_core.segmentation.options import SegmentOptions
from nuclei_core.segmentation.segment import segment_image

# An untrained network finds arbitrary nuclei; a low threshold and no minimum size make
# sure it finds some, which is all the bookkeeping below needs.
OPTIONS = SegmentOptions(threshold=0.05, min_size=0)


@pytest.fixture
def uploads(make_sample):
    """Three generated 64 x 64 PNGs and a broken file among them, as uploaded pairs."""
    images = [make_sample((64, 64), seed=seed)[0] for seed in range(3)]
    return [
        ("cells0.png", png_bytes(images[0])),
        ("broken.png", b"\x89PNG not really"),
        ("cells1.png", png_bytes(images[1])),
        ("cells2.png", png_bytes(images[2])),
    ]


@pytest.fixture
def items(trained_model, uploads):
    # The trained model: an untrained one's probabilities sit near 0.5, where the last
    # bits of a convolution (thread scheduling on a loaded machine) can move a nucleus.
    return list(batch.segment_batch(trained_model, uploads, OPTIONS))


def test_a_bad_file_fails_alone_with_one_line_naming_it(items):
    assert [(item.name, item.status) for item in items] == [
        ("cells0.png", "ok"),
        ("broken.png", "failed"),
        ("cells1.png", "ok"),
        ("cells2.png", "ok"),
    ]
    failed = items[1]
    assert failed.message.startswith("broken.png: ")
    assert "\n" not in failed.message
    assert failed.outputs() == {} and failed.thumbnail is None


def test_each_item_matches_segmenting_its_image_alone(trained_model, uploads, items):
    for (name, data), item in zip(uploads, items, strict=True):
        if not item.ok:
            continue
        image = read_image(data, name=name)
        alone = segment_image(trained_model, image, OPTIONS)
        assert item.count == alone.count > 0
        assert item.kind == "fluorescence"
        pd.testing.assert_frame_equal(item.table, alone.table)
        assert item.mean("area_px") == pytest.approx(alone.table["area_px"].mean())
        assert item.row()["area_unit"] == "px" and item.pixel_size is None
        assert item.thumbnail.dtype == np.uint8 and item.thumbnail.shape == (64, 64, 3)
        labels = read_image(item.files[f"{item.stem}_labels.png"])
        np.testing.assert_array_equal(labels, alone.labels)
        mask = read_image(item.files[f"{item.stem}_mask.png"])
        np.testing.assert_array_equal(mask > 0, alone.labels > 0)


def test_summary_has_one_row_per_image(items):
    summary = batch.summary_frame(items)
    assert list(summary.columns) == list(batch.SUMMARY_COLUMNS)
    assert summary["image"].tolist() == ["cells0.png", "broken.png", "cells1.png", "cells2.png"]
    assert summary["status"].tolist() == ["ok", "failed", "ok", "ok"]
    ok = summary[summary["status"] == "ok"]
    assert ok["count"].tolist() == [item.count for item in items if item.ok]
    assert ok["mean_area"].notna().all() and ok["mean_intensity"].notna().all()
    broken = summary.iloc[1]
    assert pd.isna(broken["count"]) and broken["message"] == items[1].message


def test_combined_table_has_one_row_per_nucleus_with_the_image_name(items):
    combined = batch.combined_table(items)
    assert combined.columns[0] == "image"
    assert len(combined) == sum(item.count for item in items if item.ok)
    counts = combined.groupby("image").size().to_dict()
    assert counts == {item.name: item.count for item in items if item.ok}
    first = items[0]
    rows = combined[combined["image"] == first.name].drop(columns="image")
    pd.testing.assert_frame_equal(rows.reset_index(drop=True), first.table)


def test_zip_holds_every_output_and_the_combined_csv(items, tmp_path):
    data = batch_archive.batch_zip(items)
    written = batch_archive.write_batch_zip(items, tmp_path / "batch.zip")
    archive = zipfile.ZipFile(io.BytesIO(data))
    on_disk = zipfile.ZipFile(written)
    assert on_disk.namelist() == archive.namelist()
    assert all(on_disk.read(name) == archive.read(name) for name in archive.namelist())
    expected = {"summary.csv", "nuclei.csv"}
    for stem in ("cells0", "cells1", "cells2"):
        expected |= {f"per_image/{stem}_{suffix}" for suffix in ("mask.png", "labels.png")}
        expected.add(f"per_image/{stem}_nuclei.csv")
    assert set(archive.namelist()) == expected
    combined = pd.read_csv(archive.open("nuclei.csv"))
    assert len(combined) == sum(item.count for item in items if item.ok)
    assert set(combined["image"]) == {"cells0.png", "cells1.png", "cells2.png"}
    summary = pd.read_csv(archive.open("summary.csv"))
    assert summary["status"].tolist() == ["ok", "failed", "ok", "ok"]
    for item in items[2:]:
        table = pd.read_csv(archive.open(f"per_image/{item.stem}_nuclei.csv"))
        assert len(table) == item.count
        labels = read_image(archive.read(f"per_image/{item.stem}_labels.png"))
        assert labels.dtype == np.uint16 and int(labels.max()) == item.count


def test_write_zip_into_a_missing_folder_raises_storage_error(items, tmp_path):
    with pytest.raises(StorageError):
        batch_archive.write_batch_zip(items, tmp_path / "missing" / "batch.zip")


def test_progress_is_called_after_each_image_with_an_eta(tiny_model, uploads):
    seen = []
    for item in batch.segment_batch(tiny_model, uploads, OPTIONS, progress=seen.append):
        assert seen[-1].name == item.name  # called before the item is yielded
    assert [(step.done, step.total) for step in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    elapsed = [step.elapsed for step in seen]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    assert seen[0].eta_seconds == pytest.approx(seen[0].elapsed * 3)
    assert seen[-1].eta_seconds == 0 and seen[-1].fraction == 1.0


def test_paths_and_a_folder(tiny_model, tmp_path, write_png, make_sample):
    folder = tmp_path / "images"
    write_png(folder / "b.png", make_sample((48, 48), seed=4)[0])
    write_png(folder / "a.png", make_sample((48, 48), seed=5)[0])
    (folder / "c.tif").write_bytes(b"II*\x00 truncated")
    (folder / "notes.txt").write_text("not an image")
    found = batch.folder_images(str(folder))
    assert [path.name for path in found] == ["a.png", "b.png", "c.tif"]
    statuses = [item.status for item in batch.segment_batch(tiny_model, found, OPTIONS)]
    assert statuses == ["ok", "ok", "failed"]


def test_an_unreadable_path_fails_alone(tiny_model, tmp_path, write_png, make_sample):
    good = write_png(tmp_path / "good.png", make_sample((48, 48), seed=6)[0])
    items = list(batch.segment_batch(tiny_model, [tmp_path / "gone.png", good], OPTIONS))
    assert [item.status for item in items] == ["failed", "ok"]
    assert items[0].message.startswith("gone.png: cannot read the file")


@pytest.mark.parametrize(
    ("text", "reason"),
    [("  ", "no folder given"), ("nowhere", "does not exist"), ("empty", "no PNG, JPEG or TIFF")],
)
def test_folder_problems_are_one_line(tmp_path, text, reason):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=reason) as error:
        batch.folder_images(text, base=tmp_path)
    assert "\n" not in str(error.value)


def test_same_stem_gets_unique_output_names(tiny_model, make_sample):
    data = png_bytes(make_sample((48, 48), seed=7)[0])
    uploads = [("cells.png", data), ("cells.tif", data), ("sub/cells.png", data)]
    items = list(batch.segment_batch(tiny_model, uploads, OPTIONS))
    assert [item.stem for item in items] == ["cells", "cells-2", "cells-3"]
    names = zipfile.ZipFile(io.BytesIO(batch_archive.batch_zip(items))).namelist()
    assert len(names) == len(set(names)) == 2 + 3 * 3


def test_a_bad_entry_is_refused_before_any_work(tiny_model):
    calls = []
    with pytest.raises(InputTypeError, match="images"):
        list(batch.segment_batch(tiny_model, [("a.png", b"x"), 42], progress=calls.append))
    assert calls == []


def test_no_segmented_image_gives_an_empty_combined_table():
    failed = batch.BatchItem("a.png", "a", status="failed", message="a.png: empty")
    combined = batch.combined_table([failed])
    assert combined.empty and combined.columns[0] == "image"


def test_sizes_in_micrometres_from_the_user_or_the_file(tiny_model, make_sample):
    image = make_sample((64, 64), seed=8)[0]
    per_cm = 10_000 / 0.5  # 0.5 µm per pixel, as TIFF resolution tags record it
    uploads = [
        ("plain.png", png_bytes(image)),
        ("scaled.tif", tiff_bytes(image, resolution=(per_cm, per_cm), resolutionunit="CENTIMETER")),
    ]
    from_files = list(batch.segment_batch(tiny_model, uploads, OPTIONS))
    assert [item.pixel_size for item in from_files] == [None, pytest.approx(0.5)]
    plain, scaled = (item.row() for item in from_files)
    assert (plain["area_unit"], scaled["area_unit"]) == ("px", "µm²")
    assert scaled["mean_area"] == pytest.approx(plain["mean_area"] * 0.25)
    combined = batch.combined_table(from_files)
    assert combined.loc[combined["image"] == "scaled.tif", "area_px"].isna().all()
    assert combined.loc[combined["image"] == "plain.png", "area_um2"].isna().all()

    given = list(batch.segment_batch(tiny_model, uploads, OPTIONS, pixel_size=2.0))
    assert [item.pixel_size for item in given] == [2.0, 2.0]
    assert given[0].row()["mean_area"] == pytest.approx(plain["mean_area"] * 4)
    with pytest.raises(InputError, match="pixel_size"):
        list(batch.segment_batch(tiny_model, uploads, OPTIONS, pixel_size=-1))
