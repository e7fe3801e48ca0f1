"""Tests of nuclei_core.datasets.folders: both layouts, unpaired and corrupt files, splits."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import assert_one_line_naming

from nuclei_core.datasets import folders as datasets
from nuclei_core.errors import DatasetError

# ============================================================================== datasets


def test_flat_dataset(flat_dataset):
    dataset = datasets.discover_dataset(flat_dataset)
    assert dataset.layout == "flat"
    assert dataset.ids == [f"img{index:02d}" for index in range(6)]
    assert dataset.problems == ()
    image, labels = datasets.load_sample(dataset.samples[0])
    assert image.shape == (64, 64) and labels.shape == (64, 64)
    assert labels.max() == 5


def test_flat_dataset_mask_suffix_and_images_folder(tmp_path, flat_dataset_factory):
    root = flat_dataset_factory(tmp_path / "data", n_images=3, mask_suffix="_mask")
    (root / "inputs").rename(root / "images")
    dataset = datasets.discover_dataset(root)
    assert dataset.ids == ["img00", "img01", "img02"]
    assert dataset.samples[0].label_path.name == "img00_mask.png"


def test_flat_images_and_flat_mask_follow_the_pairing_rules(tmp_path, flat_dataset_factory):
    root = flat_dataset_factory(tmp_path / "data", n_images=3, mask_suffix="_mask")
    (root / "inputs" / ".hidden.png").write_bytes(b"")
    (root / "inputs" / "notes.txt").write_text("not an image")
    images = datasets.flat_images(root / "inputs")
    assert [path.name for path in images] == ["img00.png", "img01.png", "img02.png"]
    dataset = datasets.discover_dataset(root)
    assert [datasets.flat_mask(path) for path in images] == [
        sample.label_path for sample in dataset.samples
    ]
    (root / "masks" / "img01_mask.png").unlink()
    assert datasets.flat_mask(root / "inputs" / "img01.png") is None
    assert datasets.flat_mask(tmp_path / "elsewhere" / "img00.png") is None  # no masks/ folder


def test_kaggle_dataset(kaggle_dataset):
    dataset = datasets.discover_dataset(kaggle_dataset)
    assert dataset.layout == "kaggle"
    assert len(dataset.samples) == 4
    sample = dataset.samples[0]
    assert sample.image_path.parent.name == "images"
    assert sample.image_path.stem == sample.id
    assert len(sample.mask_paths) == 5
    image, labels = datasets.load_sample(sample)
    assert image.shape == (64, 64, 3)  # RGBA, alpha dropped
    assert labels.max() == 5
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2, 3, 4, 5]


def test_flat_train_and_test_subfolders(tmp_path, flat_dataset_factory):
    flat_dataset_factory(tmp_path / "data" / "train", n_images=5, prefix="tr")
    flat_dataset_factory(tmp_path / "data" / "test", n_images=2, prefix="te", seed=50)
    dataset = datasets.discover_dataset(tmp_path / "data")
    assert dataset.layout == "flat"
    assert sorted(dataset.ids) == sorted(
        [f"train/tr{i:02d}" for i in range(5)] + ["test/te00", "test/te01"]
    )
    test = datasets.select_split(dataset, "test")
    assert [sample.id for sample in test] == ["test/te00", "test/te01"]
    train = datasets.select_split(dataset, "train", val_fraction=0.2)
    val = datasets.select_split(dataset, "val", val_fraction=0.2)
    assert all(sample.subset == "train" for sample in train + val)
    assert len(train) + len(val) == 5
    assert not {s.id for s in train} & {s.id for s in val}


def test_unpaired_files_are_listed(flat_dataset, kaggle_dataset, write_png):
    write_png(flat_dataset / "inputs" / "lonely.png", np.zeros((8, 8), np.uint8))
    write_png(flat_dataset / "masks" / "orphan_mask.png", np.zeros((8, 8), np.uint8))
    dataset = datasets.discover_dataset(flat_dataset)
    assert len(dataset.samples) == 6
    problems = " | ".join(dataset.problems)
    assert "lonely.png: image without a mask" in problems
    assert "orphan_mask.png: mask without an image" in problems

    write_png(kaggle_dataset / "nomasks" / "images" / "nomasks.png", np.zeros((8, 8), np.uint8))
    dataset = datasets.discover_dataset(kaggle_dataset)
    assert len(dataset.samples) == 4
    assert any("nomasks.png" in problem for problem in dataset.problems)


def test_dataset_without_pairs(tmp_path, write_png):
    with pytest.raises(DatasetError, match="does not exist"):
        datasets.discover_dataset(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DatasetError, match="not a folder"):
        datasets.discover_dataset(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no image/mask pairs"):
        datasets.discover_dataset(tmp_path / "empty")
    write_png(tmp_path / "unpaired" / "inputs" / "a.png", np.zeros((8, 8), np.uint8))
    write_png(tmp_path / "unpaired" / "masks" / "b.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DatasetError) as error:
        datasets.discover_dataset(tmp_path / "unpaired")
    assert "2 unpaired files" in assert_one_line_naming(error, str(tmp_path / "unpaired"))


def corrupt_one(dataset_root):
    """Replace one image and one mask of a flat dataset by junk; return their names."""
    (dataset_root / "inputs" / "img01.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    (dataset_root / "masks" / "img03.png").write_bytes(b"")
    return "img01.png", "img03.png"


def test_corrupt_files_are_skipped_by_load_training_data(flat_dataset):
    from nuclei_core.training.data import load_training_data

    bad_image, bad_mask = corrupt_one(flat_dataset)
    dataset = datasets.discover_dataset(flat_dataset)  # discovery does not decode
    assert len(dataset.samples) == 6
    arrays, problems = load_training_data(dataset.samples, crop=32)
    assert len(arrays) == 4
    assert len(problems) == 2
    assert bad_image in problems[0] and bad_mask in problems[1]
    model_input, targets, *_ = arrays[0]
    assert model_input.shape[-1] == 3 and targets.shape[-1] == 2


def test_corrupt_files_are_skipped_by_evaluate_samples(flat_dataset):
    from nuclei_core.evaluation.evaluate import evaluate_samples

    bad_image, bad_mask = corrupt_one(flat_dataset)
    samples = datasets.discover_dataset(flat_dataset).samples

    def threshold(image):  # a segmenter without a network
        from skimage.measure import label

        return label(image > 80).astype(np.int32)

    results, problems = evaluate_samples(threshold, samples)
    assert [result.id for result in results] == ["img00", "img02", "img04", "img05"]
    assert len(problems) == 2 and bad_image in problems[0] and bad_mask in problems[1]
    # Separated discs are found; the touching pair is one object: F1 high but below 1.
    assert all(0.5 < result.scores.as_dict()["f1"] < 1.0 for result in results)


def test_mask_of_another_size_is_a_problem_not_a_crash(flat_dataset, write_png):
    from nuclei_core.training.data import load_training_data

    write_png(flat_dataset / "masks" / "img02.png", np.eye(40, dtype=np.uint16) * 3)
    arrays, problems = load_training_data(datasets.discover_dataset(flat_dataset).samples, crop=32)
    assert len(arrays) == 5 and len(problems) == 1
    assert "img02.png" in problems[0] and "differs" in problems[0]


# ============================================================================== splits

THIRTY = [f"img{index:03d}" for index in range(30)]


def test_split_is_pinned_across_versions_and_machines():
    # sha256 of the id decides; changing the rule would move images into the test split.
    parts = datasets.split_ids(THIRTY)
    assert parts["test"] == ["img000", "img002", "img009", "img013", "img029"]
    assert parts["val"] == ["img020", "img027"]


def test_split_is_order_independent_and_deterministic():
    shuffled = list(THIRTY)
    random.Random(3).shuffle(shuffled)
    assert (
        datasets.split_ids(shuffled)
        == datasets.split_ids(THIRTY)
        == datasets.split_ids(tuple(THIRTY))
    )


def test_test_split_stable_when_val_fraction_changes():
    ids = [f"sample-{index}" for index in range(500)]
    tests = [
        datasets.split_ids(ids, val_fraction=v, test_fraction=0.15)["test"] for v in (0, 0.1, 0.4)
    ]
    assert tests[0] == tests[1] == tests[2]
    small = datasets.split_ids(ids, val_fraction=0.05)["val"]
    large = datasets.split_ids(ids, val_fraction=0.3)["val"]
    assert set(small) <= set(large)  # growing val takes from train, never from test


def test_split_fractions_are_honoured_roughly():
    ids = [f"{index:05d}" for index in range(3000)]
    parts = datasets.split_ids(ids, val_fraction=0.2, test_fraction=0.1)
    assert abs(len(parts["val"]) / 3000 - 0.2) < 0.03
    assert abs(len(parts["test"]) / 3000 - 0.1) < 0.03
    assert datasets.split_ids(ids, val_fraction=0, test_fraction=0)["train"] == sorted(ids)


@pytest.mark.parametrize("fractions", [(-0.1, 0.1), (0.5, 0.5), (0.1, 1.0)])
def test_split_refuses_bad_fractions(fractions):
    with pytest.raises(DatasetError):
        datasets.split_ids(THIRTY, *fractions)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=40))
def test_split_is_a_partition(ids):
    parts = datasets.split_ids(ids, val_fraction=0.25, test_fraction=0.25)
    joined = parts["train"] + parts["val"] + parts["test"]
    assert sorted(joined) == sorted(ids)
    assert datasets.split_ids(list(reversed(ids)), 0.25, 0.25) == parts
