"""What runs between batches and epochs of a fit: learning rate, checkpoints, stopping, reports.

:class:`RunKeeper` sets the learning rate of every epoch
(:func:`cosine_learning_rate`), saves the best and last checkpoints, the
:class:`~nuclei_core.training.state.RunState` and ``history.csv`` after every
epoch, stops on patience, time budget or the caller's stop flag, and passes
progress to the :class:`~nuclei_core.training.TrainingListener`. An epoch cut
short by the stop flag is not an epoch: it writes no history row, checkpoint or
best epoch, and its validation pass ends after one batch. This module imports
Keras; :func:`nuclei_core.training.train` imports it when fitting starts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import keras

from nuclei_core.network.model import save_model
from nuclei_core.storage import atomic_write_text
from nuclei_core.training.config import TrainConfig
from nuclei_core.training.state import STATE_FILE, RunState

if TYPE_CHECKING:
    from nuclei_core.training.listener import TrainingListener


def cosine_learning_rate(epoch: int, epochs: int, base: float, time_used: float = 0.0) -> float:
    """Cosine decay from ``base`` to 5 % of it, after one warm-up epoch.

    Progress is the larger of the share of epochs done and ``time_used``, the
    share of the time budget spent, so a run cut short by its budget still
    ends with a small learning rate.

    Examples
    --------
    >>> round(cosine_learning_rate(0, 10, 1.0), 2), round(cosine_learning_rate(9, 10, 1.0), 2)
    (0.3, 0.05)
    >>> round(cosine_learning_rate(1, 10, 1.0, time_used=1.0), 2)
    0.05
    """
    if epoch == 0 and epochs > 2:
        return 0.3 * base
    progress = min(1.0, max(epoch / max(1, epochs - 1), time_used))
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def write_history_csv(path: str | Path, history: list[dict]) -> None:
    """Write the per-epoch rows as CSV atomically; the columns are every key, first seen first.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "history.csv"
    >>> write_history_csv(path, [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4, "lr": 0.1}])
    >>> print(path.read_text(), end="")
    epoch,loss,lr
    1,0.5,
    2,0.4,0.1
    """
    columns = list(dict.fromkeys(key for row in history for key in row))
    lines = [",".join(columns)]
    lines += [",".join(str(row.get(column, "")) for column in columns) for row in history]
    atomic_write_text(path, "\n".join(lines) + "\n")


class RunKeeper(keras.callbacks.Callback):
    """Checkpoints, early stopping, time budget, stop flag and progress reports.

    Parameters
    ----------
    config : TrainConfig
        The run's epochs, learning rate, patience and time budget.
    out : Path
        The run folder: checkpoints, ``state.json`` and ``history.csv`` go there.
    steps : int
        Batches per epoch, for the listener.
    state : RunState
        The run's state, updated after every epoch (resumed or fresh).
    listener : TrainingListener
        Hears every batch, epoch and status line.
    should_stop : callable, optional
        Polled after every batch; True ends the run cleanly (``stopped`` is then True,
        and ``interrupted`` too when the epoch had batches left: that epoch is dropped).
    """

    def __init__(
        self,
        config: TrainConfig,
        out: Path,
        steps: int,
        state: RunState,
        listener: TrainingListener,
        should_stop: Callable[[], bool] | None = None,
    ):
        super().__init__()
        self.config, self.out, self.steps, self.state = config, out, steps, state
        self.listener, self.should_stop = listener, should_stop
        self.epoch_started = time.monotonic()
        self.run_started = time.monotonic() - state.seconds
        self.stopped = False
        self.interrupted = False

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.monotonic()
        budget = self.config.time_budget_minutes
        time_used = (time.monotonic() - self.run_started) / (budget * 60) if budget else 0.0
        self.model.optimizer.learning_rate.assign(
            cosine_learning_rate(epoch, self.config.epochs, self.config.learning_rate, time_used)
        )

    def on_train_batch_end(self, batch, logs=None):
        self.listener.on_batch_end(self.state.epoch, batch + 1, self.steps, dict(logs or {}))
        if self.should_stop and self.should_stop():
            self.stopped = True
            self.interrupted = batch + 1 < self.steps
            self.model.stop_training = True

    def on_test_batch_end(self, batch, logs=None):
        if self.interrupted:  # the epoch will be dropped: its validation is wasted time
            self.model.stop_evaluating = True

    def on_epoch_end(self, epoch, logs=None):
        if self.interrupted:
            self.listener.on_status(f"stopped during epoch {epoch + 1}; it is not recorded")
            return
        row = {"epoch": epoch + 1, **{key: float(value) for key, value in (logs or {}).items()}}
        row["lr"] = float(self.model.optimizer.learning_rate.numpy())
        row["seconds"] = round(time.monotonic() - self.epoch_started, 2)
        improved = self.state.add_epoch(row, seconds=time.monotonic() - self.run_started)
        self._save(improved)
        self.listener.on_epoch_end(epoch, row)
        self._stop_when_done(row["seconds"])

    def _save(self, improved: bool) -> None:
        """Checkpoints (the best one when ``improved``), state and history, each atomically."""
        if improved:
            save_model(self.model, self.out / "checkpoint_best.keras")
        save_model(self.model, self.out / "checkpoint_last.keras")
        self.state.save(self.out / STATE_FILE)
        write_history_csv(self.out / "history.csv", self.state.history)

    def _stop_when_done(self, epoch_seconds: float) -> None:
        """End the fit when patience runs out or the next epoch would pass the time budget."""
        if self.state.wait >= self.config.patience:
            self._stop_early()
        budget = self.config.time_budget_minutes
        if budget and self.state.seconds + epoch_seconds > budget * 60:
            self._stop_early()
            self.listener.on_status(f"time budget of {budget} min reached")

    def _stop_early(self) -> None:
        self.state.stopped_early = True
        self.model.stop_training = True
