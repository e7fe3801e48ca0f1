"""The training worker: the process ``python -m nuclei_core.jobs RUN_ID`` that trains one run.

The worker holds the single-job lock, marks its run ``running`` with its pid,
trains with :func:`nuclei_core.training.train`, adds every epoch to the registry,
keeps ``progress.json`` up to date (at most every 0.5 s) and stops cleanly
when a ``STOP`` file appears in its run folder.  Whatever happens, the run
ends ``finished``, ``stopped`` or ``failed`` with a one-line message; the
traceback goes to ``train.log``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from nuclei_core.errors import JobBusyError, NucleiError, one_line
from nuclei_core.jobs.lock import worker_lock, write_lock_info
from nuclei_core.jobs.paths import PROGRESS_FILE_NAME, STOP_FILE_NAME, run_dir
from nuclei_core.registry import Registry, Run, registry_or_default
from nuclei_core.registry.cards import utc_now
from nuclei_core.storage import atomic_write_json, ensure_dir
from nuclei_core.training import TrainConfig, TrainingListener, train

PROGRESS_INTERVAL_S = 0.5
"""Least time between two progress writes (epoch ends and status lines always write)."""


class _Terminated(BaseException):
    """Raised in the worker by its SIGTERM handler, so it can record why it ended."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated(signum)


class _JobListener(TrainingListener):
    """Writes epochs to the registry and throttled progress to ``progress.json``."""

    def __init__(self, run_id: int, registry: Registry, folder: Path, config: TrainConfig):
        self.run_id = run_id
        self.registry = registry
        self.path = folder / PROGRESS_FILE_NAME
        self.epochs = config.epochs
        self.budget_s = config.time_budget_minutes * 60 if config.time_budget_minutes else None
        self.started = time.monotonic()
        self.epoch = 0  # 0-based epoch in progress
        self.step = 0
        self.steps = 0
        self.message = "starting"
        self.metrics: dict[str, Any] = {}
        self.last_write = 0.0
        # (time, fraction) at the first batch and at the end of the first epoch: the speed
        # is measured from the latest one passed, so graph building does not inflate the ETA
        self.origins: list[tuple[float, float]] = []
        self.missed: set[int] = set()  # epochs the registry did not take

    def fraction(self) -> float:
        """Share of the planned epochs done, or of the time budget spent where it ends the run
        first (a fine-tune's epochs are only an upper bound)."""
        done = self.epoch + (self.step / self.steps if self.steps else 0.0)
        share = done / self.epochs if self.epochs else 0.0
        if self.budget_s and self.origins:
            share = max(share, (time.monotonic() - self.origins[0][0]) / self.budget_s)
        return min(1.0, max(0.0, share))

    def _where(self, epoch: int) -> str:
        """``epoch 3/40``, or ``epoch 3`` for a run that its time budget ends."""
        return f"epoch {epoch}" if self.budget_s else f"epoch {epoch}/{self.epochs}"

    def eta_seconds(self) -> float | None:
        """Time left, from the speed since the first batch or, later, the first epoch's end."""
        now, fraction = time.monotonic(), self.fraction()
        passed = [origin for origin in self.origins if origin[1] < fraction and origin[0] < now]
        if not passed:
            return None
        origin_time, origin_fraction = passed[-1]
        eta = (now - origin_time) * (1.0 - fraction) / (fraction - origin_fraction)
        if self.budget_s is not None:
            eta = min(eta, max(0.0, self.budget_s - (now - origin_time)))
        return round(eta, 1)

    def write(self, force: bool = False, eta: float | None = None) -> None:
        """Rewrite the progress file (atomically), at most every 0.5 s unless forced."""
        now = time.monotonic()
        if not force and now - self.last_write < PROGRESS_INTERVAL_S:
            return
        self.last_write = now
        progress = {
            "run_id": self.run_id,
            "epoch": self.epoch + 1 if self.steps else 0,
            "epochs": self.epochs,
            "budget_minutes": self.budget_s / 60 if self.budget_s else None,
            "training_seconds": round(now - self.origins[0][0], 1) if self.origins else 0.0,
            "step": self.step,
            "steps": self.steps,
            "fraction": round(self.fraction(), 4),
            "message": self.message,
            "eta_seconds": self.eta_seconds() if eta is None else eta,
            "elapsed_seconds": round(now - self.started, 1),
            "metrics": self.metrics,
            "updated_at": utc_now(),
        }
        with contextlib.suppress(NucleiError):  # progress is a convenience, never fatal
            atomic_write_json(self.path, progress)

    def on_status(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        self.message = message
        self.write(force=True)

    def on_batch_end(self, epoch: int, step: int, steps: int, logs: dict) -> None:
        self.epoch, self.step, self.steps = epoch, step, steps
        if not self.origins:
            self.origins.append((time.monotonic(), self.fraction()))
        self.message = f"{self._where(epoch + 1)}, step {step}/{steps}"
        self.write()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        try:
            self.registry.add_epoch(self.run_id, epoch + 1, logs)
        except NucleiError as error:  # a busy registry must not end a long training
            self.missed.add(epoch + 1)
            print(f"epoch {epoch + 1} not recorded yet: {error}", file=sys.stderr, flush=True)
        self.epoch, self.step = epoch, self.steps
        if len(self.origins) == 1:
            self.origins.append((time.monotonic(), self.fraction()))
        self.metrics = {key: value for key, value in logs.items() if key != "epoch"}
        shown = ", ".join(
            f"{key} {value:.4g}" if isinstance(value, (int, float)) else f"{key} {value}"
            for key, value in self.metrics.items()
        )
        self.message = f"{self._where(epoch + 1)} done"
        print(f"epoch {epoch + 1}: {shown}", file=sys.stderr, flush=True)
        self.write(force=True)

    def record_missed_epochs(self, history: list[dict]) -> None:
        """Add the epochs whose registry write failed during training (from the history)."""
        for row in history:
            if row.get("epoch") in self.missed:
                self.registry.add_epoch(self.run_id, row["epoch"], row)

    def finish(self, message: str) -> None:
        """Write the last progress line of the job."""
        self.message = message
        self.write(force=True, eta=0.0)


def _wait_for_starter() -> None:
    """Block until the starter has recorded this process (it then closes our stdin)."""
    with contextlib.suppress(OSError, ValueError):
        while sys.stdin.buffer.read(65536):
            pass


def _config_from_run(run: Run, folder: Path) -> TrainConfig:
    """Rebuild the run's TrainConfig from its stored params; ``out`` is the run folder."""
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    params = {key: value for key, value in run.params.items() if key in known}
    params.update(out=str(folder), name=run.name)
    return TrainConfig(**params)


def run_worker(run_id: int, registry: Registry | None = None) -> int:
    """Train a queued run in this process (the body of ``python -m nuclei_core.jobs``).

    Holds the single-job lock, marks the run ``running`` with this pid, trains
    it (epochs go to the registry, progress to ``progress.json``, a ``STOP``
    file stops it) and ends it ``finished``, ``stopped`` or ``failed`` (with
    a one-line message; the traceback goes to stderr, i.e. ``train.log``).

    Parameters
    ----------
    run_id : int
        The run to train; it must be queued or running.
    registry : Registry, optional
        Default: the registry in the data folder.

    Returns
    -------
    int
        Exit status: 0 finished or stopped, 1 failed or not startable, 143 terminated.

    Examples
    --------
    A run that has already ended is not trained again:

    >>> run = registry.create_run("done", "unet", {}, "data", status="finished")
    >>> run_worker(run.id, registry)
    1
    """
    registry = registry_or_default(registry)
    try:
        lock_fd, from_starter = worker_lock()
    except JobBusyError as error:
        print(error, file=sys.stderr, flush=True)
        return 1
    try:
        if from_starter:
            _wait_for_starter()
        return _train_run(run_id, registry, lock_fd)
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(lock_fd, 0)
        os.close(lock_fd)


def _train_run(run_id: int, registry: Registry, lock_fd: int) -> int:
    """Train the run while holding the lock; see :func:`run_worker`."""
    run = registry.get_run(run_id)
    if not run.is_active:
        print(f"run {run_id} is {run.status}; nothing to do", file=sys.stderr, flush=True)
        return 1
    folder = ensure_dir(run_dir(run_id))
    stop_file = folder / STOP_FILE_NAME
    run = registry.set_status(run_id, "running", pid=os.getpid())
    write_lock_info(
        lock_fd, {"run_id": run.id, "name": run.name, "started_at": run.started_at, "pid": run.pid}
    )
    print(f"{utc_now()} run {run.id} ({run.name}): training in pid {run.pid}", file=sys.stderr)
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        signal.signal(signal.SIGTERM, _on_sigterm)
    listener: _JobListener | None = None
    try:
        config = _config_from_run(run, folder)
        listener = _JobListener(run.id, registry, folder, config)
        if stop_file.exists():
            message = "stopped on request before training started"
            listener.finish(message)
            registry.set_status(run.id, "stopped", message=message)
            return 0
        listener.write(force=True)
        result = train(config, listener, should_stop=stop_file.exists)
        listener.record_missed_epochs(result.history)
        registry.update_run(
            run.id,
            model_path=result.model_path,
            card_path=result.card_path,
            best_epoch=result.best_epoch,
            final_metrics=result.final_metrics,
        )
        how = "stopped on request" if result.status == "stopped" else "finished"
        message = f"{how} after {len(result.history)} epochs; best epoch {result.best_epoch}"
        listener.finish(message)
        registry.set_status(run.id, result.status, message=message)
        print(f"{utc_now()} {message}", file=sys.stderr, flush=True)
        return 0
    except _Terminated:
        _end_failed(registry, run.id, listener, "training process terminated (SIGTERM)")
        return 143
    except BaseException as error:  # every failure must reach the registry
        traceback.print_exc()
        if stop_file.exists() and not (folder / "checkpoint_best.keras").is_file():
            message = "stopped on request before the first epoch ended; no model saved"
            if listener is not None:
                listener.finish(message)
            registry.set_status(run.id, "stopped", message=message)
            return 0
        _end_failed(registry, run.id, listener, one_line(error))
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        return 1
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _end_failed(registry: Registry, run_id: int, listener: _JobListener | None, message: str):
    """Record a failure in the progress file and the registry (best effort)."""
    print(f"{utc_now()} failed: {message}", file=sys.stderr, flush=True)
    if listener is not None:
        listener.finish(f"failed: {message}")
    with contextlib.suppress(NucleiError):
        registry.set_status(run_id, "failed", message=message)


def main(argv: list[str] | None = None) -> int:
    """Command line of the worker: ``python -m nuclei_core.jobs RUN_ID [--registry FILE]``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status of :func:`run_worker`.

    Examples
    --------
    >>> run = registry.create_run("done", "unet", {}, "data", status="stopped")
    >>> main([str(run.id), "--registry", str(registry.path)])
    1
    """
    parser = argparse.ArgumentParser(
        prog="python -m nuclei_core.jobs", description="Train one queued registry run."
    )
    parser.add_argument("run_id", type=int, help="registry id of the run to train")
    parser.add_argument("--registry", help="registry file (default: the data folder's)")
    args = parser.parse_args(argv)
    registry = Registry(args.registry) if args.registry else None
    return run_worker(args.run_id, registry)
