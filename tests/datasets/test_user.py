"""User datasets (``nuclei_core.datasets.user_names``, ``user_read``, ``user_write``): saving
corrected images, listing, removing, reading them back as a training dataset, names, atomic
replacement and thumbnails."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from support import assert_one_line_naming, sha256
from synthetic import make_nuclei

from nuclei_core import storage
from nuclei_core.datasets.folders import discover_dataset, load_sample
from nuclei_core.datasets.user_names import check_dataset_name, check_image_stem
from nuclei_core.datasets.user_read import dataset_images, list_user_datasets, thumbnail
from nuclei_core.datasets.user_write import (
    KEEP_REMOVED,
    MAX_NUCLEI,
    remove_training_image,
    restore_training_image,
    save_training_image,
)
from nuclei_core.errors import DatasetError, InputError, InputTypeError, StorageError
from nuclei_core.io.export import labels_png16
from nuclei_core.io.imread import read_image
from nuclei_core.locations import user_datasets_folder
from nuclei_core.training import TrainConfig, check_dataset


@pytest.fixture(autouse=True)
def data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEI_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def sample(seed: int = 0, size=(64, 64), n_nuclei: int = 5):
    return make_nuclei(size, n_nuclei=n_nuclei, seed=seed)


def visible_files(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) -> its SHA-256."""
    return {
        path.relative_to(folder).as_posix(): sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


# --------------------------------------------------------------------------- saving


def test_saving_writes_the_flat_layout_and_describes_the_image(data_folder):
    image, labels = sample()
    saved = save_training_image(
        "my cells", "tile 1.tif", image, labels, "fluorescence", source_model="models/a.keras"
    )
    folder = data_folder / "datasets" / "my_cells"
    assert user_datasets_folder() == data_folder / "datasets"
    assert saved.stem == "tile_1"
    assert saved.image_path == folder / "inputs" / "tile_1.png"
    assert saved.mask_path == folder / "masks" / "tile_1.png"
    assert saved.n_nuclei == int(labels.max()) == 5
    assert (saved.kind, saved.source_model, saved.original_name) == (
        "fluorescence",
        "models/a.keras",
        "tile 1.tif",
    )
    record = json.loads((folder / "dataset.json").read_text())
    entry = record["images"]["tile_1"]
    assert entry["kind"] == "fluorescence" and entry["source_model"] == "models/a.keras"
    assert entry["n_nuclei"] == 5 and entry["original_name"] == "tile 1.tif"
    assert entry["saved_at"].endswith("+00:00") and record["updated_at"].endswith("+00:00")
    assert dataset_images("my cells") == [saved]
    mask = read_image(saved.mask_path)
    assert mask.dtype == np.uint16
    assert np.array_equal(mask, labels)
    assert np.array_equal(read_image(saved.image_path), image)


def test_the_dataset_reader_and_training_see_the_same_images_and_labels(data_folder):
    originals = {}
    for index in range(6):
        image, labels = sample(seed=index)
        labels = np.where(labels > 0, labels * 7 + 1000, 0)  # ids with gaps are renumbered
        originals[f"img{index}"] = (image, labels)
        save_training_image("set", f"img{index}", image, labels, "fluorescence")
    rgb, rgb_labels = sample(seed=9)
    rgb = np.dstack([rgb, rgb // 2, 255 - rgb])
    originals["colour"] = (rgb, rgb_labels)
    save_training_image("set", "colour", rgb, rgb_labels, "stained")
    one = np.zeros((64, 64), np.int32)
    one[10:30, 10:30] = 4
    originals["single"] = (np.zeros((64, 64), np.uint8), one)
    save_training_image("set", "single", np.zeros((64, 64), np.uint8), one, "fluorescence")

    folder = data_folder / "datasets" / "set"
    dataset = discover_dataset(folder)
    assert dataset.layout == "flat" and not dataset.problems
    assert sorted(dataset.ids) == sorted(originals)
    for found in dataset.samples:
        image, labels = load_sample(found)
        original_image, original_labels = originals[found.id]
        assert np.array_equal(image, original_image)
        # The same partition of the pixels into nuclei, numbered 1..n.
        pairs = {(a, b) for a, b in zip(labels.ravel(), original_labels.ravel(), strict=True)}
        assert len(pairs) == len(np.unique(original_labels)) == int(labels.max()) + 1
    split = check_dataset(TrainConfig(data=str(folder), out="run", batch_size=2, crop=32))
    assert len(split.train) + len(split.val) + split.n_test == len(originals)


def test_other_image_types_are_saved_as_8_bit(data_folder):
    image, labels = sample()
    wide = image.astype(np.uint16) * 200 + 7
    saved = save_training_image("set", "wide", wide, labels, "fluorescence")
    stored = read_image(saved.image_path)
    assert stored.dtype == np.uint8 and stored.shape == image.shape
    assert np.corrcoef(stored.ravel(), image.ravel())[0, 1] > 0.99
    mask = save_training_image("set", "bool", labels > 0, labels, "fluorescence")
    assert set(np.unique(read_image(mask.image_path)).tolist()) == {0, 255}


def test_saving_the_same_name_again_replaces_only_that_image(data_folder):
    first_image, first_labels = sample(seed=1)
    save_training_image("set", "a.png", first_image, first_labels, "fluorescence")
    save_training_image("set", "b", *sample(seed=2), "fluorescence", source_model="m.keras")
    folder = data_folder / "datasets" / "set"
    before = visible_files(folder)
    record_before = json.loads((folder / "dataset.json").read_text())

    new_image, new_labels = sample(seed=3, size=(48, 80), n_nuclei=3)
    replaced = save_training_image("set", "a", new_image, new_labels, "brightfield", "m2.keras")
    after = visible_files(folder)
    assert set(after) == set(before)  # no new file, no temporary file left
    for path in ("inputs/b.png", "masks/b.png"):
        assert after[path] == before[path]
    assert after["inputs/a.png"] != before["inputs/a.png"]
    assert np.array_equal(read_image(replaced.mask_path), new_labels)
    assert np.array_equal(read_image(replaced.image_path), new_image)
    record = json.loads((folder / "dataset.json").read_text())
    assert record["images"]["b"] == record_before["images"]["b"]
    assert record["images"]["a"]["kind"] == "brightfield"
    assert record["images"]["a"]["n_nuclei"] == 3
    assert [found.stem for found in dataset_images("set")] == ["a", "b"]


@pytest.mark.parametrize("failing", ["inputs", "masks", "dataset.json"])
def test_a_failed_save_leaves_the_dataset_as_it_was(data_folder, monkeypatch, failing):
    image, labels = sample(seed=1)
    save_training_image("set", "a", image, labels, "fluorescence")
    folder = data_folder / "datasets" / "set"
    before = visible_files(folder)
    real_replace = os.replace

    def replace(source, target):
        if Path(target).parent.name == failing or Path(target).name == failing:
            raise OSError(28, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(storage.os, "replace", replace)
    other_image, other_labels = sample(seed=5)
    with pytest.raises(StorageError, match="No space left"):
        save_training_image("set", "a", other_image, other_labels, "fluorescence")
    after = visible_files(folder)
    if failing == "dataset.json":  # the files are in place; only the description is old
        assert after["dataset.json"] == before["dataset.json"]
        assert np.array_equal(read_image(folder / "masks" / "a.png"), other_labels)
        assert set(after) == set(before)
    else:
        assert after == before
        with pytest.raises(StorageError):  # a new image: nothing of it stays
            save_training_image("set", "new", other_image, other_labels, "fluorescence")
        assert visible_files(folder) == before
    assert not [name for name in after if Path(name).name.startswith(".")]


def test_images_that_dataset_json_does_not_describe_are_still_listed(data_folder):
    image, labels = sample()
    save_training_image("set", "a", image, labels, "fluorescence")
    folder = data_folder / "datasets" / "set"
    (folder / "inputs" / "copied.png").write_bytes((folder / "inputs" / "a.png").read_bytes())
    (folder / "masks" / "copied.png").write_bytes(labels_png16(labels[:, ::-1]))
    (folder / "inputs" / "unpaired.png").write_bytes((folder / "inputs" / "a.png").read_bytes())
    found = {item.stem: item for item in dataset_images("set")}
    assert sorted(found) == ["a", "copied"]
    assert found["copied"].n_nuclei == 5 and found["copied"].kind is None
    assert found["copied"].saved_at.endswith("+00:00")


def test_saves_from_many_threads_are_all_described(data_folder):
    errors = []

    def save(index):
        try:
            save_training_image("set", f"img{index}", *sample(seed=index), "fluorescence")
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=save, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    record = json.loads((data_folder / "datasets" / "set" / "dataset.json").read_text())
    assert sorted(record["images"]) == [f"img{index}" for index in range(8)]


# --------------------------------------------------------------------------- refused


def test_labels_beyond_16_bits_are_renumbered_and_too_many_nuclei_refused():
    labels = np.zeros((8, 8), np.int64)
    labels[:2, :2], labels[5:, 5:] = 100_000, 3_000_000
    saved = save_training_image("set", "big ids", np.zeros((8, 8), np.uint8), labels, "stained")
    assert saved.n_nuclei == 2
    assert sorted(np.unique(read_image(saved.mask_path)).tolist()) == [0, 1, 2]

    many = np.arange(1, 300 * 300 + 1, dtype=np.int32).reshape(300, 300)
    with pytest.raises(InputError) as error:
        save_training_image("set", "many", np.zeros((300, 300), np.uint8), many, "stained")
    message = assert_one_line_naming(error, "labels")
    assert "90000 nuclei" in message and str(MAX_NUCLEI) in message
    assert not (user_datasets_folder() / "set" / "inputs" / "many.png").exists()


@pytest.mark.parametrize(
    ("image", "labels", "kind", "error_type", "named"),
    [
        (np.zeros((8, 8)), np.zeros((8, 8), np.int32), "stained", InputError, "no nucleus"),
        (np.zeros((8, 9)), np.eye(8, dtype=np.int32), "stained", InputError, "labels has shape"),
        (np.zeros((8, 8)), np.eye(8), "stained", InputTypeError, "integer dtype"),
        (np.zeros((8, 8)), np.eye(8, dtype=np.int32), "tissue", InputError, "kind"),
        (np.zeros((8, 8, 4)), np.eye(8, dtype=np.int32), "stained", InputError, "image"),
    ],
)
def test_unusable_input_is_refused_before_anything_is_written(
    image, labels, kind, error_type, named, data_folder
):
    with pytest.raises(error_type) as error:
        save_training_image("set", "a", image, labels, kind)
    assert_one_line_naming(error, named)
    assert not (data_folder / "datasets" / "set").exists()


def test_names_are_made_safe_or_refused_naming_the_value():
    assert check_dataset_name("  HE tiles\t2 ") == "HE_tiles_2"
    assert check_dataset_name("v1.2-final_x") == "v1.2-final_x"
    assert check_image_stem("tile 3.TIFF") == "tile_3"
    assert check_image_stem("scan.v2") == "scan.v2"
    for bad, shown in [("H&E", "'&'"), ("../up", "'/'"), ("a/b", "'/'"), ("été", "'é'")]:
        with pytest.raises(InputError) as error:
            check_dataset_name(bad)
        message = assert_one_line_naming(error, repr(bad))
        assert shown in message and message.startswith("dataset:")
    for bad in (".hidden", "x" * 101, "   "):
        with pytest.raises(InputError):
            check_dataset_name(bad)
    with pytest.raises(InputTypeError):
        check_dataset_name(3)
    for bad in ("cells_mask.png", "cells_labels", "cells_GT.tif"):
        with pytest.raises(InputError) as error:
            check_image_stem(bad)
        assert_one_line_naming(error, "as masks do")
    with pytest.raises(InputError) as error:
        save_training_image("set", "a:b.png", np.zeros((4, 4)), np.eye(4, dtype=int), "stained")
    assert_one_line_naming(error, "'a:b'")


# --------------------------------------------------------------------------- listing, removing


def test_datasets_are_listed_by_name_with_their_image_counts(data_folder):
    assert list_user_datasets() == []
    save_training_image("zeta", "a", *sample(seed=1), "fluorescence")
    save_training_image("alpha", "a", *sample(seed=2), "fluorescence")
    save_training_image("alpha", "b", *sample(seed=3), "fluorescence")
    (data_folder / "datasets" / ".trash").mkdir()
    (data_folder / "datasets" / "notes.txt").write_text("not a dataset")
    found = list_user_datasets()
    assert [(item.name, item.n_images) for item in found] == [("alpha", 2), ("zeta", 1)]
    assert found[0].folder == data_folder / "datasets" / "alpha"
    assert found[0].updated_at.endswith("+00:00")


def test_removing_an_image_deletes_its_files_and_nothing_else(data_folder):
    save_training_image("set", "a", *sample(seed=1), "fluorescence")
    save_training_image("set", "b", *sample(seed=2), "fluorescence")
    folder = data_folder / "datasets" / "set"
    kept = {path: sha256(folder / path) for path in ("inputs/b.png", "masks/b.png")}
    remove_training_image("set", "a")
    assert not (folder / "inputs" / "a.png").exists() and not (folder / "masks" / "a.png").exists()
    assert {path: sha256(folder / path) for path in kept} == kept
    assert [item.stem for item in dataset_images("set")] == ["b"]
    assert list(json.loads((folder / "dataset.json").read_text())["images"]) == ["b"]
    with pytest.raises(DatasetError) as error:
        remove_training_image("set", "a")
    assert_one_line_naming(error, "holds no image 'a'")
    remove_training_image("set", "b")
    assert [(item.name, item.n_images) for item in list_user_datasets()] == [("set", 0)]


def test_a_removed_image_is_restored_exactly_and_training_never_sees_it_meanwhile(data_folder):
    save_training_image("set", "a", *sample(seed=1), "stained", "models/x.keras")
    save_training_image("set", "b", *sample(seed=2), "fluorescence")
    folder = data_folder / "datasets" / "set"
    before = visible_files(folder)
    described = dataset_images("set")
    remove_training_image("set", "a")
    found = discover_dataset(folder)
    assert [item.id for item in found.samples] == ["b"]  # .removed/ is not a dataset part
    restored = restore_training_image("set", "a")
    assert restored == described[0] and dataset_images("set") == described
    after = visible_files(folder)
    assert after.pop("dataset.json") and before.pop("dataset.json")  # updated_at moved on
    assert after == before  # the same image and mask files, nothing left in .removed/
    with pytest.raises(DatasetError) as error:
        restore_training_image("set", "a")  # nothing removed any more
    assert_one_line_naming(error, "has no removed image 'a'")


def test_undo_never_replaces_an_image_saved_since_under_the_same_name(data_folder):
    save_training_image("set", "a", *sample(seed=1), "fluorescence")
    remove_training_image("set", "a")
    newer = save_training_image("set", "a", *sample(seed=3), "stained")
    kept = sha256(newer.mask_path)
    with pytest.raises(DatasetError) as error:
        restore_training_image("set", "a")
    assert_one_line_naming(error, "saved since it was removed")
    assert sha256(newer.mask_path) == kept and dataset_images("set")[0].kind == "stained"


def test_only_the_images_removed_last_are_kept_for_an_undo(data_folder):
    count = KEEP_REMOVED + 2
    labels = np.zeros((16, 16), np.int32)
    labels[4:10, 4:10] = 1
    for index in range(count):
        save_training_image("set", f"i{index}", labels.astype(np.uint8), labels, "fluorescence")
    for index in range(count):
        remove_training_image("set", f"i{index}")
    aside = data_folder / "datasets" / "set" / ".removed"
    assert len(list(aside.glob("*.png"))) == 2 * KEEP_REMOVED
    with pytest.raises(DatasetError):
        restore_training_image("set", "i0")
    assert restore_training_image("set", f"i{count - 1}").stem == f"i{count - 1}"


def test_a_dataset_that_does_not_exist_is_named_in_the_error():
    for call in (lambda: dataset_images("nothing"), lambda: remove_training_image("nothing", "a")):
        with pytest.raises(DatasetError) as error:
            call()
        assert_one_line_naming(error, "user dataset 'nothing' does not exist")


# --------------------------------------------------------------------------- thumbnails


def test_thumbnail_is_small_and_shows_the_outlines():
    image = np.full((320, 480), 90, np.uint8)
    image[0, 0] = 0
    labels = np.zeros((320, 480), np.int32)
    labels[40:200, 40:200] = 1
    labels[100:300, 300:460] = 2
    saved = save_training_image("set", "a", image, labels, "fluorescence")
    picture = thumbnail(saved.image_path, size=120)
    assert picture.shape == (80, 120, 3) and picture.dtype == np.uint8
    coloured = picture.max(axis=2) != picture.min(axis=2)  # grey image, colour outlines
    assert coloured[10:50, 10].any() and coloured[25:75, 75:115].any()
    assert not coloured[25, 25]  # inside a nucleus: no fill
    assert coloured.sum() < 0.25 * coloured.size

    saved.mask_path.unlink()
    plain = thumbnail(saved.image_path, size=120)
    assert plain.shape == (80, 120, 3)
    assert (plain.max(axis=2) == plain.min(axis=2)).all()
