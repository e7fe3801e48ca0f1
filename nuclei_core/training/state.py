"""The state of a training run between epochs: what ``state.json`` holds and resume reads.

After every epoch the run writes its :class:`RunState` (epochs done, best
monitored loss and epoch, epochs without improvement, per-epoch history, wall
time, how the encoder started, the command lines that ran it) to
``state.json``; ``resume=True`` reads it back and continues from the last
checkpoint.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from nuclei_core.registry.cards import utc_now
from nuclei_core.storage import atomic_write_json
from nuclei_core.training.config import TrainConfig

STATE_FILE = "state.json"
METRIC_KEYS = ("loss", "accuracy", "iou", "dice")


@dataclass
class RunState:
    """Progress of a training run, saved after every epoch as ``state.json``.

    Examples
    --------
    >>> state = RunState()
    >>> state.add_epoch({"epoch": 1, "loss": 0.9, "val_loss": 0.8}, seconds=12.0)
    True
    >>> state.add_epoch({"epoch": 2, "loss": 0.7, "val_loss": 0.85}, seconds=24.0)
    False
    >>> state.best, state.best_epoch, state.wait, state.epoch
    (0.8, 1, 1, 2)
    >>> RunState.from_json(state.to_json()) == state
    True
    """

    epoch: int = 0  # epochs finished
    best: float = math.inf  # lowest monitored loss (val_loss, else loss)
    best_epoch: int = 0  # 1-based epoch of ``best``; 0 before the first
    wait: int = 0  # epochs since the best one
    history: list[dict] = field(default_factory=list)  # one row of metrics per epoch
    seconds: float = 0.0  # training wall time of all sessions together
    encoder_weights: str | None = None  # "imagenet", "random", or None for the U-Net
    stopped_early: bool = False  # patience or time budget ended this session
    commands: list[str] = field(default_factory=list)  # the command lines that ran it
    # One entry per call of train (a segment of a run that spans sessions or machines):
    # its command, machine, epochs, minutes and how busy the machine was.
    segments: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        """The JSON object of ``state.json``; ``commands`` and ``segments`` only where recorded."""
        state = asdict(self)
        for key in ("commands", "segments"):
            if not state[key]:
                del state[key]
        return state

    @classmethod
    def from_json(cls, state: dict) -> RunState:
        """The state a ``state.json`` object describes (keys this class does not know ignored)."""
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in state.items() if key in known})

    @classmethod
    def read(cls, path: str | Path) -> RunState:
        """The state saved in ``path`` (a ``state.json``)."""
        return cls.from_json(json.loads(Path(path).read_text()))

    def save(self, path: str | Path) -> None:
        """Write the state to ``path`` atomically."""
        atomic_write_json(path, self.to_json())

    def add_epoch(self, row: dict, seconds: float) -> bool:
        """Record a finished epoch's metrics; True when its monitored loss is the best so far.

        ``row`` holds ``epoch`` (1-based) and the metrics; ``seconds`` is the
        run's training time so far. The monitored loss is ``val_loss``, or
        ``loss`` for a run without validation images.
        """
        self.history.append(row)
        self.epoch = row["epoch"]
        if self.segments:
            self._count_in_segment(seconds)
        self.seconds = seconds
        monitored = row.get("val_loss", row["loss"])
        if monitored < self.best:
            self.best, self.best_epoch, self.wait = monitored, self.epoch, 0
            return True
        self.wait += 1
        return False

    def start_session(self, command: str | None, machine: dict | None = None) -> None:
        """Begin a call of ``train``: not stopped early yet; its command line, if any, recorded,
        and a new segment (:attr:`segments`) opened on ``machine``.

        Examples
        --------
        >>> state = RunState()
        >>> state.start_session("python -m nuclei_core train --data a", {"cpu_cores": 2})
        >>> _ = state.add_epoch({"epoch": 1, "loss": 0.9}, seconds=120.0)
        >>> segment = state.segments[0]
        >>> segment["epochs"], segment["minutes"], segment["machine"]
        ([1, 1], 2.0, {'cpu_cores': 2})
        """
        self.stopped_early = False
        if command:
            self.commands.append(command)
        self.segments.append(
            {
                "command": command,
                "started_at": utc_now(),
                "machine": machine or {},
                "epochs": [self.epoch + 1, self.epoch],  # first and last epoch it ran
                "minutes": 0.0,
                "seconds_before": round(self.seconds, 1),
                "mean_load_1min": None,  # the machine's load average, sampled every epoch
                "load_samples": 0,
            }
        )

    def _count_in_segment(self, seconds: float) -> None:
        """Add the epoch just finished to the open segment: its end, minutes and load."""
        segment = self.segments[-1]
        segment["epochs"][1] = self.epoch
        segment["minutes"] = round((seconds - segment["seconds_before"]) / 60, 2)
        load, count = os.getloadavg()[0], segment["load_samples"]
        mean = segment["mean_load_1min"] or 0.0
        segment["mean_load_1min"] = round((mean * count + load) / (count + 1), 2)
        segment["load_samples"] = count + 1

    def has_work_left(self, config: TrainConfig) -> bool:
        """False when a resumed run has nothing left: all epochs, early stop or budget spent.

        Examples
        --------
        >>> config = TrainConfig(data="a", out="run", epochs=3)
        >>> RunState(epoch=2).has_work_left(config), RunState(epoch=3).has_work_left(config)
        (True, False)
        """
        if self.epoch >= config.epochs or (self.epoch and self.wait >= config.patience):
            return False
        budget = config.time_budget_minutes
        return not (budget and self.seconds >= budget * 60)

    def best_metrics(self) -> dict:
        """Training and validation metrics of the best epoch.

        Examples
        --------
        >>> state = RunState()
        >>> _ = state.add_epoch({"epoch": 1, "loss": 0.5, "val_loss": 0.6, "lr": 0.01}, 1.0)
        >>> state.best_metrics()
        {'loss': 0.5, 'val_loss': 0.6}
        """
        best_row = next(row for row in self.history if row["epoch"] == self.best_epoch)
        return {
            key: best_row[key] for key in best_row if key.startswith("val_") or key in METRIC_KEYS
        }
