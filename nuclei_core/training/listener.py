"""What a training run tells whoever started it: :class:`TrainingListener`.

The command line prints it (:class:`nuclei_core.cli.common.ProgressListener`), the
background job writes it to the registry (:mod:`nuclei_core.jobs.worker`).
"""

from __future__ import annotations


class TrainingListener:
    """Receives progress from :func:`train`; override what you need.

    Examples
    --------
    >>> class Printer(TrainingListener):
    ...     def on_status(self, message):
    ...         print(message)
    >>> Printer().on_status("reading 5 training and 1 validation images")
    reading 5 training and 1 validation images
    """

    def on_status(self, message: str) -> None:
        """A line of text about what training is doing now."""

    def on_batch_end(self, epoch: int, step: int, steps: int, logs: dict) -> None:
        """After every batch: ``epoch`` (0-based), ``step`` of ``steps``."""

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """After every epoch, with training and validation metrics."""
