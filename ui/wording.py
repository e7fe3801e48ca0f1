"""What things are called on screen: architectures, metrics, scores; and one-line texts.

The engine (``nuclei_core``) keys its values by short names (``"unet"``,
``"val_dice"``, ``"dsb_score"``); this module turns them into the words on screen.
Labels are written as they read inside a sentence ("foreground IoU"); a widget
label starts with a capital (:func:`capitalised`). :data:`HELP_TEXTS` holds the one
line shown on hover for each score, used by every page (:func:`help_text`,
:func:`column_config`).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import streamlit as st

from nuclei_core.registry.catalogue import validation_metrics

ARCHITECTURE_LABELS = {
    "unet": "U-Net",
    "mobilenetv2": "MobileNetV2 U-Net (the original project's model)",
}
SCORE_LABELS = {
    "pixel_accuracy": "pixel accuracy",
    "foreground_iou": "foreground IoU",
    "dice": "Dice",
    "f1": "F1 @ IoU 0.5",
    "dsb_score": "DSB score",
    "count_error": "count error",
}
"""Scores of one image (fields of ``metrics.ImageScores``), in the order shown."""
METRIC_LABELS = {
    "loss": "loss",
    "accuracy": SCORE_LABELS["pixel_accuracy"],
    "iou": SCORE_LABELS["foreground_iou"],
    "dice": SCORE_LABELS["dice"],
}
"""Per-epoch training metrics (Keras names)."""
MEAN_SCORES = ("dsb_score", "f1", "dice", "foreground_iou", "count_error")
"""The mean scores the Browse page shows for a folder, in order."""
HELP_TEXTS = {
    "dsb_score": "Data Science Bowl 2018 score: matched / (matched + missed + extra nuclei), "
    "averaged over IoU thresholds 0.5 to 0.95; 1 is perfect.",
    "f1": "Share of nuclei found right: a found nucleus counts when it overlaps a true one "
    "with IoU above 0.5 (harmonic mean of precision and recall); 1 is perfect.",
    "foreground_iou": "Overlap of the predicted and the true nucleus pixels: "
    "intersection / union, ignoring which nucleus is which; 1 is perfect.",
    "dice": "Overlap of the predicted and the true nucleus pixels: "
    "2 x intersection / (predicted + true pixels); 1 is perfect.",
    "pixel_accuracy": "Share of pixels called nucleus or background rightly; "
    "high even for poor results when nuclei are few.",
    "count_error": "Nuclei found minus true nuclei: positive = over-counted (split), "
    "negative = under-counted (merged or missed).",
    "loss": "What training minimises (cross-entropy plus 1 - Dice of nuclei and their "
    "rims); lower is better, comparable only between runs of this app.",
    "precision": "Share of the found nuclei that match a true one (IoU above 0.5).",
    "recall": "Share of the true nuclei that were found (IoU above 0.5).",
}
"""One line shown on hover, by engine name (``metrics.ImageScores`` fields, Keras names)."""
_HELP_ALIASES = {
    "accuracy": "pixel_accuracy",
    "iou": "foreground_iou",
    "abs_count_error": "count_error",
}
SPLIT_HELP = (
    "Every image of a dataset folder has a fixed split, decided by a hash of its name (or by "
    "train/ and test/ subfolders): about 10 % are test images, kept out of training and "
    "model selection; of the rest, the validation fraction picks the best epoch and the "
    "others are trained on. Only test images fairly score a model trained on this folder."
)
"""Hover help wherever a split or the validation fraction is chosen."""
SPLIT_CHOICES = {
    "all": "all images",
    "test": "test split (never trained on)",
    "val": "validation split (picks the best epoch)",
    "train": "training split",
}
"""The splits one can score on the Browse page, as the choice reads."""
SAMPLES_NOTE = (
    "The bundled sample images are all test-split images of the Data Science Bowl 2018 "
    "(BBBC038) set: no bundled model was trained on them, so every one gives a fair score."
)
"""What the bundled samples are, where they are scored."""
TRAINING_DATA_NOTE = (
    "The bundled sample images are test images of the Data Science Bowl 2018 set: training "
    "on them only shows how training works (the run splits them into its own training and "
    "validation images, and a model trained on them can no longer be scored fairly on them). "
    "For a useful model use a real dataset such as the DSB 2018 / BBBC038 `stage1_train` folder."
)
"""The caption under the Train page's dataset folder."""

SERVER_PATHS_HELP = (
    "A served app reads only its allowed folders: imports/ in its data folder (where "
    "relative paths then start), the sample images and NUCLEI_ALLOWED_ROOTS."
)
DISTANCE_HELP = (
    "A third output: each nucleus pixel's distance to the nucleus's edge, 1 at its centre. "
    "Its peaks seed one nucleus each, which separates crowded, touching nuclei (H&E tissue) "
    "better than the boundary alone."
)
"""Hover help of the Train page's distance-map option."""


_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def plain(text) -> str:
    """``text`` (a name or message a user could have chosen) escaped to show as itself in
    Streamlit's Markdown: no image, link, emphasis, colour or icon; control characters as
    spaces.

    Examples
    --------
    >>> print(plain("**big** [x](y)"))
    \\*\\*big\\*\\* \\[x\\]\\(y\\)
    """
    cleaned = "".join(char if char.isprintable() else " " for char in str(text))
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", cleaned)


def capitalised(label: str) -> str:
    """A label as the start of a sentence or a widget label.

    Examples
    --------
    >>> capitalised("foreground IoU"), capitalised("DSB score")
    ('Foreground IoU', 'DSB score')
    """
    return label[:1].upper() + label[1:]


def help_text(name: str) -> str | None:
    """The hover help of a score by engine name or on-screen label (``None`` if it has none).

    ``"val_"`` and ``"mean_"`` prefixes and a leading "Mean " are ignored, so
    one text serves a score, its mean and its validation value.

    Examples
    --------
    >>> help_text("Mean DSB score") == help_text("dsb_score") == help_text("mean_dsb_score")
    True
    >>> help_text("val_iou") == help_text("Foreground IoU"), help_text("epoch")
    (True, None)
    """
    key = str(name).strip()
    for prefix in ("val_", "mean_", "Mean ", "validation ", "training "):
        key = key.removeprefix(prefix)
    key = _HELP_ALIASES.get(key, key)
    if key not in HELP_TEXTS:
        by_label = {label.lower(): engine for engine, label in SCORE_LABELS.items()}
        by_label.update({label.lower(): engine for engine, label in METRIC_LABELS.items()})
        key = _HELP_ALIASES.get(by_label.get(key.lower(), ""), by_label.get(key.lower(), ""))
    return HELP_TEXTS.get(key)


def glossary(names) -> str:
    """Markdown list of the help texts of ``names`` (engine names), for a "what is it" box.

    Examples
    --------
    >>> print(glossary(["dice"]))
    - **Dice**: Overlap of the predicted and the true nucleus pixels: 2 x intersection / \
(predicted + true pixels); 1 is perfect.
    """
    lines = []
    for name in names:
        label = METRIC_LABELS.get(name) or SCORE_LABELS.get(name, name)
        lines.append(f"- **{capitalised(label)}**: {help_text(name)}")
    return "\n".join(lines)


def column_label(column: str) -> str:
    """The on-screen name of a table column holding a score or a per-epoch metric.

    Examples
    --------
    >>> column_label("val_iou"), column_label("loss"), column_label("dsb_score")
    ('validation foreground IoU', 'training loss', 'DSB score')
    >>> column_label("mean_f1"), column_label("best epoch")
    ('mean F1 @ IoU 0.5', 'best epoch')
    """
    if column.startswith("val_") and column[4:] in METRIC_LABELS:
        return f"validation {METRIC_LABELS[column[4:]]}"
    if column in METRIC_LABELS:
        return f"training {METRIC_LABELS[column]}"
    if column.startswith("mean_") and column[5:] in SCORE_LABELS:
        return f"mean {SCORE_LABELS[column[5:]]}"
    return SCORE_LABELS.get(column, column.replace("_", " "))


def column_config(columns) -> dict:
    """``st.dataframe`` column settings: the shared label and, where known, the hover help.

    The frame keeps its engine column names (a CSV download keeps them too).

    Examples
    --------
    >>> config = column_config(["id", "dsb_score"])
    >>> config["dsb_score"]["label"], config["dsb_score"]["help"] == help_text("dsb_score")
    ('DSB score', True)
    >>> config["id"].get("help") is None
    True
    """
    return {
        column: st.column_config.Column(column_label(column), help=help_text(column))
        for column in columns
    }


def architecture_label(architecture: str | None, short: bool = False) -> str:
    """Readable architecture name; ``short`` leaves out the remark in brackets.

    Examples
    --------
    >>> architecture_label("unet"), architecture_label(None)
    ('U-Net', 'unknown')
    >>> architecture_label("mobilenetv2", short=True)
    'MobileNetV2 U-Net'
    """
    if not architecture:
        return "unknown"
    label = ARCHITECTURE_LABELS.get(architecture, architecture)
    return label.split(" (")[0] if short else label


def format_date(text: str | None) -> str:
    """``2024-05-01 12:30 UTC`` from an ISO-8601 timestamp (``"unknown"`` when missing).

    Examples
    --------
    >>> format_date("2024-05-01T12:30:10+00:00")
    '2024-05-01 12:30 UTC'
    """
    if not text:
        return "unknown"
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(text)


LABEL_NAME_CHARACTERS = 40  # a select box shows the start of its label: the name, cut here


def run_label(run) -> str:
    """One line naming a run in a select box: its name first (long names cut, so a narrow
    box still shows the name), then architecture, date, status and whose it is.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> run = SimpleNamespace(name="u", architecture="unet", status="finished",
    ...                       finished_at="2024-05-01T12:30:00+00:00", created_at=None)
    >>> run_label(run)
    'u · U-Net · 2024-05-01 12:30 UTC'
    >>> run_label(SimpleNamespace(**{**vars(run), "name": "n" * 60, "owner": "ada"}))[38:]
    'n… · U-Net · 2024-05-01 12:30 UTC · ada'
    """
    name = run.name
    if len(name) > LABEL_NAME_CHARACTERS:
        name = name[: LABEL_NAME_CHARACTERS - 1] + "…"
    label = f"{name} · {architecture_label(run.architecture, short=True)}"
    label += f" · {format_date(run.finished_at or run.created_at)}"
    if run.status != "finished":
        label += f" · {run.status}"
    if getattr(run, "owner", None):
        label += f" · {run.owner}"
    return label


def file_name(run) -> str:
    """The name of a run's model file without its server folder (what a signed-in user is
    shown: no absolute server paths).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> file_name(SimpleNamespace(model_path="/srv/data/models/u-1.keras")), file_name(
    ...     SimpleNamespace(model_path=None))
    ('u-1.keras', 'none')
    """
    return Path(run.model_path).name if run.model_path else "none"


def model_caption(run) -> str:
    """Architecture and date of a model, as under its name in the sidebar.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model_caption(SimpleNamespace(architecture="unet", finished_at=None, created_at=None))
    'U-Net · unknown'
    """
    date = format_date(run.finished_at or run.created_at)
    return f"{architecture_label(run.architecture)} · {date}"


def session_model_note(default_run) -> str:
    """The sidebar's note that a model switch applies to this browser session only.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> session_model_note(SimpleNamespace(name="default"))
    'The switch applies to this browser session only; new sessions start with default.'
    """
    note = "The switch applies to this browser session only"
    return note + (f"; new sessions start with {default_run.name}." if default_run else ".")


def validation_line(run, separator: str = " · ") -> str:
    """The run's validation metrics in one line (``""`` when it recorded none).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> validation_line(SimpleNamespace(final_metrics={"val_dice": 0.81, "val_iou": 0.7}))
    'Dice 0.810 · Foreground IoU 0.700'
    """
    return separator.join(
        f"{capitalised(METRIC_LABELS[metric])} {value:.3f}"
        for metric, value in validation_metrics(run).items()
    )


def score_items(scores) -> list[tuple[str, str]]:
    """``(label, text)`` of the six scores of one image (``metrics.ImageScores``).

    Examples
    --------
    >>> import numpy as np
    >>> from nuclei_core.evaluation.metrics import evaluate_labels
    >>> labels = np.array([[1, 0], [0, 2]])
    >>> dict(score_items(evaluate_labels(labels, labels)))["Count error"]
    '+0'
    """
    values = scores.as_dict()
    return [
        (capitalised(label), f"{values[key]:+d}" if key == "count_error" else f"{values[key]:.3f}")
        for key, label in SCORE_LABELS.items()
    ]


def mean_score_items(summary: dict) -> list[tuple[str, str]]:
    """``(label, text)`` of the mean scores of a folder (``metrics.summarize``'s dict).

    Examples
    --------
    >>> summary = {"mean_dsb_score": 0.5, "mean_f1": 0.75, "mean_dice": 0.8,
    ...            "mean_foreground_iou": 0.7, "mean_abs_count_error": 1.25}
    >>> mean_score_items(summary)[-1]
    ('Mean count error', '1.2 nuclei')
    """
    items = []
    for key in MEAN_SCORES:
        if key == "count_error":
            text = f"{summary['mean_abs_count_error']:.1f} nuclei"
        else:
            text = f"{summary[f'mean_{key}']:.3f}"
        items.append((f"Mean {SCORE_LABELS[key]}", text))
    return items


def final_metrics_table(frame):
    """``history.final_metrics_frame`` as shown: readable architectures and metric names.

    The metrics are those of each run's best epoch; ``val_iou`` becomes
    "validation foreground IoU", ``loss`` "training loss" (:func:`column_label`).

    Examples
    --------
    >>> import pandas as pd
    >>> table = final_metrics_table(pd.DataFrame({"architecture": ["unet"], "val_loss": [0.2]}))
    >>> table.columns.tolist(), table["architecture"].tolist()
    (['architecture', 'validation loss'], ['U-Net'])
    """
    if "architecture" in frame:
        names = [name if isinstance(name, str) else None for name in frame["architecture"]]
        frame = frame.assign(architecture=[architecture_label(name, short=True) for name in names])
    return frame.rename(columns=column_label)


def gallery_note(shown: int, chosen: int, worst_first: bool = True) -> str:
    """The line over the gallery: how many images it shows of those chosen, and which.

    Examples
    --------
    >>> gallery_note(24, 28)
    'The 24 worst of 28 images by DSB score; raise "Images shown" to see the rest.'
    >>> gallery_note(5, 5, worst_first=False)
    'All 5 images, best DSB score first.'
    """
    which = "worst" if worst_first else "best"
    if shown >= chosen:
        return f"All {chosen} images, {which} DSB score first."
    more = 'raise "Images shown" to see the rest.'
    return f"The {shown} {which} of {chosen} images by DSB score; {more}"
