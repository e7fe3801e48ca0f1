"""Tests of nuclei_core.evaluation.evaluate: scoring one image, dataset splits and browsed
folders."""

from __future__ import annotations

import numpy as np
import pytest

from nuclei_core.datasets.folders import discover_dataset
from nuclei_core.errors import DatasetError, InputTypeError
from nuclei_core.evaluation import evaluate, metrics


def threshold_segmenter(image):
    """A baseline without a network: bright pixels are one nucleus each component."""
    from skimage.measure import label

    return label(np.asarray(image) > 100).astype(np.int32)


def result(sample_id, kind, true_labels, labels):
    scores = metrics.evaluate_labels(true_labels, labels)
    return evaluate.SampleResult(sample_id, kind, scores, labels, true_labels, 0.0)


def test_compare_labels_gives_scores_and_an_error_map():
    truth = np.array([[1, 1, 0], [0, 0, 0], [2, 0, 0]])
    found = np.array([[1, 1, 0], [0, 0, 3], [0, 0, 0]])
    scores, errors = evaluate.compare_labels(truth, found)
    assert (scores.n_true, scores.n_pred, scores.count_error) == (2, 2, 0)
    assert errors.tolist() == [[1, 1, 0], [0, 0, 2], [3, 0, 0]]


def test_evaluate_samples_scores_each_image_and_reports_progress(flat_dataset):
    samples = discover_dataset(flat_dataset).samples
    calls = []
    results, problems = evaluate.evaluate_samples(
        threshold_segmenter, samples, progress=lambda done, total: calls.append((done, total))
    )
    assert problems == [] and [item.id for item in results] == [s.id for s in samples]
    assert calls == [(index, len(samples)) for index in range(1, len(samples) + 1)]
    assert all(item.scores.f1 > 0.8 and item.kind == "fluorescence" for item in results)
    row = results[0].row()
    assert list(row)[:2] == ["id", "kind"] and "dsb_score" in row and "seconds" in row


def test_evaluate_samples_skips_and_lists_unreadable_samples(flat_dataset):
    (flat_dataset / "inputs" / "img01.png").write_bytes(b"\x89PNG broken")
    results, problems = evaluate.evaluate_samples(
        threshold_segmenter, discover_dataset(flat_dataset).samples
    )
    assert "img01" not in [item.id for item in results] and len(results) == 5
    assert len(problems) == 1 and problems[0].startswith(str(flat_dataset / "inputs" / "img01"))


def test_evaluate_samples_with_a_network(tiny_model, flat_dataset):
    samples = discover_dataset(flat_dataset).samples[:2]
    results, _ = evaluate.evaluate_samples(tiny_model, samples)
    assert [item.labels.shape for item in results] == [(64, 64), (64, 64)]


def test_summarize_by_kind_groups_colour_images_only_when_mixed(make_sample):
    _, labels = make_sample(seed=1)
    fluorescence = result("a", "fluorescence", labels, labels)
    stained = result("b", "stained", labels, np.zeros_like(labels))
    assert evaluate.summarize_by_kind([]) == {}
    assert list(evaluate.summarize_by_kind([stained])) == ["all", "stained"]
    mixed = evaluate.summarize_by_kind([fluorescence, stained])
    assert list(mixed) == ["all", "fluorescence", "stained", "brightfield+stained"]
    assert mixed["all"]["n_images"] == 2 and mixed["fluorescence"]["mean_dsb_score"] == 1.0
    frame = evaluate.kind_summary_frame([fluorescence, stained])
    assert frame["images"].tolist() == list(mixed)


def test_order_results_filters_kinds_and_sorts_by_a_score(make_sample):
    _, labels = make_sample(seed=2)
    perfect = result("perfect", "fluorescence", labels, labels)
    missed = result("missed", "fluorescence", labels, np.zeros_like(labels))
    other = result("other", "stained", labels, labels)
    everything = [perfect, missed, other]
    assert [item.id for item in evaluate.order_results(everything)] == [
        "missed",
        "other",
        "perfect",
    ]
    best = evaluate.order_results(everything, worst_first=False, kinds=["fluorescence"])
    assert [item.id for item in best] == ["perfect", "missed"]
    assert evaluate.results_frame(everything)["id"].tolist() == ["perfect", "missed", "other"]


def test_evaluate_folder_keeps_a_thumbnail_per_image(tiny_model, flat_dataset):
    (flat_dataset / "inputs" / "stray.png").write_bytes(b"")
    done = []
    found = evaluate.evaluate_folder(
        tiny_model, flat_dataset, progress=lambda *args: done.append(args), thumbnail_side=32
    )
    assert found.folder == flat_dataset and found.split == "all" and len(found.results) == 6
    assert sorted(found.thumbnails) == sorted(found.samples) == [f"img{i:02d}" for i in range(6)]
    assert {thumb.shape for thumb in found.thumbnails.values()} == {(32, 32, 3)}
    assert any("stray.png" in problem for problem in found.problems) and len(done) == 6
    assert found.result("img03").id == "img03" and found.result("nope") is None
    views = evaluate.sample_views(found.samples["img03"], found.result("img03"))
    assert {name: view.shape for name, view in views.items()} == dict.fromkeys(
        ("image", "truth", "prediction", "errors"), (64, 64, 3)
    )


def test_evaluate_folder_refuses_an_empty_split(tiny_model, flat_dataset_factory, tmp_path):
    folder = flat_dataset_factory(tmp_path / "one", n_images=1)
    with pytest.raises(DatasetError, match=r"the test split has no images"):
        evaluate.evaluate_folder(tiny_model, folder, split="test")


def test_check_dataset_folder_refuses_what_is_not_text():
    with pytest.raises(InputTypeError, match="folder must be text, got int"):
        evaluate.check_dataset_folder(3)


def test_sample_images_come_from_the_first_folder_that_has_any(tmp_path, write_png):
    image = np.zeros((4, 4), np.uint8)
    write_png(tmp_path / "test" / "images" / "b.png", image)
    assert [path.name for path in evaluate.sample_images(tmp_path)] == ["b.png"]
    write_png(tmp_path / "inputs" / "a.png", image)
    (tmp_path / "inputs" / "notes.txt").write_text("x")
    assert evaluate.sample_images(tmp_path) == [tmp_path / "inputs" / "a.png"]
    assert evaluate.sample_images(tmp_path / "missing") == []


def test_sample_images_default_to_the_configured_folder(tmp_path, write_png, monkeypatch):
    write_png(tmp_path / "c.png", np.zeros((4, 4), np.uint8))
    monkeypatch.setenv("NUCLEI_SAMPLES_DIR", str(tmp_path))
    assert evaluate.sample_images() == [tmp_path / "c.png"]
