"""What a run writes about its model: the card (:func:`model_card`) and its calibration.

:func:`calibrate_run` chooses the model's minimum nucleus confidence on the run's
validation images (:mod:`nuclei_core.evaluation.calibrate`) and writes it with its
validation scores into the card; a run without validation images keeps what the
card has (a fine-tune its base model's level) and says so.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from nuclei_core.registry.cards import machine_description, read_card, utc_now, write_card
from nuclei_core.training.config import TrainConfig
from nuclei_core.training.finetune import base_model_summary, earlier_runs
from nuclei_core.training.session import Session, TrainingInputs
from nuclei_core.training.state import RunState

if TYPE_CHECKING:
    from nuclei_core.training.data import TrainingSplit
    from nuclei_core.training.listener import TrainingListener

NO_VALIDATION = "no validation images"


def calibrate_run(
    config: TrainConfig, split: TrainingSplit, model_path: Path, listener: TrainingListener
) -> dict:
    """Calibrate the run's model on its validation images; the card's ``postprocess``.

    Each validation set (dataset folder) counts once, as in
    :func:`nuclei_core.evaluation.calibrate.calibrate`. Without validation images the
    card keeps the level it has (a fine-tune's is its base model's) and records
    ``"chosen_by"`` as :data:`NO_VALIDATION` beside it.
    """
    from nuclei_core.evaluation.calibrate import calibrate, write_calibration
    from nuclei_core.network.runtime import load_inference_model
    from nuclei_core.segmentation.options import SegmentOptions, model_settings

    if not split.val:
        card = read_card(model_path)
        postprocess = dict(card.get("postprocess") or {})
        inherited = postprocess.get("chosen_by")
        postprocess["chosen_by"] = f"{NO_VALIDATION}; {inherited}" if inherited else NO_VALIDATION
        card["postprocess"] = postprocess
        write_card(model_path, card)
        listener.on_status(f"calibration: {NO_VALIDATION}, minimum confidence kept as it was")
        return postprocess
    sets: dict[str, list] = {}
    for sample, group in zip(split.val, split.val_groups, strict=True):
        sets.setdefault(group or Path(str(config.data_folders()[0])).name, []).append(sample)
    model = load_inference_model(model_path)
    options = SegmentOptions(**{**model_settings(model_path), "min_confidence": 0.0})
    calibration = calibrate(model, sets, options, progress=listener.on_status)
    entry = write_calibration(model_path, calibration, "validation images of this run")
    listener.on_status(
        f"calibration: minimum confidence {entry['min_confidence']}, "
        f"seed height {entry['peak_height']} (validation DSB {entry['validation_dsb_score']}, "
        f"uncalibrated {entry['uncalibrated_dsb_score']})"
    )
    return entry


def model_card(
    config: TrainConfig,
    state: RunState,
    inputs: TrainingInputs,
    session: Session,
    *,
    n_parameters: int,
    stopped: bool,
) -> dict:
    """The card of a trained model: what it is, how it was made, how good it is.

    ``n_parameters`` counts the exported model's weights; ``stopped`` says the
    caller's stop flag ended the run. The rest comes from the config, the run's
    state, its inputs and this session. :mod:`nuclei_core.registry.cards` reads and writes it.

    Examples
    --------
    >>> state = RunState()
    >>> _ = state.add_epoch({"epoch": 1, "loss": 0.4, "val_loss": 0.5, "lr": 0.01}, seconds=60.0)
    >>> inputs = TrainingInputs(None, None, steps=10, n_train=20, n_val=2, n_test=3, problems=[])
    >>> session = Session(replicas=1, precision="float32", command=None, started=time.monotonic())
    >>> config = TrainConfig(data="data", out="runs/first")
    >>> card = model_card(config, state, inputs, session, n_parameters=1000, stopped=False)
    >>> card["name"], card["status"], card["split"]["n_test"], card["final_metrics"]
    ('first', 'finished', 3, {'loss': 0.4, 'val_loss': 0.5})
    """
    # The diameter the model sees nuclei at best (nuclei_core.segmentation.diameter): the median of
    # its training nuclei, else the default model's.
    from nuclei_core.segmentation.diameter import DEFAULT_MODEL_DIAMETER_PX

    earlier_commands, earlier_minutes = earlier_runs(config)
    return {
        "name": config.name or Path(config.out).name,
        "architecture": config.architecture,
        "nucleus_diameter_px": inputs.nucleus_diameter_px or DEFAULT_MODEL_DIAMETER_PX,
        "params": asdict(config),
        "model": config.model_config().as_dict(),
        "n_parameters": n_parameters,
        "dataset": config.data if isinstance(config.data, list) else str(config.data),
        "split": {
            "rule": "sha256 of image id (nuclei_core.datasets.folders.split_ids)",
            "val_fraction": config.val_fraction,
            "n_train": inputs.n_train,
            "n_val": inputs.n_val,
            "n_test": inputs.n_test,
        },
        "skipped_files": inputs.problems,
        "command": session.command,
        "commands": [*earlier_commands, *state.commands],
        "machine": machine_description(),
        "strategy": {"name": config.strategy, "replicas": session.replicas},
        "precision": session.precision,
        "encoder_weights": state.encoder_weights,
        "train_seconds": round(state.seconds, 1),
        "train_minutes_by_run": [*earlier_minutes, round(state.seconds / 60, 1)],
        "segments": state.segments,
        "session_seconds": round(time.monotonic() - session.started, 1),
        "epochs_run": state.epoch,
        "best_epoch": state.best_epoch,
        "stopped_early": state.stopped_early,
        "status": "stopped" if stopped else "finished",
        "history": state.history,
        "final_metrics": state.best_metrics(),
        "created_at": utc_now(),
        **base_model_summary(
            config, inputs.n_train - inputs.n_replayed + inputs.n_val, inputs.n_replayed
        ),
    }
