"""Tests of the annotator's Python side (``ui/annotator/gestures.py``) without a browser:
gestures to edits, the label encoding the component decodes, the per-image history."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image
from support import disc

from nuclei_core.errors import EditError, InputError
from ui.annotator import FRONTEND
from ui.annotator.gestures import (
    EDIT_TOOLS,
    HISTORY_TOOLS,
    Correction,
    apply_gesture,
    labels_data_url,
    labels_id,
    labels_rgb,
)


def two_nuclei() -> np.ndarray:
    """Two discs far apart on a 40 x 60 image: ids 1 (left) and 2 (right)."""
    labels = np.zeros((40, 60), np.int32)
    labels[disc(labels.shape, (20, 15), 8)] = 1
    labels[disc(labels.shape, (20, 45), 8)] = 2
    return labels


def decode(url: str) -> np.ndarray:
    """What the component does: PNG data URL -> ids (red + 256 * green)."""
    assert url.startswith("data:image/png;base64,")
    rgb = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    assert rgb.ndim == 3 and rgb.shape[2] == 3
    return rgb[..., 0].astype(np.int64) + 256 * rgb[..., 1].astype(np.int64)


def count(labels: np.ndarray) -> int:
    return int(np.unique(labels[labels > 0]).size)


def test_labels_survive_the_png_encoding_with_ids_above_255():
    labels = np.zeros((30, 30), np.int32)
    labels[2:5, 2:5] = 1
    labels[10:20, 10:20] = 300
    labels[25:28, 0:3] = 65535
    assert np.array_equal(decode(labels_data_url(labels)), labels)
    assert labels_rgb(labels)[12, 12].tolist() == [300 % 256, 1, 0]


def test_labels_id_changes_with_the_labels():
    labels = two_nuclei()
    changed = labels.copy()
    changed[0, 0] = 3
    assert labels_id(labels) == labels_id(labels.copy()) != labels_id(changed)


def test_more_nuclei_than_the_encoding_holds_are_refused():
    with pytest.raises(InputError, match="16-bit"):
        labels_rgb(np.array([[70_000]], np.int32))


def test_delete_removes_the_clicked_nucleus_only():
    new, what = apply_gesture(two_nuclei(), {"tool": "delete", "points": [[20, 45]]})
    assert count(new) == 1 and new[20, 15] > 0 and new[20, 45] == 0
    assert what == "delete 1 nucleus"


def test_delete_on_background_is_refused():
    with pytest.raises(EditError, match="no nucleus"):
        apply_gesture(two_nuclei(), {"tool": "delete", "points": [[2, 2]]})


def test_outline_adds_one_nucleus_on_background():
    outline = [[2, 25], [2, 35], [10, 35], [10, 25]]
    new, what = apply_gesture(two_nuclei(), {"tool": "outline", "points": outline})
    assert count(new) == 3 and what == "add a nucleus"
    assert new[6, 30] > 0 and new[6, 30] not in (new[20, 15], new[20, 45])


def test_split_cuts_a_nucleus_in_two():
    line = [[5, 15], [35, 15]]
    new, _ = apply_gesture(two_nuclei(), {"tool": "split", "points": line})
    assert count(new) == 3
    assert new[20, 10] != new[20, 20] and new[20, 10] > 0 and new[20, 20] > 0


def test_merge_needs_two_nuclei_and_joins_them():
    labels = two_nuclei()
    with pytest.raises(EditError, match="two or more"):
        apply_gesture(labels, {"tool": "merge", "points": [[20, 15], [20, 16]]})
    new, what = apply_gesture(labels, {"tool": "merge", "points": [[20, 15], [20, 45]]})
    assert count(new) == 1 and new[20, 15] == new[20, 45] and what == "merge 2 nuclei"


def test_paint_grows_the_nucleus_where_it_starts_or_makes_a_new_one():
    labels = two_nuclei()
    grown, _ = apply_gesture(labels, {"tool": "paint", "points": [[20, 15], [20, 30]], "radius": 2})
    assert count(grown) == 2 and grown[20, 28] == grown[20, 15]
    new, _ = apply_gesture(labels, {"tool": "paint", "points": [[3, 3]], "radius": 2.4})
    assert count(new) == 3 and new[3, 3] > 0


def test_erase_removes_pixels_of_the_nucleus_where_it_starts():
    labels = two_nuclei()
    new, what = apply_gesture(
        labels, {"tool": "erase", "points": [[20, 15], [20, 45]], "radius": 2}
    )
    assert what == "erase" and new[20, 15] == 0 and new[20, 30] == 0
    assert new[20, 45] > 0  # the other nucleus is kept: the stroke started on nucleus 1


@pytest.mark.parametrize(
    "gesture, message",
    [
        ({"tool": "lasso", "points": [[1, 1]]}, "gesture tool"),
        ({"tool": "outline", "points": [[1, 1], [2, 2]]}, "at least 3 points"),
        ({"tool": "split", "points": "here"}, "gesture points"),
        ({"tool": "delete", "points": [[float("nan"), 1]]}, "not finite"),
    ],
)
def test_malformed_gestures_are_refused_naming_the_problem(gesture, message):
    with pytest.raises(InputError, match=message):
        apply_gesture(two_nuclei(), gesture)


def test_correction_applies_undoes_and_redoes_gestures():
    rgb = np.zeros((40, 60, 3), np.uint8)
    correction = Correction.start(two_nuclei(), rgb, source="model")
    outline = {"tool": "outline", "points": [[2, 25], [2, 35], [10, 35]], "seq": 4}
    assert correction.handle(outline) is None
    assert correction.history.count == 3 and correction.seq == 4
    data = correction.component_data()
    assert data["count"] == 3 and data["can_undo"] and not data["can_redo"]
    assert data["seq"] == 4 and data["width"] == 60 and data["height"] == 40
    assert np.array_equal(decode(data["labels"]), correction.labels)
    assert data["image"].startswith("data:image/png;base64,") and data["image_id"]
    assert correction.component_data(with_image=False)["image"] is None
    assert correction.handle({"tool": "undo", "seq": 5}) is None
    assert correction.history.count == 2 and correction.component_data()["can_redo"]
    assert correction.handle({"tool": "redo", "seq": 6}) is None
    assert correction.history.count == 3 and correction.seq == 6


def browser_labels(have: np.ndarray | None, data: dict) -> np.ndarray:
    """The labels the component holds after ``data``, as ``annotator.js`` builds them."""
    if data["labels"] is not None:
        return decode(data["labels"])
    if data["patch"] is not None:
        patched = have.copy()
        for box in data["patch"]["boxes"]:
            rows = slice(box["row"], box["row"] + box["height"])
            cols = slice(box["col"], box["col"] + box["width"])
            patched[rows, cols] = decode(box["labels"])
        return patched
    return have


def test_after_an_edit_only_the_changed_box_is_sent():
    correction = Correction.start(two_nuclei(), np.zeros((40, 60), np.uint8))
    first = correction.component_data()
    assert first["labels"] is not None and first["patch"] is None  # whole, the first time
    shown = browser_labels(None, first)
    again = correction.component_data(with_image=False)  # a rerun without an edit
    assert again["labels"] is None and again["patch"] is None
    correction.handle({"tool": "outline", "points": [[2, 40], [2, 50], [9, 50]], "seq": 1})
    data = correction.component_data(with_image=False)
    patch = data["patch"]
    assert data["labels"] is None and patch["base_id"] == first["labels_id"]
    (box,) = patch["boxes"]
    assert box["height"] * box["width"] <= 8 * 11  # the new nucleus's box, no more
    shown = browser_labels(shown, data)
    assert np.array_equal(shown, correction.labels)
    correction.handle({"tool": "undo", "seq": 2})  # an undo goes the same way
    undone = correction.component_data(with_image=False)
    assert undone["patch"] is not None
    assert np.array_equal(browser_labels(shown, undone), correction.labels)


def test_a_delete_that_renumbers_a_far_nucleus_sends_two_small_boxes():
    labels = np.zeros((600, 600), np.int32)
    labels[10:20, 10:20], labels[300:310, 300:310], labels[580:590, 580:590] = 1, 2, 3
    correction = Correction.start(labels, np.zeros((600, 600), np.uint8))
    shown = browser_labels(None, correction.component_data())
    correction.handle({"tool": "delete", "points": [[15, 15]], "seq": 1})  # 3 becomes 1
    data = correction.component_data(with_image=False)
    boxes = [
        (box["row"], box["col"], box["height"], box["width"]) for box in data["patch"]["boxes"]
    ]
    assert boxes == [(10, 10, 10, 10), (580, 580, 10, 10)]
    assert np.array_equal(browser_labels(shown, data), correction.labels)


def test_the_whole_labels_go_again_when_the_browser_says_it_missed_them():
    correction = Correction.start(two_nuclei(), np.zeros((40, 60), np.uint8))
    first = correction.component_data()
    correction.handle({"tool": "delete", "points": [[20, 15]], "seq": 1})
    correction.component_data()  # a run whose data never reached the browser
    report = {"have": first["labels_id"], "n": "mount 1"}
    data = correction.component_data(report=report)
    assert data["patch"]["base_id"] == first["labels_id"]  # from what it has
    assert np.array_equal(browser_labels(decode(first["labels"]), data), correction.labels)
    remounted = correction.component_data(report={"have": None, "n": "mount 2"})
    assert np.array_equal(decode(remounted["labels"]), correction.labels)
    assert correction.component_data(report={"have": None, "n": "mount 2"})["labels"] is None


def test_a_change_of_most_of_the_image_goes_whole():
    correction = Correction.start(two_nuclei(), np.zeros((40, 60), np.uint8))
    correction.component_data()
    everywhere = np.ones((40, 60), np.int32)  # a new start that covers the whole image
    correction.restart(everywhere, "start again from the model's nuclei")
    data = correction.component_data()
    assert data["patch"] is None and np.array_equal(decode(data["labels"]), everywhere)


def test_a_refused_edit_leaves_the_labels_and_says_why_in_one_line():
    correction = Correction.start(two_nuclei(), np.zeros((40, 60), np.uint8))
    before = correction.labels.copy()
    message = correction.handle({"tool": "split", "points": [[1, 1], [1, 5]], "seq": 1})
    assert message and "\n" not in message and correction.message == message
    assert np.array_equal(correction.labels, before) and not correction.history.can_undo
    assert correction.seq == 1  # echoed, so the component stops waiting
    assert correction.handle({"tool": "delete", "points": [[20, 15]], "seq": 2}) is None
    assert correction.message is None and correction.history.count == 1


def test_restart_is_one_undoable_step():
    correction = Correction.start(two_nuclei(), np.zeros((40, 60, 3), np.uint8))
    correction.restart(np.zeros((40, 60), np.int32), "remove all nuclei")
    assert correction.history.count == 0
    correction.handle({"tool": "undo"})
    assert correction.history.count == 2


def test_the_component_sends_the_tools_python_knows():
    """The JavaScript emits exactly the tools apply_gesture and Correction handle."""
    script = (FRONTEND / "annotator.js").read_text()
    assert 'state.send("gesture", message)' in script
    sent = set(re.findall(r'emit\(state, \{ tool: "(\w+)"', script))
    tools = script.split("const TOOLS = {", 1)[1].split("\n};", 1)[0]
    entries = re.split(r"\n  (?=\w+: \{)", tools)
    brushes = {entry.split(":")[0].strip() for entry in entries if "brush: true" in entry}
    assert "emit(state, { tool: state.tool" in script  # a stroke sends its own tool
    sent |= brushes
    sent |= set(re.findall(r'"(undo|redo)"', script))
    assert sent == set(EDIT_TOOLS) | set(HISTORY_TOOLS)
