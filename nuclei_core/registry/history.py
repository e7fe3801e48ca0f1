"""The per-epoch history of training runs as tables: curves, best epochs, final metrics, CSV.

Every function takes the run registry and the runs (:class:`~nuclei_core.registry.Run`)
and reads their epochs (``registry.epochs``); the tables are ``pandas.DataFrame`` s
that a chart or a download uses as they are.
"""

from __future__ import annotations

import math

import pandas as pd

from nuclei_core.io.export import table_csv

CURVE_METRICS = ("loss", "accuracy", "iou", "dice")
"""The per-epoch metrics drawn as curves (each also recorded as ``val_<name>``)."""

HISTORY_COLUMNS = ("run", "run_id", "epoch", "metric", "split", "value")

__all__ = [
    "CURVE_METRICS",
    "best_epoch",
    "best_epochs_frame",
    "final_metrics_frame",
    "history_csv",
    "history_frame",
]


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def history_frame(registry, runs) -> pd.DataFrame:
    """Per-epoch metrics of runs in long form, one row per (run, epoch, metric, split).

    Columns: ``run`` (name), ``run_id``, ``epoch``, ``metric`` (loss, accuracy,
    iou, dice), ``split`` (training / validation), ``value``; missing or
    non-finite values are left out.

    Examples
    --------
    >>> run = registry.create_run("u", "unet", {}, "data")
    >>> registry.add_epoch(run.id, 1, {"loss": 0.5, "val_loss": 0.7})
    >>> history_frame(registry, [run])[["metric", "split", "value"]].values.tolist()
    [['loss', 'training', 0.5], ['loss', 'validation', 0.7]]
    """
    rows = []
    for run in runs:
        for entry in registry.epochs(run.id):
            for metric in CURVE_METRICS:
                for split, key in (("training", metric), ("validation", f"val_{metric}")):
                    value = entry.get(key)
                    if _finite(value):
                        rows.append(
                            (run.name, run.id, int(entry["epoch"]), metric, split, float(value))
                        )
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def best_epoch(registry, run) -> int | None:
    """The run's best (early-stopping) epoch: stored, else the lowest validation loss.

    Runs without validation fall back to the training loss; ``None`` when no
    epoch has a loss.

    Examples
    --------
    >>> run = registry.create_run("u", "unet", {}, "data")
    >>> for epoch, loss in enumerate([0.9, 0.4, 0.6], start=1):
    ...     registry.add_epoch(run.id, epoch, {"val_loss": loss})
    >>> best_epoch(registry, run)
    2
    """
    if run.best_epoch:
        return int(run.best_epoch)
    history = registry.epochs(run.id)
    scored = [
        (entry.get("val_loss", entry.get("loss")), entry["epoch"])
        for entry in history
        if isinstance(entry.get("val_loss", entry.get("loss")), (int, float))
    ]
    return int(min(scored)[1]) if scored else None


def best_epochs_frame(registry, runs) -> pd.DataFrame:
    """``run``, ``epoch``, ``marker`` of each run's best epoch (runs without one are left out).

    Examples
    --------
    >>> run = registry.create_run("u", "unet", {}, "data")
    >>> best_epochs_frame(registry, [run]).empty
    True
    """
    rows = []
    for run in runs:
        epoch = best_epoch(registry, run)
        if epoch is not None:
            rows.append({"run": run.name, "epoch": epoch, "marker": "best epoch"})
    return pd.DataFrame(rows, columns=["run", "epoch", "marker"])


def final_metrics_frame(registry, runs) -> pd.DataFrame:
    """One row per run: name, architecture, status, epochs, best epoch and its metrics.

    The metrics are the run's final metrics, else those of its best epoch,
    rounded to 4 decimals (``val_loss``, ``loss``, ``val_accuracy`` ...).

    Examples
    --------
    >>> run = registry.create_run("u", "unet", {}, "data", status="finished")
    >>> registry.add_epoch(run.id, 1, {"loss": 0.123456})
    >>> final_metrics_frame(registry, [run]).to_dict("records")[0]["loss"]
    0.1235
    """
    rows = []
    for run in runs:
        history = registry.epochs(run.id)
        epoch = best_epoch(registry, run)
        best = next((entry for entry in history if entry["epoch"] == epoch), {})
        metrics_row = run.final_metrics or {
            key: value for key, value in best.items() if key not in ("epoch", "lr", "seconds")
        }
        row = {
            "run": run.name,
            "architecture": run.architecture,
            "status": run.status,
            "epochs": len(history),
            "best epoch": epoch,
        }
        for metric in CURVE_METRICS:
            for prefix in ("val_", ""):
                value = metrics_row.get(prefix + metric)
                if isinstance(value, (int, float)):
                    row[f"{prefix}{metric}"] = round(float(value), 4)
        rows.append(row)
    return pd.DataFrame(rows)


def history_csv(registry, runs) -> bytes:
    """Every epoch of the runs, one row per (run, epoch), as CSV bytes.

    Examples
    --------
    >>> run = registry.create_run("u", "unet", {}, "data")
    >>> registry.add_epoch(run.id, 1, {"loss": 0.5})
    >>> history_csv(registry, [run]).decode().splitlines()
    ['run,run_id,epoch,loss', 'u,1,1,0.5']
    """
    rows = []
    for run in runs:
        for entry in registry.epochs(run.id):
            rows.append({"run": run.name, "run_id": run.id, **entry})
    return table_csv(pd.DataFrame(rows))
