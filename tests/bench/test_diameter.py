"""``bench/diameter.py`` on a tiny generated data set with the session's trained model."""

from __future__ import annotations

import doctest
import json

import pytest

from bench import diameter


def test_doctests():
    assert doctest.testmod(diameter).failed == 0


def test_a_tiny_run_writes_the_scores_and_the_table(tmp_path, trained_run, flat_dataset_factory):
    data = tmp_path / "data"
    flat_dataset_factory(data / "train", n_images=1, seed=500)
    flat_dataset_factory(data / "test", n_images=3, seed=510)
    out = tmp_path / "out"
    argv = ["--model", str(trained_run.result.model_path), "--data", str(data)]
    argv += ["--magnifications", "0.5", "1", "--limit", "2", "--out-dir", str(out)]
    assert diameter.main(argv) == 0

    report = json.loads((out / "diameter.json").read_text())
    card = json.loads(trained_run.result.card_path.read_text())
    trained = card["nucleus_diameter_px"]  # the median of its training nuclei
    assert report["model_diameter"] == trained
    assert [(row["id"], row["magnification"]) for row in report["images"]] == [
        ("test/img00", 0.5),
        ("test/img00", 1.0),
        ("test/img01", 0.5),
        ("test/img01", 1.0),
    ]
    for row in report["images"]:
        assert row["shape"] == ([32, 32] if row["magnification"] == 0.5 else [64, 64])
        assert row["scale"] == pytest.approx(trained / row["diameter"], abs=2e-3)
        for mode in ("without", "estimated", "with"):
            assert set(row[mode]) == {*diameter.SCORES, "seconds", "diameter"}
            assert 0.0 <= row[mode]["f1"] <= 1.0
    assert [entry["magnification"] for entry in report["summary"]] == [0.5, 1.0]
    assert all(entry["n_images"] == 2 for entry in report["summary"])
    table = (out / "diameter.md").read_text()
    assert "| data | magnification | images | rescaled by the estimate | DSB score |" in table
    for entry in report["summary"]:
        shown = entry["magnification"]
        rows = [row for row in report["images"] if row["magnification"] == shown]
        expected = sum(row["estimated"]["diameter"] is not None for row in rows)
        assert entry["second_pass"] == expected
    assert all(row["with"]["diameter"] == row["diameter"] for row in report["images"])
    rows = [line for line in table.splitlines() if line.startswith("| ") and " → " in line]
    assert [row.count(" → ") for row in rows] == [8, 8]  # each: without → estimated → true
    assert report["split"] == "test" and "mean over the test images" in table
