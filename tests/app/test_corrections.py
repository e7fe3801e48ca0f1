"""AppTest tests of the Segment page's correction mode (``ui/annotator``).

AppTest runs no JavaScript: a gesture is handed to the image's ``Correction`` (what the
component's callback does with the trigger value), then the page is run again. The
browser side is tested in ``tests/browser/``.
"""

from __future__ import annotations

import json

import pytest
from support import downloads_of, png_bytes, texts
from support import start_app as start

from nuclei_core.locations import user_datasets_folder
from ui.annotator import COMPONENT_KEY, STORE_KEY

OUTLINE = {"tool": "outline", "points": [[2, 2], [2, 12], [12, 12], [12, 2]], "seq": 1}


def upload(at, make_sample, name="cells.png"):
    image, _ = make_sample((64, 64), seed=3)
    at.file_uploader(key="segment_upload").upload(name, png_bytes(image), "image/png")
    return at.run()


def metric(at, label: str) -> int:
    values = [m.value for m in at.metric if m.label == label]
    assert values, [m.label for m in at.metric]
    return int(values[0])


def the_correction(at):
    store = at.session_state[STORE_KEY]
    assert len(store) == 1
    return next(iter(store.values()))


def annotators(at) -> list:
    return [
        element
        for element in at.get("bidi_component")
        if "nuclei_annotator" in element.proto.component_name
    ]


@pytest.mark.usefixtures("active_model")
def test_correct_mode_shows_the_annotator_and_an_edit_changes_the_count(make_sample):
    at = upload(start("pages/segment.py"), make_sample)
    assert not at.exception and not at.error, texts(at.error)
    found = metric(at, "Nuclei found")
    assert not annotators(at)

    at.toggle(key="segment_correct").set_value(True).run()
    assert not at.exception and not at.error, texts(at.error)
    assert metric(at, "Nuclei corrected") == found
    assert len(annotators(at)) == 1
    correction = the_correction(at)
    if correction.labels[2:13, 2:13].all():  # an untrained model may cover the corner
        correction.handle({"tool": "erase", "points": [[7, 7]], "radius": 3, "seq": 1})
    before = correction.history.count
    assert correction.handle(OUTLINE | {"seq": 2}) is None

    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert metric(at, "Nuclei corrected") == before + 1 == correction.history.count
    assert len(at.dataframe[0].value) == before + 1  # measurements of the corrected labels
    csv = downloads_of(at)["Measurements (CSV)"][1].decode()
    assert csv.count("\n") == before + 2  # the download too: header + one row per nucleus
    correction.handle({"tool": "merge", "points": [[7, 7]], "seq": 3})
    at.run()
    assert texts(at.warning) == "merge: select two or more nuclei first"
    assert metric(at, "Nuclei corrected") == before + 1
    at.run()
    assert not at.warning  # said once

    at.button(key="annotator_clear").click().run()
    assert metric(at, "Nuclei corrected") == 0
    at.button(key="annotator_restart").click().run()
    assert metric(at, "Nuclei corrected") == found


def test_without_a_model_one_annotates_from_scratch_and_saves(make_sample):
    at = upload(start("pages/segment.py"), make_sample, name="tile 7.png")
    assert not at.exception and not at.error, texts(at.error)
    assert at.toggle(key="segment_correct").value is True
    assert metric(at, "Nuclei corrected") == 0
    assert "no model" in texts(at.caption)
    assert the_correction(at).handle(OUTLINE) is None
    at.run()
    assert metric(at, "Nuclei corrected") == 1

    assert at.selectbox(key="annotator_dataset").options == ["New dataset…"]
    at.text_input(key="annotator_new_dataset").set_value("my cells")
    at.selectbox(key="annotator_kind_tile 7.png").set_value("stained")
    at.button(key="annotator_save").click().run()
    assert not at.exception and not at.error, texts(at.error)
    folder = user_datasets_folder() / "my_cells"
    assert str(folder) in texts(at.success)
    mask = folder / "masks" / "tile_7.png"
    assert (folder / "inputs" / "tile_7.png").is_file() and mask.is_file()
    record = json.loads((folder / "dataset.json").read_text())
    entry = record["images"]["tile_7"]
    assert entry["kind"] == "stained" and entry["source_model"] is None
    assert entry["n_nuclei"] == 1

    at.run()
    assert at.selectbox(key="annotator_dataset").options == ["my_cells", "New dataset…"]
    saved = mask.read_bytes()
    at.selectbox(key="annotator_dataset").set_value("New dataset…").run()
    at.text_input(key="annotator_new_dataset").set_value("my cells")  # the same folder again
    at.button(key="annotator_save").click().run()
    assert "A dataset named my_cells exists already" in texts(at.warning)
    assert not at.success and mask.read_bytes() == saved

    at.selectbox(key="annotator_dataset").set_value("my_cells").run()  # same image name
    assert "my_cells holds an image named tile_7 already." in texts(at.caption)
    assert at.button(key="annotator_save").disabled  # asks before replacing
    the_correction(at).handle(
        OUTLINE | {"points": [[40, 40], [40, 52], [52, 52], [52, 40]], "seq": 9}
    )
    at.checkbox(key="annotator_replace_my_cells_tile_7").check().run()
    at.button(key="annotator_save").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert mask.read_bytes() != saved and "with 2 nuclei" in texts(at.success)
    at.text_input(key="annotator_image_name_tile 7.png").set_value("tile 8").run()
    assert not at.button(key="annotator_save").disabled  # a new name: nothing replaced


@pytest.mark.usefixtures("active_model")
def test_saving_refuses_an_empty_image_and_names_the_model(make_sample):
    at = upload(start("pages/segment.py"), make_sample)
    at.toggle(key="segment_correct").set_value(True).run()
    at.button(key="annotator_clear").click().run()
    at.text_input(key="annotator_new_dataset").set_value("set")
    at.button(key="annotator_save").click().run()
    assert not at.exception and not at.success
    assert texts(at.warning).startswith("labels: no nucleus")  # one line
    the_correction(at).handle(OUTLINE)
    at.run()
    at.button(key="annotator_save").click().run()
    assert not at.exception and not at.error, texts(at.error)
    entry = json.loads((user_datasets_folder() / "set" / "dataset.json").read_text())
    assert entry["images"]["cells"]["source_model"] == "tiny"
    assert entry["images"]["cells"]["n_nuclei"] == 1
    assert COMPONENT_KEY in at.session_state


def test_the_gesture_callback_applies_the_trigger_value(make_sample, monkeypatch):
    """``_on_gesture`` reads the component's trigger value and applies it to that image."""
    import ui.annotator as annotator

    at = upload(start("pages/segment.py"), make_sample)
    correction = the_correction(at)
    image_key = next(iter(at.session_state[STORE_KEY]))
    state = {STORE_KEY: {image_key: correction}, COMPONENT_KEY: {"gesture": OUTLINE}}
    monkeypatch.setattr(annotator.st, "session_state", state)
    annotator._on_gesture(image_key)
    assert correction.history.count == 1
    annotator._on_gesture(("another", "image"))  # unknown image: nothing happens
    assert correction.history.count == 1


def test_unsaved_corrections_come_back_after_a_reload_until_they_are_saved(make_sample):
    """Every edit keeps a draft in the user's data folder; a new session (a reload) on the
    same image starts from it and says so; saving removes it."""
    import ui.annotator as annotator

    at = upload(start("pages/segment.py"), make_sample)
    correction = the_correction(at)
    image_key = next(iter(at.session_state[STORE_KEY]))
    assert correction.handle(OUTLINE) is None
    annotator.keep_draft(image_key, correction)  # what the gesture callback does
    drafts = list((user_datasets_folder().parent / "drafts").glob("*.npz"))
    assert len(drafts) == 1 and correction.component_data()["unsaved"]

    again = upload(start("pages/segment.py"), make_sample)  # a reload: a new session
    assert not again.exception, again.exception
    assert metric(again, "Nuclei corrected") == 1
    assert annotator.DRAFT_TEXT in texts(again.warning)
    again.text_input(key="annotator_new_dataset").set_value("kept")
    again.button(key="annotator_save").click().run()
    assert not again.exception and not again.error, texts(again.error)
    assert not drafts[0].exists()
    assert not the_correction(again).component_data()["unsaved"]
    assert metric(upload(start("pages/segment.py"), make_sample), "Nuclei corrected") == 0
