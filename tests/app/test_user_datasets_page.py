"""Tests of the Train page's "Your corrected images" (`ui/user_datasets.py`), with AppTest:
the user datasets with their thumbnails, removing an image, and the fine-tune form.

Images are saved through the engine (``nuclei_core.datasets.user_write``), as the Segment page
does; ``jobs.start_training`` is replaced by a recorder, so no training process starts.
"""

from __future__ import annotations

import os
import shutil

import pytest
from support import app_page, start_app, texts
from synthetic import make_nuclei

from nuclei_core import jobs
from nuclei_core.datasets.user_read import dataset_images
from nuclei_core.datasets.user_write import remove_training_image, save_training_image
from nuclei_core.errors import NucleiError
from nuclei_core.jobs.lock import acquire_lock
from nuclei_core.registry.cards import write_card

TIMEOUT = 60  # seconds per script run; importing TensorFlow is slow on a loaded machine
PAGE = app_page("train")


def start() -> object:
    return start_app(PAGE, TIMEOUT)


@pytest.fixture
def base_model(registry, tiny_model_file, fresh_environment):
    """The tiny U-Net with a card saying its architecture, registered and made active."""
    path = fresh_environment / "base.keras"
    shutil.copyfile(tiny_model_file, path)
    card = {
        "name": "base",
        "architecture": "unet",
        "model": {"architecture": "unet", "depth": 2, "base_filters": 4},
    }
    write_card(path, card)
    run = registry.register_model_card(card, path, None)
    registry.set_active_model(run.id)
    return run


@pytest.fixture
def started(monkeypatch):
    """Configs sent to ``jobs.start_training``, recorded instead of started."""
    sent = []

    def record(config, registry=None, owner=None):
        sent.append(config)
        raise NucleiError("recorded instead of started")

    monkeypatch.setattr(jobs, "start_training", record)
    return sent


def captions(at) -> list[str]:
    return [caption for element in at.get("image") for caption in element.captions]


def save_two(source_model=None) -> None:
    for seed, name in ((1, "first tile.png"), (2, "second")):
        image, labels = make_nuclei((64, 64), n_nuclei=4, seed=seed)
        save_training_image("my cells", name, image, labels, "fluorescence", source_model)


def submit(at):
    next(button for button in at.get("form_submit_button") if "fine-tun" in button.label).click()
    return at.run()


def test_without_corrected_images_the_page_says_how_to_make_them():
    at = start()
    assert "Your corrected images" in texts(at.header)
    assert "No corrected images yet" in texts(at.info)
    assert not [b for b in at.get("form_submit_button") if "fine-tun" in b.label]


def test_saved_images_are_shown_as_thumbnails_and_one_can_be_removed(base_model, fresh_environment):
    save_two(source_model=base_model.model_path)
    at = start()
    assert not at.error, texts(at.error)
    assert "my_cells" in texts(at.subheader)
    assert "2 images" in texts(at.caption)
    assert captions(at) == [
        "first_tile · fluorescence · 4 nuclei · base",
        "second · fluorescence · 4 nuclei · base",
    ]
    first = dataset_images("my cells")[0]
    remove = at.button(key="user_remove_my_cells_first_tile")
    assert remove.label == "Remove first_tile"  # the confirming button, inside the popover
    remove.click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert "Removed first_tile from my_cells." in texts(at.success)
    assert not first.image_path.exists() and not first.mask_path.exists()
    assert captions(at) == ["second · fluorescence · 4 nuclei · base"]
    assert [image.stem for image in dataset_images("my cells")] == ["second"]


def test_a_removed_image_comes_back_with_undo(base_model):
    save_two(source_model=base_model.model_path)
    first = dataset_images("my cells")[0]
    at = start()
    at.button(key="user_remove_my_cells_first_tile").click().run()
    assert len(captions(at)) == 1
    at.button(key="user_undo_remove").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert "Put first_tile back into my_cells." in texts(at.success)
    assert dataset_images("my cells")[0] == first  # same files, kind, count and source model
    assert captions(at)[0] == "first_tile · fluorescence · 4 nuclei · base"
    assert "user_undo_remove" not in [button.key for button in at.button]


def test_removing_an_image_another_session_removed_says_so(base_model):
    save_two()
    at = start()
    assert "drawn from scratch" in " ".join(captions(at))
    remove_training_image("my cells", "second")  # another browser session
    at.button(key="user_remove_my_cells_second").click().run()
    assert not at.exception
    assert "holds no image 'second'" in texts(at.error)
    assert len(captions(at)) == 1


def test_fine_tune_form_starts_a_job_from_the_active_model_on_the_dataset(
    base_model, started, fresh_environment
):
    save_two()
    save_training_image("other", "x", *make_nuclei((64, 64), seed=3), "fluorescence")
    at = start()
    assert "Fine-tune the active model" in texts(at.subheader)
    assert at.number_input(key="finetune_minutes").value == 10
    at.selectbox(key="finetune_dataset").set_value("my_cells")
    at.number_input(key="finetune_minutes").set_value(3)
    at.text_input(key="finetune_name").set_value("tuned on mine")
    submit(at)
    assert not at.exception
    assert "recorded instead of started" in texts(at.error)
    (config,) = started
    assert config.base_model == base_model.model_path
    assert config.data == str(fresh_environment / "data" / "datasets" / "my_cells")
    assert config.time_budget_minutes == 3.0
    assert config.name == "tuned on mine"
    assert config.split == "holdout"


def test_fine_tune_minutes_are_held_between_1_and_240(base_model):
    save_two()
    at = start()
    minutes = at.number_input(key="finetune_minutes")
    assert (minutes.min, minutes.max) == (1, 240)


def test_fine_tune_is_refused_without_an_active_model(started):
    save_two()
    at = start()
    submit(at)
    assert "No active model to fine-tune" in texts(at.error)
    assert started == []


def test_fine_tune_is_refused_on_an_empty_dataset(base_model, started):
    save_two()
    remove_training_image("my cells", "first_tile")
    remove_training_image("my cells", "second")
    at = start()
    assert "This dataset holds no image." in texts(at.info)
    submit(at)
    assert "holds no image to fine-tune on" in texts(at.error)
    assert started == []


def test_a_finished_fine_tune_run_is_made_active_in_one_click(
    base_model, registry, tiny_model_file
):
    save_two()
    run = registry.create_run("tuned", "unet", {"base_model": "base"}, "my_cells")
    registry.set_status(run.id, "running")
    registry.set_status(run.id, "finished")
    registry.update_run(run.id, model_path=str(tiny_model_file))
    at = start()
    assert "tuned" in texts(at.success)
    at.button(key="train_activate").click().run()
    assert not at.exception
    assert at.session_state["session_model"][0] == run.id
    assert "tuned" in texts(at.sidebar.markdown)


def test_fine_tune_form_queues_while_a_job_runs(base_model, registry):
    save_two()
    fd = acquire_lock(5.0)
    assert fd is not None
    run = registry.create_run("busy", "unet", {"epochs": 5}, "data", status="running")
    registry.set_status(run.id, "running", pid=os.getpid())
    try:
        at = start()
        assert "Training busy" in texts(at.subheader)
        assert len(captions(at)) == 2  # the images stay listed
        labels = [button.label for button in at.get("form_submit_button")]
        assert "Queue fine-tuning (starts when the running job ends)" in labels
    finally:
        registry.set_status(run.id, "failed", message="test over")
        os.close(fd)
