"""``bench/confidence.py`` on a tiny generated data set with the session's trained model."""

from __future__ import annotations

import doctest
import json
import shutil

from bench import confidence
from nuclei_core.datasets.folders import discover_dataset, select_split
from nuclei_core.segmentation.options import model_settings


def test_doctests():
    assert doctest.testmod(confidence).failed == 0


def test_a_tiny_run_scores_every_level_on_validation_images_and_updates_the_card(
    tmp_path, trained_run, flat_dataset_factory
):
    data = tmp_path / "data"
    flat_dataset_factory(data / "train", n_images=30, seed=520)
    flat_dataset_factory(data / "test", n_images=2, seed=530)
    validation = [sample.id for sample in select_split(discover_dataset(data), "val")]
    assert validation, "the generated set must have validation images"
    model = tmp_path / "model.keras"  # a copy: the card gets written
    shutil.copy(trained_run.result.model_path, model)
    shutil.copy(trained_run.result.card_path, tmp_path / "model.json")
    out = tmp_path / "out"
    argv = ["--model", str(model), "--data", str(data), "--levels", "0", "0.5", "0.999999"]
    assert confidence.main([*argv, "--out-dir", str(out), "--update-card"]) == 0

    report = json.loads((out / "confidence.json").read_text())
    assert [row["id"] for row in report["images"]] == validation  # never a test image
    assert report["levels"] == [0.0, 0.5, 0.999999]
    for row in report["images"]:  # every seed height, every level
        assert set(row["scores"]) == {"0.15", "0.2", "0.3", "0.4"}
        assert all(set(levels) == {"0", "0.5", "0.999999"} for levels in row["scores"].values())
    (name, means), *others = report["means"].items()
    assert not others and name.endswith("/data")
    best = max(level["dsb_score"] for level in means.values())
    assert means[f"{report['chosen']:g}"]["dsb_score"] == best
    assert means["0"]["dsb_score"] >= means["0.999999"]["dsb_score"]
    assert model_settings(model)["min_confidence"] == report["chosen"]
    card = json.loads(model.with_suffix(".json").read_text())
    assert card["postprocess"]["chosen_by"].startswith("python -m bench.confidence --model")
    table = (out / "confidence.md").read_text()
    assert f"| minimum confidence | {name} ({len(validation)}): DSB / F1 |" in table
    assert table.count("(chosen)") == 1
