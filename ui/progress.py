"""What a running job's progress bar reads: its fraction and its line of text.

:func:`job_progress` turns the progress file of a training job
(:mod:`nuclei_core.jobs.worker`) into the Train page's bar: epochs for a run
limited by epochs, minutes for one limited by its time budget (a fine-tune).
"""

from __future__ import annotations

import math


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
    >>> job_progress({"epoch": 2, "epochs": 4, "stop_requested": True})[1] == STOPPING_TEXT
    True

    A run that its time budget ends (a fine-tune) counts minutes, not epochs:

    >>> job_progress({"epoch": 7, "epochs": 100000, "budget_minutes": 10, "fraction": 0.45,
    ...               "training_seconds": 270, "step": 3, "steps": 16, "eta_seconds": 330})
    (0.45, 'Minute 4.5 of 10 · epoch 7 · about 6 min left')
    """
    epochs = max(int(status.get("epochs") or 1), 1)
    epoch = int(status.get("epoch") or 0)
    steps = int(status.get("steps") or 0)
    step = int(status.get("step") or 0)
    if status.get("stop_requested"):
        return _fraction(status, epoch, epochs, step, steps), STOPPING_TEXT
    budget = status.get("budget_minutes")
    if epoch < 1:
        first = "training" if budget else f"epoch 1 of {epochs}"
        return 0.0, f"Preparing the data ({first} comes next)"
    if budget:
        minutes = float(status.get("training_seconds") or 0.0) / 60
        text = f"Minute {minutes:.1f} of {budget:g} · epoch {epoch}"
        text += f" · {format_eta(status.get('eta_seconds'))} left"
        return _fraction(status, epoch, epochs, step, steps), text
    fraction = _fraction(status, epoch, epochs, step, steps)
    text = f"Epoch {min(epoch, epochs)} of {epochs}"
    if steps:
        text += f" · batch {step} of {steps}"
    text += f" · {format_eta(status.get('eta_seconds'))} left"
    return fraction, text


STOPPING_TEXT = (
    "Stopping… the current batch ends, then the best complete epoch is saved "
    "(an epoch cut short is not recorded)."
)


def _fraction(status: dict, epoch: int, epochs: int, step: int, steps: int) -> float:
    """The job's progress fraction in [0, 1] (from the worker, else from epoch and step)."""
    fraction = status.get("fraction")
    if not isinstance(fraction, (int, float)) or not math.isfinite(fraction):
        fraction = (max(epoch, 1) - 1 + (step / steps if steps else 0.0)) / epochs
    return min(max(float(fraction), 0.0), 1.0)
