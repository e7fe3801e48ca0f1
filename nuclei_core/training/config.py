"""The parameters of a training run (:class:`TrainConfig`) and their checks.

A :class:`TrainConfig` is everything :func:`nuclei_core.training.train` needs;
it is stored in the model card (``params``) and rebuilt from it by the training
job. :meth:`TrainConfig.check` refuses out-of-range values before any work.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, fields

from nuclei_core.errors import ConfigError

STRATEGIES = ("auto", "none", "mirrored", "multiworker")
PRECISIONS = ("auto", "float32", "bfloat16")
SPLITS = ("hash", "holdout")
"""``hash``: each folder split train / val / test by the hash rule; ``holdout`` (a
fine-tune on a few corrected images): with :data:`MIN_IMAGES_TO_HOLD_OUT` images or more,
one in :data:`HOLD_OUT_EVERY` (by the hash of its id, at least one) is held out to validate
and never trains; with fewer, every image trains and nothing validates."""
MIN_IMAGES_TO_HOLD_OUT = 5
HOLD_OUT_EVERY = 5


@dataclass
class TrainConfig:
    """Everything a training run needs; stored in the model card.

    Examples
    --------
    >>> config = TrainConfig(data="data/stage1_train", out="runs/first", epochs=20)
    >>> config.batch_size, config.crop, config.precision
    (8, 256, 'auto')
    """

    data: str | list[str]
    out: str
    architecture: str = "unet"
    epochs: int = 40
    batch_size: int = 8
    learning_rate: float = 2e-3
    patience: int = 10
    crop: int = 256
    val_fraction: float = 0.1
    seed: int = 0
    depth: int = 4
    base_filters: int = 16
    dropout: float = 0.1
    time_budget_minutes: float | None = None
    strategy: str = "auto"
    precision: str = "auto"
    resume: bool = False
    name: str | None = None
    base_model: str | None = None  # a .keras file whose weights start the run (fine-tuning)
    split: str = "hash"
    steps_per_epoch: int | None = None  # None: one pass over the images' crops
    rehearsal: list[str] | None = None  # folders whose training split is replayed beside data
    rehearsal_images: int = 64  # at most this many images of each rehearsal folder
    distance: bool = False  # also learn the normalised distance map (a third output channel)

    def data_folders(self) -> list[str]:
        """The dataset folders, in order (``data`` is one folder or a list of them).

        Examples
        --------
        >>> TrainConfig(data="a", out="run").data_folders()
        ['a']
        >>> TrainConfig(data=["a", "b"], out="run").data_folders()
        ['a', 'b']
        """
        return [self.data] if isinstance(self.data, str | os.PathLike) else list(self.data)

    def model_config(self):
        """The :class:`~nuclei_core.network.model.ModelConfig` of the network this run trains.

        Examples
        --------
        >>> model_config = TrainConfig(data="a", out="run", depth=3).model_config()
        >>> model_config.architecture, model_config.depth, model_config.size_multiple
        ('unet', 3, 8)
        """
        from nuclei_core.network.model import ModelConfig

        return ModelConfig(
            self.architecture, self.depth, self.base_filters, True, self.dropout, self.distance
        )

    def command_line(self) -> str:
        """The command that runs this configuration: ``python -m nuclei_core train ...``, or
        ``... finetune ...`` for a fine-tune (:func:`~nuclei_core.training.finetune_config`,
        split ``holdout``); options at their default are left out.

        Examples
        --------
        >>> TrainConfig(data=["a", "b"], out="runs/x", epochs=20, distance=True).command_line()
        'python -m nuclei_core train --data a b --epochs 20 --distance --out runs/x'
        >>> TrainConfig(data="a", out="b", split="holdout", base_model="m.keras",
        ...             time_budget_minutes=5, steps_per_epoch=16).command_line()
        'python -m nuclei_core finetune --model m.keras --data a --minutes 5 --rehearsal --out b'
        """
        if self.split == "holdout":
            words = ["finetune", "--model", self.base_model, "--data", *self.data_folders()]
            if self.time_budget_minutes is not None:
                words += ["--minutes", f"{self.time_budget_minutes:g}"]
            words += _options(self, {"seed": "--seed", "precision": "--precision"})
            words += ["--rehearsal", *(self.rehearsal or [])]  # alone: replay nothing
        else:
            words = ["train", "--data", *self.data_folders()]
            words += _options(self, _TRAIN_OPTIONS)
            words += ["--distance"] if self.distance else []
            words += ["--resume"] if self.resume else []
        words += ["--out", self.out] + (["--name", self.name] if self.name else [])
        return " ".join(["python -m nuclei_core", *(shlex.quote(str(word)) for word in words)])

    def check(self) -> None:
        """Refuse out-of-range values with the reason, before any work starts.

        Raises
        ------
        ConfigError
            The first parameter out of range, named in a one-line message.

        Examples
        --------
        >>> TrainConfig(data="a", out="run", epochs=0).check()
        Traceback (most recent call last):
        ...
        nuclei_core.errors.ConfigError: epochs must be at least 1, got 0
        """
        if not self.data_folders():
            raise ConfigError("data must name at least one dataset folder")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if not 0 < self.learning_rate <= 1:
            raise ConfigError(f"learning rate must be in (0, 1], got {self.learning_rate}")
        if self.patience < 1:
            raise ConfigError(f"patience must be at least 1, got {self.patience}")
        if not 0 < self.val_fraction < 0.9:
            raise ConfigError(f"validation fraction must be in (0, 0.9), got {self.val_fraction}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError(f"steps per epoch must be at least 1, got {self.steps_per_epoch}")
        if self.rehearsal_images < 1:
            raise ConfigError(f"rehearsal images must be at least 1, got {self.rehearsal_images}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.strategy == "multiworker" and "TF_CONFIG" not in os.environ:
            raise ConfigError("strategy 'multiworker' needs the TF_CONFIG environment variable")
        if self.time_budget_minutes is not None and self.time_budget_minutes <= 0:
            raise ConfigError(f"time budget must be positive, got {self.time_budget_minutes}")
        multiple = self.model_config().size_multiple
        if self.crop < multiple or self.crop % multiple:
            raise ConfigError(f"crop must be a positive multiple of {multiple}, got {self.crop}")


_TRAIN_OPTIONS = {
    "architecture": "--arch",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "learning_rate": "--lr",
    "patience": "--patience",
    "crop": "--crop",
    "val_fraction": "--val-fraction",
    "seed": "--seed",
    "base_filters": "--filters",
    "depth": "--depth",
    "base_model": "--start-from",
    "time_budget_minutes": "--time-budget",
    "strategy": "--strategy",
    "precision": "--precision",
}
"""The ``train`` option of each :class:`TrainConfig` field that has one."""


def _options(config: TrainConfig, flags: dict[str, str]) -> list[str]:
    """``[flag, value, ...]`` for the fields of ``flags`` whose value is not the default."""
    defaults = {item.name: item.default for item in fields(TrainConfig)}
    words = []
    for name, flag in flags.items():
        value = getattr(config, name)
        if value != defaults[name]:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return words
