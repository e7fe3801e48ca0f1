"""Tests of bench/finetune.py: the pool and the rest, the table, the targets, a tiny run."""

from __future__ import annotations

import doctest
import json

from bench import finetune


def test_docstring_examples_run():
    assert doctest.testmod(finetune).failed == 0


def test_pool_is_the_first_training_images_and_rest_every_other(flat_dataset_factory, tmp_path):
    from nuclei_core.datasets.folders import discover_dataset, select_split

    folder = flat_dataset_factory(tmp_path / "set", n_images=12)
    pool, rest = finetune.pool_and_rest(folder, 3)
    train_ids = [sample.id for sample in select_split(discover_dataset(folder), "train")]
    assert [sample.id for sample in pool] == sorted(train_ids)[:3]
    assert sorted(sample.id for sample in pool + rest) == [f"img{i:02d}" for i in range(12)]


def _scores(dsb: float) -> dict:
    return {"mean_dsb_score": dsb, "mean_f1": 0.5, "mean_foreground_iou": 0.5, "n_images": 4}


def test_the_table_shows_changes_and_the_targets():
    section = {
        "command": "python -m bench.finetune ...",
        "base_model": "base.keras",
        "data": "h&e",
        "base_data": "dsb",
        "before": {"rest": _scores(0.1), "base_test": _scores(0.55)},
        "rows": [
            {"k": 5, "minutes": 10, "epochs": 60, "rest": _scores(0.2), "base_test": _scores(0.54)},
            {"k": 1, "minutes": 10, "epochs": 70, "rest": _scores(0.15), "base_test": _scores(0.5)},
        ],
    }
    text = "\n".join(finetune.render_finetune(section))
    assert "| 1 | 10 | 70 | 0.150 (+0.050) |" in text
    assert "| 5 | 10 | 60 | 0.200 (+0.100) |" in text
    assert "rest DSB score +0.15 or more: +0.100, missed by 0.050" in text
    assert "base test DSB score lost at most 0.02: -0.010, met" in text
    assert finetune.render_finetune({}) == []


def test_a_tiny_run_fills_results_and_resumes(trained_run, flat_dataset_factory, tmp_path):
    data = flat_dataset_factory(tmp_path / "new", n_images=8, seed=50)
    out = tmp_path / "out"  # no RESULTS.md yet: it gets this section only
    argv = ["--base-model", str(trained_run.result.model_path), "--data", str(data)]
    argv += ["--base-data", str(trained_run.data), "--k", "1", "--minutes", "0.02"]
    argv += ["--out-dir", str(out)]
    out.mkdir()
    assert finetune.main(argv) == 0
    section = json.loads((out / "finetune.json").read_text())
    assert [(row["k"], row["minutes"]) for row in section["rows"]] == [(1, 0.02)]
    assert section["rows"][0]["rest"]["n_images"] == 7
    assert "## Fine-tuning on corrected images" in (out / "RESULTS.md").read_text()
    assert finetune.main([*argv, "--resume"]) == 0  # nothing left to do: the row is kept
    again = json.loads((out / "finetune.json").read_text())
    assert again["rows"] == section["rows"]
