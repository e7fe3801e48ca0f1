"""Tests of nuclei_core.checks: error types (wrong type vs wrong shape or value) and messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nuclei_core import checks
from nuclei_core.errors import InputError, InputTypeError
from nuclei_core.segmentation.measure import measure_nuclei
from nuclei_core.segmentation.postprocess import labels_from_probabilities


def test_error_types_are_builtin_compatible():
    with pytest.raises(ValueError):
        labels_from_probabilities(np.zeros((4, 4, 4)))
    with pytest.raises(TypeError):
        measure_nuclei(np.zeros((4, 4)))


@pytest.mark.parametrize(
    ("call", "error", "argument"),
    [
        (lambda: checks.check_label_image([[1]]), InputTypeError, "labels"),
        (lambda: checks.check_label_image(np.zeros((2, 2), bool)), InputTypeError, "labels"),
        (lambda: checks.check_label_image(np.zeros((2, 2, 1), int), "codes"), InputError, "2-D"),
        (lambda: checks.check_label_image(np.zeros((0, 2), int)), InputError, "empty"),
        (lambda: checks.check_label_image(np.full((2, 2), -1)), InputError, "negative"),
        (lambda: checks.as_label_image("labels", "true_labels"), InputTypeError, "true_labels"),
        (lambda: checks.as_label_image(np.zeros(4), "true_labels"), InputError, "2-D"),
        (lambda: checks.as_label_image([[np.nan]], "pred_labels"), InputError, "NaN"),
        (lambda: checks.as_image(np.zeros((4, 4, 2))), InputError, r"image must have shape"),
        (lambda: checks.as_image(np.zeros((4, 4), complex)), InputTypeError, "image"),
        (lambda: checks.as_image(np.zeros((0, 4))), InputError, "zero size"),
        (lambda: checks.as_rgb_uint8(np.zeros((2, 2, 4), np.uint8), "left"), InputError, "left"),
        (lambda: checks.check_int(1.0, "epoch"), InputTypeError, "epoch must be an integer"),
        (lambda: checks.check_int(True, "epoch"), InputTypeError, "epoch"),
        (lambda: checks.check_int(-1, "epoch", minimum=0), InputError, "epoch must be at least 0"),
        (lambda: checks.check_fraction(float("nan"), "alpha"), InputError, "alpha"),
        (lambda: checks.check_fraction("0.5", "alpha"), InputTypeError, "alpha"),
        (lambda: checks.check_positive(0, "pixel_size"), InputError, "pixel_size"),
        (lambda: checks.check_colour("red", "colour"), InputTypeError, "colour"),
        (lambda: checks.check_colour((0, 0, 256), "colour"), InputError, "colour"),
        (lambda: checks.check_name(3, "name"), InputTypeError, "name must be a str"),
        (lambda: checks.check_name("  ", "new_name"), InputError, "new_name is empty"),
        (lambda: checks.check_dict([1], "params"), InputTypeError, "params must be a dict"),
        (lambda: checks.check_optional_int("3", "pid"), InputTypeError, "pid"),
        (lambda: checks.check_optional_str(3, "message"), InputTypeError, "message"),
        (lambda: checks.check_optional_path(3, "model_path"), InputTypeError, "model_path"),
        (lambda: checks.check_choice("lost", "status", ("done",)), InputError, "status"),
    ],
)
def test_each_check_raises_the_right_type_naming_the_argument(call, error, argument):
    with pytest.raises(error, match=argument) as raised:
        call()
    assert "\n" not in str(raised.value)


def test_checks_return_the_value_converted_as_documented():
    assert checks.as_label_image(np.array([[True, False]]), "true_labels").dtype == np.int64
    assert checks.as_label_image([[2.0, 0.0]], "pred_labels").tolist() == [[2, 0]]
    assert checks.as_rgb_uint8(np.zeros((2, 3), np.uint8), "image").shape == (2, 3, 3)
    assert checks.check_int(np.int32(5), "run_id") == 5
    assert type(checks.check_int(np.int32(5), "run_id")) is int
    assert checks.check_optional_int(None, "best_epoch") is None
    assert checks.check_name(" baseline ", "name") == "baseline"
    assert checks.check_dict(None, "params") == {}
    assert checks.check_optional_path(Path("a.keras"), "model_path") == "a.keras"
    assert checks.check_colour(np.array([1, 2, 3]), "colour") == (1, 2, 3)
