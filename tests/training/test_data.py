"""Tests of nuclei_core.training.data: targets, the split of several datasets, sampling
weights, the augmented tf.data pipeline, the stain jitter and padding of small images."""

from __future__ import annotations

import numpy as np
from skimage.segmentation import find_boundaries

from nuclei_core.datasets.folders import discover_dataset, select_split
from nuclei_core.training import TrainConfig
from nuclei_core.training.data import (
    TrainingArray,
    check_dataset,
    load_training_data,
    make_targets,
    normalised_distance,
)
from nuclei_core.training.pipelines import _stain_jitter, training_dataset, validation_dataset

TINY = {"depth": 2, "base_filters": 4, "crop": 32, "batch_size": 4, "strategy": "none"}


# ============================================================================== data pipeline


def test_targets_mark_the_rim_between_touching_nuclei(synthetic_sample):
    _, labels = synthetic_sample
    targets = make_targets(labels)
    assert targets.shape == (64, 64, 2) and targets.dtype == np.float32
    np.testing.assert_array_equal(targets[..., 0], labels > 0)
    np.testing.assert_array_equal(targets[..., 1], find_boundaries(labels, mode="inner"))
    touching = (labels == 1) & find_boundaries(labels == 2, mode="outer")
    assert touching.any() and (targets[..., 1][touching] == 1).all()


def test_distance_target_peaks_at_one_in_every_nucleus(synthetic_sample):
    _, labels = synthetic_sample
    targets = make_targets(labels, distance=True)
    assert targets.shape == (64, 64, 3)
    np.testing.assert_array_equal(targets[..., :2], make_targets(labels))
    distance = targets[..., 2]
    assert (distance[labels == 0] == 0).all() and (distance[labels > 0] > 0).all()
    for index in range(1, labels.max() + 1):
        inside = distance[labels == index]
        assert inside.max() == 1.0
        rim = find_boundaries(labels == index, mode="inner") & (labels == index)
        assert distance[rim].max() < inside.max()  # the rim is lower than the centre


def test_distance_target_of_a_nucleus_cut_by_the_border_goes_on_beyond_it():
    labels = np.zeros((20, 20), np.int32)
    labels[:6, 5:15] = 1  # the lower half of a nucleus whose upper half is off the image
    distance = normalised_distance(labels)
    assert distance[0, 10] == 1.0 and distance[5, 10] < distance[0, 10]
    assert distance[0, 5] < distance[0, 9]  # its left and right edges are still edges


def test_pipelines_carry_the_distance_map_as_a_fraction(flat_dataset):
    samples = discover_dataset(flat_dataset).samples
    arrays, _ = load_training_data(samples, crop=32, distance=True)
    dataset, _ = training_dataset(arrays, crop=32, batch_size=3, seed=1)
    for _, targets in dataset.take(3).as_numpy_iterator():
        assert targets.shape == (3, 32, 32, 3)
        assert set(np.unique(targets[..., :2])) <= {0.0, 1.0}
        distance = targets[..., 2]
        assert distance.min() >= 0 and distance.max() <= 1
        assert ((distance > 0.05) & (distance < 0.95)).any()  # not thresholded to 0 / 1
    (_, val_targets), *_ = validation_dataset(arrays, multiple=4).as_numpy_iterator()
    assert val_targets.shape[-1] == 3


def test_training_pipeline_gives_augmented_crops(flat_dataset):
    samples = discover_dataset(flat_dataset).samples
    arrays, problems = load_training_data(samples, crop=32)
    assert problems == [] and len(arrays) == 6
    assert all(array.count == 4 for array in arrays)  # 64 x 64 images give 4 crops of 32
    assert not any(array.colour for array in arrays)  # greyscale: no stain jitter
    dataset, crops = training_dataset(arrays, crop=32, batch_size=3, seed=1)
    assert crops == 24
    batches = list(dataset.take(3).as_numpy_iterator())
    for images, targets in batches:
        assert images.shape == (3, 32, 32, 3) and targets.shape == (3, 32, 32, 2)
        assert images.min() >= 0 and images.max() <= 1
        assert set(np.unique(targets)) <= {0.0, 1.0}
        assert (targets[..., 1] <= targets[..., 0]).all()  # boundary lies on foreground
    assert not np.array_equal(batches[0][0], batches[1][0])


def test_several_datasets_are_split_each_on_its_own(tmp_path, flat_dataset_factory):
    big = flat_dataset_factory(tmp_path / "big", n_images=40, prefix="big")
    small = flat_dataset_factory(tmp_path / "small", n_images=13, prefix="small", seed=50)
    config = TrainConfig(data=[str(big), str(small)], out=str(tmp_path / "run"), **TINY)
    split = check_dataset(config)
    for folder in (big, small):
        dataset = discover_dataset(folder)
        pairs = zip(split.train, split.train_groups, strict=True)
        group = [sample for sample, name in pairs if name == str(folder)]
        assert group == select_split(dataset, "train")
        assert {s.id for s in group}.isdisjoint(s.id for s in select_split(dataset, "test"))
    tests = [len(select_split(discover_dataset(f), "test")) for f in (big, small)]
    assert split.n_test == sum(tests)
    assert len(split.val) == len(split.val_groups) and set(split.val_groups) == {
        str(big),
        str(small),
    }


def test_a_small_dataset_is_sampled_up_to_its_cap(tmp_path, flat_dataset_factory):
    big = discover_dataset(flat_dataset_factory(tmp_path / "big", n_images=30)).samples
    small = discover_dataset(flat_dataset_factory(tmp_path / "small", n_images=2)).samples
    groups = ["big"] * len(big) + ["small"] * len(small)
    arrays, _ = load_training_data([*big, *small], crop=32, groups=groups)
    counts = [array.count for array in arrays]
    assert counts[: len(big)] == [4] * len(big)  # 64 x 64 images: 4 crops of 32, weight 1
    assert counts[len(big) :] == [round(4 * np.sqrt(30 / 2))] * 2  # sqrt(15) = 3.9, under the cap 8
    alone, _ = load_training_data(small, crop=32)
    assert [array.count for array in alone] == [4, 4]


def test_stain_jitter_changes_colour_and_keeps_the_range():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    image = tf.constant(rng.uniform(0.0, 0.9, (32, 32, 3)).astype(np.float32))
    outputs = [_stain_jitter(image, _seeds(index, 5)).numpy() for index in range(4)]
    for output in outputs:
        assert output.shape == (32, 32, 3) and output.min() >= 0 and output.max() <= 1
        assert np.abs(output - image.numpy()).mean() < 0.25  # a jitter, not a new picture
    assert not np.allclose(outputs[0], outputs[1])
    again = _stain_jitter(image, _seeds(0, 5)).numpy()
    np.testing.assert_array_equal(again, outputs[0])  # stateless: the seed decides
    white = _stain_jitter(tf.zeros((8, 8, 3)), _seeds(1, 5)).numpy()
    assert white.max() < 0.15  # the bright (inverted: dark) background stays background


def _seeds(index: int, count: int):
    import tensorflow as tf

    return tf.random.experimental.stateless_split(tf.constant([0, index], tf.int64), num=count)


def test_weak_haematoxylin_pales_the_nuclei():
    """Among many draws some crops have their haematoxylin weakened: nuclei get paler."""
    import tensorflow as tf

    # an inverted H&E nucleus colour (dark purple becomes a bright inverted value)
    nucleus = 1.0 - np.array([0.35, 0.2, 0.55], np.float32)
    image = tf.constant(np.broadcast_to(nucleus, (4, 4, 3)).copy())
    darkness = [float(_stain_jitter(image, _seeds(index, 5)).numpy().mean()) for index in range(60)]
    assert min(darkness) < np.mean(darkness) - 0.1  # some much paler than the usual jitter
    assert max(darkness) > nucleus.mean() - 0.1  # and most keep their stain


def test_scan_artefacts_blur_or_compress_some_crops_only():
    from nuclei_core.training.pipelines import _scan_artefacts

    rng = np.random.default_rng(1)
    image = rng.uniform(0, 1, (32, 32, 3)).astype(np.float32)
    outputs = [_scan_artefacts(image, _seeds(index, 3)).numpy() for index in range(30)]
    changed = [not np.array_equal(output, image) for output in outputs]
    assert 0 < sum(changed) < len(changed)
    # blur and JPEG both smooth white noise: a changed crop varies less from pixel to pixel
    roughness = [np.abs(np.diff(output, axis=0)).mean() for output in outputs]
    smooth = [value for value, was_changed in zip(roughness, changed, strict=True) if was_changed]
    assert max(smooth) < np.abs(np.diff(image, axis=0)).mean()


def test_a_resumed_pipeline_goes_on_with_the_crops_a_single_run_draws():
    rng = np.random.default_rng(2)
    arrays = [
        TrainingArray(
            rng.uniform(0, 1, (48, 48, 3)).astype(np.float32),
            (rng.uniform(0, 1, (48, 48, 2)) > 0.5).astype(np.float32),
            count=3,
            colour=bool(index % 2),
        )
        for index in range(3)
    ]
    whole, _ = training_dataset(arrays, crop=32, batch_size=2, seed=5)
    single = [images.numpy() for images, _ in whole.take(7)]
    resumed, _ = training_dataset(arrays, crop=32, batch_size=2, seed=5, start=4 * 2)
    tail = [images.numpy() for images, _ in resumed.take(3)]
    for expected, got in zip(single[4:], tail, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not np.allclose(single[0], single[1])


def test_small_images_are_padded_for_cropping(tmp_path, flat_dataset_factory):
    root = flat_dataset_factory(
        tmp_path / "small", n_images=2, size=(28, 40), n_nuclei=2, radius=(4, 6)
    )
    arrays, _ = load_training_data(discover_dataset(root).samples, crop=32)
    for array in arrays:
        assert array.model_input.shape[:2] == array.targets.shape[:2]
        assert min(array.model_input.shape[:2]) >= 32
        assert array.count == 1
        assert array.diameters.size == 2 and (array.diameters > 6).all()  # radius 4-6 discs
