"""What one call of :func:`nuclei_core.training.train` works with and gives back.

:class:`TrainingInputs` (the run's pipelines and the counts its card reports),
:class:`Session` (how this call computes and its command line) and
:class:`TrainResult` (the model, card and history it produced).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    model_path: Path
    card_path: Path
    history: list[dict]
    best_epoch: int
    stopped_early: bool
    status: str  # "finished" or "stopped"
    final_metrics: dict = field(default_factory=dict)


@dataclass
class TrainingInputs:
    """The run's images as ``tf.data`` pipelines, and what the card says about them."""

    train: object  # tf.data.Dataset: endless batches of augmented crops
    val: object | None  # tf.data.Dataset of whole validation images, or None
    steps: int  # batches per epoch
    n_train: int  # readable images
    n_val: int
    n_test: int  # kept out of training and model selection
    problems: list[str]  # one line per skipped file
    n_replayed: int = 0  # of n_train: a rehearsal folder's images (fine-tuning)
    nucleus_diameter_px: float | None = None  # median over the training images' nuclei


@dataclass(frozen=True)
class Session:
    """One call of :func:`train`: how it computes, its command line, when fitting began."""

    replicas: int  # of the distribution strategy
    precision: str  # dtype policy of the model's layers
    command: str  # the command line that runs this configuration (TrainConfig.command_line)
    started: float  # time.monotonic() when fitting began
