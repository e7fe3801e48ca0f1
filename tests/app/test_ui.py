"""Tests of the app's ``ui`` package apart from Streamlit: labels, texts, messages, pictures.

The pages themselves are tested with AppTest in ``test_app.py``.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from nuclei_core.evaluation.metrics import evaluate_labels
from nuclei_core.io.render import ERROR_COLOURS
from ui import charts, messages, pictures, progress, threshold, uploads, wording


def make_run(**fields):
    defaults = {
        "name": "u",
        "architecture": "unet",
        "status": "finished",
        "is_active": False,
        "message": None,
        "best_epoch": None,
        "final_metrics": {},
        "model_path": None,
        "finished_at": "2024-05-01T12:30:00+00:00",
        "created_at": "2024-04-01T08:00:00+00:00",
    }
    return SimpleNamespace(**{**defaults, **fields})


def test_labels_agree_between_training_metrics_and_image_scores():
    truth = np.eye(2, dtype=int)
    assert set(wording.SCORE_LABELS) <= set(evaluate_labels(truth, truth).as_dict())
    for metric, score in (("accuracy", "pixel_accuracy"), ("iou", "foreground_iou")):
        assert wording.METRIC_LABELS[metric] == wording.SCORE_LABELS[score]
    assert wording.capitalised(wording.SCORE_LABELS["dsb_score"]) == "DSB score"


def test_score_items_label_and_format_the_six_scores():
    truth = np.array([[1, 0], [0, 2]])
    items = wording.score_items(evaluate_labels(truth, np.array([[1, 0], [0, 0]])))
    assert [label for label, _ in items] == [
        "Pixel accuracy",
        "Foreground IoU",
        "Dice",
        "F1 @ IoU 0.5",
        "DSB score",
        "Count error",
    ]
    assert dict(items)["Count error"] == "-1" and dict(items)["Pixel accuracy"] == "0.750"


def test_mean_score_items_use_the_shared_labels():
    summary = {
        "mean_dsb_score": 0.5,
        "mean_f1": 0.75,
        "mean_dice": 0.8,
        "mean_foreground_iou": 0.7,
        "mean_abs_count_error": 1.25,
    }
    assert wording.mean_score_items(summary) == [
        ("Mean DSB score", "0.500"),
        ("Mean F1 @ IoU 0.5", "0.750"),
        ("Mean Dice", "0.800"),
        ("Mean foreground IoU", "0.700"),
        ("Mean count error", "1.2 nuclei"),
    ]


def test_run_texts():
    run = make_run(architecture="mobilenetv2", status="stopped", final_metrics={"val_loss": 0.25})
    assert wording.run_label(run) == "u · MobileNetV2 U-Net · 2024-05-01 12:30 UTC · stopped"
    assert wording.model_caption(run) == (
        "MobileNetV2 U-Net (the original project's model) · 2024-05-01 12:30 UTC"
    )
    assert wording.validation_line(run) == "Loss 0.250"
    assert wording.validation_line(make_run()) == ""
    assert wording.format_date("yesterday") == "yesterday"
    assert wording.architecture_label("resnet") == "resnet"


def test_final_metrics_table_names_architectures():
    frame = pd.DataFrame({"run": ["a", "b"], "architecture": ["mobilenetv2", None]})
    table = wording.final_metrics_table(frame)
    assert table["architecture"].tolist() == ["MobileNetV2 U-Net", "unknown"]
    assert frame["architecture"][0] == "mobilenetv2"  # the input is kept
    assert wording.final_metrics_table(pd.DataFrame()).empty


@pytest.mark.parametrize(
    "status, expected",
    [
        ({"epoch": 3, "epochs": 2, "fraction": 1.5}, (1.0, "Epoch 2 of 2 · unknown left")),
        ({"epoch": 1, "epochs": 0}, (0.0, "Epoch 1 of 1 · unknown left")),
        (
            {"epoch": 1, "epochs": 2, "step": 1, "steps": 4, "eta_seconds": 7300},
            (0.125, "Epoch 1 of 2 · batch 1 of 4 · about 2 h 2 min left"),
        ),
    ],
)
def test_job_progress(status, expected):
    assert progress.job_progress(status) == expected


def test_training_outcome(tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(b"x")
    assert messages.training_outcome(None) is None
    assert messages.training_outcome(make_run(status="running", is_active=True)) is None
    assert messages.training_outcome(make_run(status="failed")) == (
        "error",
        "Training run u failed: no message",
    )
    finished = make_run(model_path=str(model), best_epoch=4, final_metrics={"val_dice": 0.5})
    assert messages.training_outcome(finished) == (
        "success",
        "Training run **u** finished (best epoch 4): Dice 0.500",
    )
    assert messages.training_outcome(make_run(model_path=str(model))) == (
        "success",
        "Training run **u** finished.",
    )
    assert messages.training_outcome(make_run(status="stopped", message="stopped early")) == (
        "info",
        "Training run u stopped: stopped early",
    )


def test_display_size_keeps_wide_strips_visible():
    assert pictures.display_size(np.zeros((3, 5000, 3), np.uint8)).shape == (1, 1460, 3)
    assert pictures.display_size(np.zeros((4000, 100, 3), np.uint8)).shape == (2048, 51, 3)
    small = np.zeros((10, 20, 3), np.uint8)
    assert pictures.display_size(small).shape == small.shape
    assert pictures.error_legend_html().count("missed nucleus (false negative)") == 1


def test_upload_types():
    assert uploads.IMAGE_TYPES == ("png", "jpg", "jpeg", "tif", "tiff")
    assert "zip" in uploads.GROUND_TRUTH_TYPES and uploads.MODEL_TYPES == ("keras", "zip")


# --------------------------------------------------------------------------- rough edges


def test_every_score_and_metric_on_screen_has_one_help_text():
    for key, label in {**wording.SCORE_LABELS, **wording.METRIC_LABELS}.items():
        text = wording.help_text(key)
        assert text and "\n" not in text, key
        assert wording.help_text(wording.capitalised(label)) == text  # by on-screen label
        assert wording.help_text(f"val_{key}") == wording.help_text(f"Mean {label}") == text
    assert wording.help_text("seconds") is None


def test_final_metrics_table_uses_the_shared_labels():
    frame = pd.DataFrame(
        {"run": ["a"], "best epoch": [3], "val_loss": [0.2], "loss": [0.1], "val_iou": [0.8]}
    )
    table = wording.final_metrics_table(frame)
    assert table.columns.tolist() == [
        "run",
        "best epoch",
        "validation loss",
        "training loss",
        "validation foreground IoU",
    ]
    config = wording.column_config(table.columns)
    assert config["validation foreground IoU"]["help"] == wording.HELP_TEXTS["foreground_iou"]


def test_threshold_note_says_why_the_count_does_not_move():
    rng = np.random.default_rng(0)
    sure = np.where(rng.random((64, 64)) > 0.5, 0.999, 0.001).astype(np.float32)
    probabilities = np.stack([sure, sure], axis=-1)
    assert threshold.uncertain_share(probabilities) == 0.0
    assert "changes almost nothing" in threshold.threshold_note(probabilities)
    ramp = np.linspace(0, 1, 101, dtype=np.float32)[None, :]
    assert threshold.uncertain_share(ramp) == pytest.approx(79 / 101)
    assert threshold.threshold_note(ramp).startswith("78.2 % of the pixels")
    with pytest.raises(ValueError, match="probabilities"):
        threshold.uncertain_share(np.zeros(5))
    with pytest.raises(ValueError, match="band"):
        threshold.uncertain_share(ramp, band=(0.1, 2.0))


def test_gallery_note_says_when_images_are_left_out():
    assert wording.gallery_note(24, 28) == (
        'The 24 worst of 28 images by DSB score; raise "Images shown" to see the rest.'
    )
    assert wording.gallery_note(30, 28, worst_first=False) == "All 28 images, best DSB score first."


def test_gallery_pictures_are_squares_of_one_size():
    shapes = [(603, 1272, 3), (256, 256, 3), (520, 40, 3), (30, 60, 3)]
    squares = [pictures.square_picture(np.full(shape, 7, np.uint8)) for shape in shapes]
    assert {square.shape for square in squares} == {(256, 256, 3)}
    wide = squares[0]
    assert wide[0, 128].tolist() == list(pictures.MAT_COLOUR)  # mat above a wide picture
    assert wide[128, 128].tolist() == [7, 7, 7]


@pytest.mark.parametrize(
    ("epochs", "ticks"), [([1], [1]), ([1, 2, 3], [1, 2, 3]), (range(1, 41), list(range(1, 41, 4)))]
)
def test_epoch_axis_shows_whole_epochs(epochs, ticks):
    axis = charts.epoch_axis(epochs).to_dict()
    assert axis["axis"]["format"] == "d" and axis["axis"]["values"] == ticks
    history = pd.DataFrame(
        {"run": "u", "run_id": 1, "epoch": list(epochs), "metric": "loss", "split": "training",
         "value": 0.5}
    )  # fmt: skip
    encoding = charts.curves_chart(history, "loss").to_dict()["layer"][0]["encoding"]
    assert encoding["x"]["axis"]["values"] == ticks


def _lab(rgb) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(rgb, float).reshape(1, 1, 3) / 255)[0, 0]


def test_error_colours_stand_apart_from_stained_tissue_and_from_each_other():
    stains = {"hematoxylin": (90, 60, 150), "dark nuclei": (60, 40, 110), "eosin": (230, 150, 200)}
    legend = pictures.error_legend_html()
    colours = [rgb for _, rgb in ERROR_COLOURS.values()]
    for rgb in colours:
        assert "#{:02x}{:02x}{:02x}".format(*rgb) in legend
        for stain, tissue in stains.items():
            assert np.linalg.norm(_lab(rgb) - _lab(tissue)) > 40, (rgb, stain)
    for first, second in itertools.combinations(colours, 2):
        assert np.linalg.norm(_lab(first) - _lab(second)) > 40


def test_a_name_someone_chose_shows_as_itself_in_markdown():
    """A model or dataset name is Markdown in the sidebar and captions: no image fetched, no
    link, no emphasis, no colour or icon, no HTML."""
    from markdown_it import MarkdownIt

    name = "![t](http://host/x.png) [text](http://host) **b** :red[x] :material/home: <b>x</b>"
    html = MarkdownIt("commonmark").render(wording.plain(name))
    assert "<img" not in html and "<a " not in html and "<strong>" not in html
    assert "<b>" not in html and "&lt;b&gt;" in html
    shown = MarkdownIt("commonmark").renderInline(wording.plain(name))
    assert shown.replace("&lt;", "<").replace("&gt;", ">") == name
    assert wording.plain("tab\there\x1b[31m") == "tab here \\[31m"
