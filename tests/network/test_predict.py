"""Tests of nuclei_core.network.predict and nuclei_core.segmentation.segment: tiling, odd sizes,
flips, batches,
and splitting touching nuclei."""

from __future__ import annotations

import numpy as np
import pytest

from nuclei_core.datasets import folders as datasets
from nuclei_core.errors import ConfigError, InputTypeError
from nuclei_core.evaluation.evaluate import evaluate_samples
from nuclei_core.network.predict import predict_many, predict_probabilities
from nuclei_core.segmentation import preprocess
from nuclei_core.segmentation.options import SegmentOptions
from nuclei_core.segmentation.segment import nuclei_from_probabilities, segment_image
from nuclei_core.training.data import make_targets


class FakeModel:
    """Stands in for a Keras model: records batch shapes, output = a pixelwise function.

    ``predict`` caches its compiled forward pass on the model as ``_nuclei_inference``;
    setting that attribute lets the tiling be checked exactly, without a network whose
    receptive field blurs tile edges.
    """

    def __init__(self, channels=2):
        self.shapes = []
        self.channels = channels

    def _nuclei_inference(self, batch):
        batch = np.asarray(batch)
        self.shapes.append(batch.shape)
        return expected_fake(batch, self.channels)


def expected_fake(model_input, channels=2):
    """Foreground, boundary and (with 3 channels) a distance map made of the input's colours."""
    outputs = [model_input[..., 0], 0.5 * model_input[..., 1] + 0.25 * model_input[..., 2]]
    return np.stack(outputs + [model_input[..., 2]] * (channels - 2), axis=-1)


@pytest.fixture
def large_input(make_sample):
    image, _ = make_sample((300, 200), n_nuclei=40, n_touching_pairs=4, seed=11)
    return preprocess.to_model_input(image)


# ============================================================================== tiling


@pytest.mark.parametrize("channels", [2, 3])
def test_tiles_are_placed_and_blended_exactly(large_input, channels):
    colourful = large_input * np.array([1.0, 0.6, 0.3], np.float32)
    model, calls = FakeModel(channels), []
    output = predict_probabilities(
        model, colourful, tile_size=128, overlap=16, progress=lambda *a: calls.append(a)
    )
    assert output.shape == (300, 200, channels)
    np.testing.assert_allclose(output, expected_fake(colourful, channels), atol=1e-6)
    # 300 x 200 padded to 320 x 224: 3 x 2 tiles of 128, never a bigger batch.
    assert set(model.shapes) == {(1, 128, 128, 3)}
    assert calls == [(done, 6) for done in range(1, 7)]


def test_large_image_memory_stays_bounded():
    model = FakeModel()
    model_input = np.random.default_rng(0).random((2100, 1500, 3), dtype=np.float32)
    output = predict_probabilities(model, model_input, tile_size=512, overlap=64)
    assert output.shape == (2100, 1500, 2)
    assert max(shape[1] * shape[2] for shape in model.shapes) <= 512 * 512
    np.testing.assert_allclose(
        output[::97, ::89], expected_fake(model_input)[::97, ::89], atol=1e-6
    )


def test_an_image_just_over_the_tile_size_costs_little_more_than_its_pixels():
    model = FakeModel()
    model_input = np.random.default_rng(1).random((1100, 1050, 3), dtype=np.float32)
    output = predict_probabilities(model, model_input, tile_size=1024, overlap=64)
    np.testing.assert_allclose(output, expected_fake(model_input), atol=1e-6)
    assert len(model.shapes) == 4  # as tiles of 1,024 would need, but shorter ones
    computed = sum(shape[1] * shape[2] for shape in model.shapes)
    assert computed < 1.4 * 1100 * 1050  # four tiles of 1,024 would be 3.6 times the image
    assert all(shape[1] % 32 == 0 and shape[2] % 32 == 0 for shape in model.shapes)


def test_tiled_prediction_matches_whole_image(trained_model, large_input):
    whole = predict_probabilities(trained_model, large_input, tile_size=1024)
    assert whole.shape == (300, 200, 2)
    assert whole[..., 0].std() > 0.2  # a real, confident prediction, not a constant
    # Overlap 30 gives a step of 98 pixels, off the network's pooling grid unless the
    # tiles are aligned to it.
    for overlap in (16, 30):
        tiled = predict_probabilities(trained_model, large_input, tile_size=128, overlap=overlap)
        difference = np.abs(whole - tiled)
        print(f"tiling, overlap {overlap}: max |difference| {difference.max():.4f}")
        assert difference.max() < 0.05
        assert ((whole[..., 0] > 0.5) == (tiled[..., 0] > 0.5)).mean() > 0.999


@pytest.mark.parametrize("shape", [(1, 1), (3, 50), (50, 3), (37, 91), (64, 64), (130, 67)])
def test_odd_sizes_come_back_the_same_size(tiny_model, shape):
    model_input = np.random.default_rng(1).random((*shape, 3), dtype=np.float32)
    output = predict_probabilities(tiny_model, model_input, tile_size=64, overlap=8)
    assert output.shape == (*shape, 2)
    assert output.dtype == np.float32
    assert np.isfinite(output).all() and output.min() >= 0 and output.max() <= 1


def test_padding_does_not_leak_into_the_result(trained_model, make_sample):
    image, _ = make_sample((64, 64), seed=21)
    full = predict_probabilities(trained_model, preprocess.to_model_input(image))
    cropped = predict_probabilities(trained_model, preprocess.to_model_input(image)[:, :45])
    # 45 columns are padded to 64 by reflection; away from the cut the result agrees.
    assert np.abs(full[:, :30] - cropped[:, :30]).max() < 0.05


def test_test_time_flips_keep_every_channel(large_input):
    model_input = large_input[:64, :96] * np.array([1.0, 0.6, 0.3], np.float32)
    flipped = predict_probabilities(FakeModel(channels=3), model_input, tta=True)
    np.testing.assert_allclose(flipped, expected_fake(model_input, 3), atol=1e-6)


def test_test_time_flips(tiny_model, large_input):
    model_input = large_input[:64, :96]
    flipped = predict_probabilities(tiny_model, model_input, tta=True)
    assert flipped.shape == (64, 96, 2)
    manual = np.zeros_like(flipped)
    for axes in ((), (0,), (1,), (0, 1)):
        view = np.ascontiguousarray(np.flip(model_input, axes)) if axes else model_input
        manual += (
            np.flip(predict_probabilities(tiny_model, view), axes)
            if axes
            else (predict_probabilities(tiny_model, view))
        )
    np.testing.assert_allclose(flipped, manual / 4, atol=1e-5)
    plain = predict_probabilities(tiny_model, model_input)
    assert np.abs(plain - flipped).max() > 1e-4  # the flips really ran


def test_predict_many_matches_one_by_one(tiny_model):
    rng = np.random.default_rng(2)
    shapes = [(32, 32), (40, 24), (32, 32), (32, 32), (90, 70), (40, 24)]
    images = [rng.random((*shape, 3), dtype=np.float32) for shape in shapes]
    done = []
    many = predict_many(
        tiny_model, images, batch_size=2, tile_size=64, progress=lambda d, t: done.append((d, t))
    )
    assert [output.shape for output in many] == [(*shape, 2) for shape in shapes]
    for image, output in zip(images, many, strict=True):
        single = predict_probabilities(tiny_model, image, tile_size=64)
        np.testing.assert_allclose(output, single, atol=1e-5)
    assert done[-1] == (6, 6)
    assert predict_many(tiny_model, []) == []


def test_predict_refusals(tiny_model):
    image = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(InputTypeError, match="numpy array"):
        predict_probabilities(tiny_model, image.tolist())
    with pytest.raises(InputTypeError, match=r"\(H, W, 3\)"):
        predict_probabilities(tiny_model, image[..., 0])
    with pytest.raises(ConfigError, match="tile_size"):
        predict_probabilities(tiny_model, image, tile_size=100)
    with pytest.raises(ConfigError, match="overlap"):
        predict_probabilities(tiny_model, image, tile_size=128, overlap=32)
    with pytest.raises(ConfigError, match="batch_size"):
        predict_many(tiny_model, [image], batch_size=0)


# ============================================================================== nuclei


def two_touching_discs(size=(48, 64)):
    yy, xx = np.mgrid[: size[0], : size[1]]
    labels = np.zeros(size, np.int32)
    labels[(yy - 24) ** 2 + (xx - 22) ** 2 <= 81] = 1
    labels[((yy - 24) ** 2 + (xx - 39) ** 2 <= 81) & (labels == 0)] = 2  # centres 17 apart
    return labels


def test_watershed_splits_two_touching_discs():
    labels = two_touching_discs()
    assert (labels > 0).sum() > 0 and len(np.unique(labels)) == 3
    from skimage.measure import label

    assert label(labels > 0).max() == 1  # one connected blob
    probabilities = make_targets(labels)  # ideal foreground + rim
    found, table = nuclei_from_probabilities(probabilities, labels.astype(np.float32))
    assert found.max() == 2
    for index in (1, 2):
        overlap = np.bincount(found[labels == index], minlength=3)[1:]
        assert overlap.max() / (labels == index).sum() > 0.9
    assert len(table) == 2 and sorted(table["label"]) == [1, 2]


class Oracle:
    """A "model" that predicts the ideal probabilities (foreground, rim) of known labels."""

    def __init__(self, labels):
        self.targets = make_targets(labels)

    def _nuclei_inference(self, batch):
        output = np.zeros((*np.shape(batch)[:3], 2), np.float32)
        output[:, : self.targets.shape[0], : self.targets.shape[1]] = self.targets
        return output


def test_segment_image_splits_touching_nuclei(make_sample):
    image, truth = make_sample((64, 96), n_nuclei=6, n_touching_pairs=2, seed=77)
    from skimage.measure import label

    assert label(truth > 0).max() == 4  # two pairs of touching discs
    result = segment_image(Oracle(truth), image)
    assert result.count == 6
    from nuclei_core.evaluation.metrics import evaluate_labels

    assert evaluate_labels(truth, result.labels).as_dict()["f1"] == 1.0
    assert len(result.table) == 6
    assert (result.table["mean_intensity"] > 100).all()  # measured on the raw image


def test_trained_model_counts_and_measures_nuclei(trained_model, make_sample):
    image, truth = make_sample((64, 96), n_nuclei=6, n_touching_pairs=0, seed=77)
    result = segment_image(trained_model, image, SegmentOptions(min_size=10))
    assert result.probabilities.shape == (64, 96, 2)
    assert result.labels.shape == (64, 96) and result.labels.dtype == np.int32
    assert result.kind == "fluorescence"
    assert result.count == truth.max() == 6
    assert len(result.table) == result.count
    columns = {"label", "centroid_y_px", "centroid_x_px", "area_px", "perimeter_px"}
    columns |= {"equivalent_diameter_px"}
    assert columns | {"eccentricity", "solidity", "mean_intensity", "max_intensity"} <= set(
        result.table.columns
    )
    np.testing.assert_array_equal(result.mask, result.labels > 0)
    from nuclei_core.evaluation.metrics import evaluate_labels

    assert evaluate_labels(truth, result.labels).as_dict()["f1"] == 1.0
    areas = sorted(result.table["area_px"])
    true_areas = sorted(np.bincount(truth.ravel())[1:])
    np.testing.assert_allclose(areas, true_areas, rtol=0.2)


def test_small_tiles_work_with_the_default_overlap(large_input):
    # tile_size 128 with the 64-pixel default overlap used to be refused.
    model = FakeModel()
    output = predict_probabilities(model, large_input, tile_size=128)
    np.testing.assert_allclose(output, expected_fake(large_input), atol=1e-6)
    image = (large_input[..., 0] * 255).astype(np.uint8)
    result = segment_image(FakeModel(), image, SegmentOptions(tile_size=128))
    assert result.labels.shape == (300, 200)


def test_segment_options_refusals():
    with pytest.raises(ConfigError, match="threshold"):
        SegmentOptions(threshold=1.5)
    with pytest.raises(ConfigError, match="minimum nucleus size"):
        SegmentOptions(min_size=-1)


def test_evaluate_samples_with_the_trained_model(trained_model, trained_run):
    samples = datasets.discover_dataset(trained_run.data).samples[:3]
    results, problems = evaluate_samples(trained_model, samples)
    assert problems == [] and len(results) == 3
    for result in results:
        assert result.scores.as_dict()["foreground_iou"] > 0.9
        assert result.true_labels.max() == 6
