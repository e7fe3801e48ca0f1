"""``bench/width.py``: the networks it builds, a tiny run's figures and table."""

from __future__ import annotations

import json

import pytest

from bench import width
from nuclei_core.network.model import load_model
from nuclei_core.registry.cards import read_card


def test_twice_the_filters_give_about_four_times_the_weights(tmp_path):
    narrow, wide = (load_model(width.build_network(filters, tmp_path)) for filters in (4, 8))
    assert wide.count_params() / narrow.count_params() == pytest.approx(4, rel=0.1)
    assert narrow.output_shape[-1] == 3  # the default's outputs, distance map included
    assert read_card(tmp_path / "unet-8.keras")["model"]["base_filters"] == 8


def test_a_tiny_run_measures_every_figure_and_writes_the_table(tmp_path):
    argv = ["--filters", "4", "--images", "4", "--train-steps", "1", "--out-dir", str(tmp_path)]
    assert width.main(argv) == 0

    report = json.loads((tmp_path / "width.json").read_text())
    assert report["command"] == "python -m bench.width " + " ".join(argv)
    (row,) = report["widths"]
    assert row["filters"] == 4 and row["weights"] > 0 and row["gflops"] > 0
    assert row["images_per_s"] > 0 and row["training_images_per_s"] > 0
    assert f"| 4 | {row['weights']:,} | " in (tmp_path / "width.md").read_text()


def test_a_width_under_two_filters_is_refused_naming_the_option(tmp_path, capsys):
    with pytest.raises(SystemExit):
        width.main(["--filters", "1", "--out-dir", str(tmp_path)])
    assert "--filters must be 2 or more, got [1]" in capsys.readouterr().err
    assert not (tmp_path / "width.json").exists()
