"""``bench/profile_folder.py``: a folder run's time by stage, and the time to first result.

A quick run on two generated images with the bundled model must time both fresh
processes, count a network pass for every image and put the network's time in its stage.
"""

from __future__ import annotations

import json

import pytest

from bench import profile_folder


@pytest.mark.slow
def test_a_quick_profile_times_every_stage_of_a_folder_run(tmp_path, make_sample, write_png):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(2):
        write_png(folder / f"cells{index}.png", make_sample((64, 64), seed=index)[0])
    argv = ["--label", "quick", "--data", str(folder), "--repeats", "1"]
    assert profile_folder.main([*argv, "--out-dir", str(tmp_path / "out")]) == 0

    figures = json.loads((tmp_path / "out" / "profile_quick.json").read_text())
    assert figures["images"] == 2 and figures["network_passes"] >= 2
    assert set(figures["stages"]) == set(profile_folder.STAGES)
    assert figures["stages"]["network"] > 0 and min(figures["stages"].values()) >= 0
    assert figures["first_result"]["seconds"] > 0 and figures["folder"]["seconds"] > 0
    tensorflow = figures["runtime"].startswith("TensorFlow")
    assert figures["first_result"]["tensorflow_imported"] is tensorflow
    assert (
        figures["own_time"]
        and "# Folder profile: quick" in (tmp_path / "out" / "profile_quick.md").read_text()
    )
