"""What things are called on screen: architectures, metrics, scores; and one-line texts.

The engine (``nuclei_core``) keys its values by short names (``"unet"``,
``"val_dice"``, ``"dsb_score"``); this module turns them into the words on screen.
Labels are written as they read inside a sentence ("foreground IoU"); a widget
label starts with a capital (:func:`capitalised`).
"""

from __future__ import annotations

import math
from datetime import datetime

from nuclei_core.catalogue import validation_metrics

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


def capitalised(label: str) -> str:
    """A label as the start of a sentence or a widget label.

    Examples
    --------
    >>> capitalised("foreground IoU"), capitalised("DSB score")
    ('Foreground IoU', 'DSB score')
    """
    return label[:1].upper() + label[1:]


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


def run_label(run) -> str:
    """One line naming a run in a select box.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> run = SimpleNamespace(name="u", architecture="unet", status="finished",
    ...                       finished_at="2024-05-01T12:30:00+00:00", created_at=None)
    >>> run_label(run)
    'u · U-Net · 2024-05-01 12:30 UTC'
    """
    label = f"{run.name} · {architecture_label(run.architecture, short=True)}"
    label += f" · {format_date(run.finished_at or run.created_at)}"
    if run.status != "finished":
        label += f" · {run.status}"
    return label


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
    >>> from nuclei_core.metrics import evaluate_labels
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
    """``history.final_metrics_frame`` with readable architecture names.

    Examples
    --------
    >>> import pandas as pd
    >>> final_metrics_table(pd.DataFrame({"architecture": ["unet"]}))["architecture"].tolist()
    ['U-Net']
    """
    if "architecture" not in frame:
        return frame
    names = [name if isinstance(name, str) else None for name in frame["architecture"]]
    return frame.assign(architecture=[architecture_label(name, short=True) for name in names])


def format_eta(seconds) -> str:
    """Remaining time in words.

    Examples
    --------
    >>> format_eta(None), format_eta(42), format_eta(125), format_eta(7300)
    ('unknown', 'under a minute', 'about 2 min', 'about 2 h 2 min')
    """
    if seconds is None or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "unknown"
    if seconds < 60:
        return "under a minute"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60} min"


def job_progress(status: dict) -> tuple[float, str]:
    """Progress fraction in [0, 1] and the progress bar's text, from ``jobs.job_status``.

    ``epoch`` is the 1-based epoch in progress (0 before training starts).

    Examples
    --------
    >>> job_progress({"epoch": 2, "epochs": 4, "step": 5, "steps": 10, "eta_seconds": 90})
    (0.375, 'Epoch 2 of 4 · batch 5 of 10 · about 2 min left')
    >>> job_progress({"epoch": 0, "epochs": 4})
    (0.0, 'Preparing the data (epoch 1 of 4 comes next)')
    """
    epochs = max(int(status.get("epochs") or 1), 1)
    epoch = int(status.get("epoch") or 0)
    steps = int(status.get("steps") or 0)
    step = int(status.get("step") or 0)
    if epoch < 1:
        return 0.0, f"Preparing the data (epoch 1 of {epochs} comes next)"
    fraction = status.get("fraction")
    if not isinstance(fraction, (int, float)) or not math.isfinite(fraction):
        fraction = (epoch - 1 + (step / steps if steps else 0.0)) / epochs
    fraction = min(max(float(fraction), 0.0), 1.0)
    text = f"Epoch {min(epoch, epochs)} of {epochs}"
    if steps:
        text += f" · batch {step} of {steps}"
    text += f" · {format_eta(status.get('eta_seconds'))} left"
    return fraction, text
