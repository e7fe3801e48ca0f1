"""The expected-diameter widget of ``ui/diameter.py``, with a stand-in for Streamlit."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from nuclei_core.segmentation.diameter import DEFAULT_MODEL_DIAMETER_PX
from nuclei_core.segmentation.options import SegmentOptions
from ui.diameter import (
    LABEL,
    checked_diameter,
    diameter_caption,
    diameter_input,
    model_options,
)


class Container:
    """Records what the widget asked of Streamlit; the number input returns ``typed``."""

    def __init__(self, typed: float):
        self.typed, self.inputs, self.warnings = typed, [], []

    def number_input(self, label, **options):
        self.inputs.append((label, options))
        return self.typed

    def warning(self, text):
        self.warnings.append(text)


@pytest.mark.parametrize(
    ("typed", "expected", "warned"),
    [(0.0, "auto", False), (12.5, 12.5, False), (4.0, "auto", True), (80.0, 80.0, False)],
)
def test_the_input_returns_the_diameter_or_auto(typed, expected, warned):
    where = Container(typed)
    assert diameter_input(20.0, where) == expected
    ((label, options),) = where.inputs
    assert label == LABEL == "Expected nucleus diameter (px, 0 = estimate)"
    assert options["min_value"] == 0.0 and options["max_value"] == 80.0
    assert options["value"] == 0.0 and "5 to 80 px" in options["help"]
    assert bool(where.warnings) == warned


def test_every_accepted_diameter_makes_valid_options():
    for typed in (5.0, 20.0, 80.0, 4.99, 80.01):
        diameter, warning = checked_diameter(typed, 20.0)
        assert (diameter == "auto") == (warning is not None)
        SegmentOptions(diameter=diameter, model_diameter=20.0)  # never refused


def test_options_use_the_settings_of_the_model_card(tmp_path):
    card = {"nucleus_diameter_px": 30.0, "postprocess": {"min_confidence": 0.9}}
    (tmp_path / "model.json").write_text(json.dumps(card))
    run = SimpleNamespace(model_path=str(tmp_path / "model.keras"))
    where = Container(60.0)
    assert model_options(run, where) == {
        "diameter": 60.0,
        "model_diameter": 30.0,
        "min_confidence": 0.9,
        "peak_height": 0.2,
    }
    assert where.inputs[0][1]["max_value"] == 120.0
    defaults = {
        "diameter": "auto",
        "model_diameter": DEFAULT_MODEL_DIAMETER_PX,
        "min_confidence": 0.0,
        "peak_height": 0.2,
    }
    assert model_options(None, Container(0.0)) == defaults
    card["postprocess"]["min_confidence"] = 2.0  # a broken card: named, and the defaults used
    (tmp_path / "model.json").write_text(json.dumps(card))
    where = Container(0.0)
    assert model_options(run, where) == defaults
    (warning,) = where.warnings
    assert "postprocess.min_confidence of" in warning and "model.json" in warning


@pytest.mark.parametrize(
    ("asked", "used", "expected"),
    [
        ("auto", None, "Estimated nucleus diameter: close to the 20 px"),
        ("auto", 13.0, "Estimated nucleus diameter: 13 px; the image was enlarged 1.54x"),
        (30.0, 30.0, "Nucleus diameter 30 px (given); the image was shrunk 0.667x"),
    ],
)
def test_the_caption_says_which_diameter_was_used(asked, used, expected):
    assert diameter_caption(asked, used, 20.0).startswith(expected)
