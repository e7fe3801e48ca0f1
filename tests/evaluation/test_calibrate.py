"""Calibration (``nuclei_core.evaluation.calibrate``): the chosen minimum confidence is the
best level on the images given, it lands in the card, and the app's options read it."""

from __future__ import annotations

import json
import shutil

import pytest

from nuclei_core.datasets.folders import discover_dataset, select_split
from nuclei_core.errors import ConfigError, InputError
from nuclei_core.evaluation.calibrate import (
    Calibration,
    calibrate,
    choose_level,
    choose_levels,
    write_calibration,
)
from nuclei_core.segmentation.options import SegmentOptions, model_settings


def test_a_tie_goes_to_the_lowest_level_and_each_set_counts_once():
    means = {
        "big": {"0": {"dsb_score": 0.6}, "0.9": {"dsb_score": 0.5}},  # 100 images or 1: once
        "small": {"0": {"dsb_score": 0.2}, "0.9": {"dsb_score": 0.3}},
    }
    assert choose_level(means, [0.0, 0.9]) == 0.0  # 0.4 against 0.4: the lower level


def test_levels_outside_zero_to_one_and_no_images_are_refused(tiny_model, flat_dataset):
    samples = {"set": discover_dataset(flat_dataset).samples[:1]}
    with pytest.raises(InputError, match="calibration level must be between 0 and 1"):
        calibrate(tiny_model, samples, levels=[0.0, 1.5])
    with pytest.raises(ConfigError, match="none were given"):
        calibrate(tiny_model, {"set": []})


def test_the_chosen_level_scores_best_and_the_card_makes_the_options(
    tmp_path, trained_run, flat_dataset_factory
):
    data = flat_dataset_factory(tmp_path / "data", n_images=12, seed=610)
    samples = {"discs": select_split(discover_dataset(data), "all")}
    model_path = tmp_path / "model.keras"  # a copy: its card gets written
    shutil.copy(trained_run.result.model_path, model_path)
    shutil.copy(trained_run.result.card_path, tmp_path / "model.json")
    from nuclei_core.network.model import load_model

    levels = (0.0, 0.5, 0.999999)
    calibration = calibrate(
        load_model(model_path), samples, SegmentOptions.for_model(model_path), levels
    )

    assert calibration.levels == levels and calibration.n_images == {"discs": 12}
    scores = {level: calibration.scores_at(level)["discs"] for level in levels}
    assert scores[calibration.min_confidence] == max(scores.values())
    assert calibration.validation_scores()["discs"] >= calibration.uncalibrated_scores()["discs"]
    assert scores[0.0] > scores[0.999999]  # nearly nothing is that sure: most nuclei dropped
    assert [row["id"] for row in calibration.images] == [s.id for s in samples["discs"]]

    entry = write_calibration(model_path, calibration, "a test")
    card = json.loads((tmp_path / "model.json").read_text())
    assert card["postprocess"] == entry
    assert entry["chosen_by"] == "a test" and set(entry["levels"]) == {"0", "0.5", "0.999999"}
    assert card["name"] == json.loads(trained_run.result.card_path.read_text())["name"]
    assert model_settings(model_path)["min_confidence"] == calibration.min_confidence
    assert SegmentOptions.for_model(model_path).min_confidence == calibration.min_confidence
    # This network has no distance output: every seed height gives the same nuclei, so the
    # default height stays, and the card says so.
    assert set(entry["peak_heights"]) == {"0.15", "0.2", "0.3", "0.4"}
    assert len({tuple(scores.values()) for scores in entry["peak_heights"].values()}) == 1
    assert entry["peak_height"] == 0.2 == SegmentOptions.for_model(model_path).peak_height


def test_the_seed_height_and_level_chosen_score_best_of_every_pair():
    def row(data, scores):  # scores: {(height, level): DSB}
        nested = {}
        for (height, level), value in scores.items():
            nested.setdefault(f"{height:g}", {})[f"{level:g}"] = {"dsb_score": value}
        return {"data": data, "scores": nested}

    rows = [
        row("dsb", {(0.2, 0.0): 0.50, (0.2, 0.9): 0.55, (0.3, 0.0): 0.52, (0.3, 0.9): 0.58}),
        row("dsb", {(0.2, 0.0): 0.50, (0.2, 0.9): 0.55, (0.3, 0.0): 0.52, (0.3, 0.9): 0.58}),
        row("he", {(0.2, 0.0): 0.30, (0.2, 0.9): 0.33, (0.3, 0.0): 0.31, (0.3, 0.9): 0.30}),
    ]
    height, level, means, heights = choose_levels(rows, [0.0, 0.9], [0.2, 0.3], 0.2)
    # Each set counts once. Height 0.3: level 0.9 gives (0.58 + 0.30) / 2 = 0.44, level 0
    # 0.415; height 0.2: level 0.9 gives (0.55 + 0.33) / 2 = 0.44 too. A tie: the default wins.
    assert (height, level) == (0.2, 0.9)
    assert heights == {"0.2": {"dsb": 0.55, "he": 0.33}, "0.3": {"dsb": 0.58, "he": 0.30}}
    rows[2]["scores"]["0.3"]["0.9"]["dsb_score"] = 0.32
    height, level, means, _ = choose_levels(rows, [0.0, 0.9], [0.2, 0.3], 0.2)
    assert (height, level) == (0.3, 0.9)
    assert means["he"]["0.9"]["dsb_score"] == 0.32  # the means are those of the chosen height


def test_a_seed_height_outside_zero_to_one_is_refused(tiny_model, flat_dataset):
    samples = {"set": discover_dataset(flat_dataset).samples[:1]}
    with pytest.raises(ConfigError, match="seed height must be between 0 and 1, got 0"):
        calibrate(tiny_model, samples, heights=[0.0, 0.2])


def test_a_calibration_without_level_zero_has_no_uncalibrated_scores():
    calibration = Calibration(0.9, (0.9,), {"a": {"0.9": {"dsb_score": 0.5}}}, {"a": 1})
    assert calibration.uncalibrated_scores() is None
    assert calibration.card_entry("x")["uncalibrated_dsb_score"] is None
