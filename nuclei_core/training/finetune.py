"""Fine-tuning: a short run that starts from a trained model's weights and fits a few images.

:func:`finetune_config` turns "this model, this folder of corrected images, this
many minutes" into a :class:`~nuclei_core.training.TrainConfig` that
:func:`nuclei_core.training.train` (or the background job of
:func:`nuclei_core.jobs.start_training`) runs like any other:

* the network has the base model's architecture (read from its card) and starts
  from its weights (:func:`start_from`); batch normalisation keeps the base
  model's statistics (its layers are frozen), so a handful of images of one kind
  does not shift what the network expects of every other kind;
* a validation image never trains (``split="holdout"``): with five images or more,
  one in five is held out to validate (and to calibrate the result on); with fewer,
  every image trains, the run has no validation figure, and the model keeps the
  base model's calibration;
* a low learning rate with a cosine decay over the time budget, small batches and
  a fixed number of steps per epoch, so that one image gives curves too;
* images of the base model's own training data, where its folders are on this
  machine, are replayed beside the new ones (``rehearsal``): without them a few
  minutes on five H&E tiles cost the base model about a third of its DSB score on
  fluorescence (``bench/finetune.py``).

The card of the result names its base model, the folder, the number of images and
the minutes (:func:`base_model_summary`).
"""

from __future__ import annotations

from pathlib import Path

from nuclei_core.datasets.folders import discover_dataset
from nuclei_core.errors import ConfigError, ModelLoadError
from nuclei_core.network.runtime import file_sha256
from nuclei_core.registry.cards import read_card, training_commands
from nuclei_core.training.config import TrainConfig
from nuclei_core.training.data import shorter_sides

LEARNING_RATE = 1e-3
"""Peak learning rate of a fine-tuning run (half of training's)."""

BATCH_SIZE = 4
STEPS_PER_EPOCH = 16
MAX_CROP = 256
MAX_EPOCHS = 100_000  # the time budget ends a fine-tuning run


def finetune_config(
    base_model,
    data,
    out,
    minutes: float = 10.0,
    name: str | None = None,
    seed: int = 0,
    precision: str = "auto",
    rehearsal: list | None = None,
) -> TrainConfig:
    """The training configuration that fine-tunes ``base_model`` on ``data`` for ``minutes``.

    Parameters
    ----------
    base_model : str or Path
        A ``.keras`` model with its card (``<name>.json``, which says its architecture).
    data : str or Path
        A folder of images with their label masks (flat ``inputs/`` + ``masks/`` or
        Kaggle layout); every image is used.
    out : str or Path
        The run folder (the background job replaces it by its own).
    minutes : float
        The time budget; the run ends when it is spent.
    name, seed, precision
        As in :class:`~nuclei_core.training.TrainConfig`.
    rehearsal : list of str or Path, optional
        Folders whose training split is replayed beside ``data`` (at most
        ``TrainConfig.rehearsal_images`` images each). Default: the folders the
        base model's card says it was trained on, those that exist here; ``[]``
        replays nothing.

    Raises
    ------
    ModelLoadError
        ``base_model`` does not exist or has no card naming its architecture.
    DatasetError
        ``data`` has no usable image/mask pairs.
    ConfigError
        ``minutes`` is not positive, or every image is smaller than the network needs.

    Examples
    --------
    >>> from nuclei_core.locations import default_model_path, sample_folder
    >>> config = finetune_config(default_model_path(), sample_folder(), "runs/tuned", minutes=5)
    >>> config.split, config.time_budget_minutes, config.crop, config.learning_rate
    ('holdout', 5, 256, 0.001)
    """
    if not minutes or minutes <= 0:
        raise ConfigError(f"minutes must be positive, got {minutes}")
    model = _base_architecture(Path(base_model))
    if rehearsal is None:
        rehearsal = training_folders_here(base_model)
    from nuclei_core.network.model import ModelConfig

    multiple = ModelConfig(model["architecture"], int(model["depth"])).size_multiple
    return TrainConfig(
        data=str(data),
        out=str(out),
        architecture=model["architecture"],
        epochs=MAX_EPOCHS,
        batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        patience=MAX_EPOCHS,
        crop=_crop_for(data, multiple),
        seed=seed,
        depth=int(model["depth"]),
        base_filters=int(model["base_filters"]),
        dropout=float(model.get("dropout", 0.1)),
        distance=bool(model.get("distance", False)),
        time_budget_minutes=minutes,
        precision=precision,
        name=name,
        base_model=str(base_model),
        split="holdout",
        steps_per_epoch=STEPS_PER_EPOCH,
        rehearsal=[str(folder) for folder in rehearsal] or None,
    )


def training_folders_here(model_path) -> list[str]:
    """The dataset folders a model's card names that exist on this machine.

    Examples
    --------
    >>> from nuclei_core.locations import default_model_path
    >>> all(Path(folder).is_dir() for folder in training_folders_here(default_model_path()))
    True
    """
    data = read_card(Path(model_path)).get("params", {}).get("data") or []
    folders = [data] if isinstance(data, str) else list(data)
    return [folder for folder in folders if Path(folder).is_dir()]


def _base_architecture(path: Path) -> dict:
    """The ``model`` section of the base model's card, checked."""
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file")
    model = read_card(path).get("model")
    keys = ("architecture", "depth", "base_filters")
    if not isinstance(model, dict) or any(key not in model for key in keys):
        raise ModelLoadError(
            f"{path}: its card ({path.with_suffix('.json').name}) does not say the network's "
            "architecture; fine-tuning needs a model trained by nuclei_core"
        )
    return model


def _crop_for(data, multiple: int) -> int:
    """The largest training crop (at most :data:`MAX_CROP`) that the largest image holds."""
    largest = max(shorter_sides(discover_dataset(data).samples), default=0)
    crop = min(MAX_CROP, largest // multiple * multiple)
    if crop < multiple:
        raise ConfigError(
            f"{data}: every image is smaller than {multiple} pixels a side (largest {largest})"
        )
    return crop


def start_from(model, base_model) -> None:
    """Copy the weights of the model file ``base_model`` into ``model``; freeze batch norm.

    A base model without the distance map can start a network with one
    (:class:`~nuclei_core.network.model.ModelConfig` ``distance=True``): its output layer
    gives the foreground and boundary channels, the distance channel starts new.

    Raises
    ------
    ConfigError
        The two networks differ (another architecture, depth or width).

    Examples
    --------
    >>> from nuclei_core.locations import default_model_path
    >>> from nuclei_core.network.model import ModelConfig, build_unet
    >>> start_from(build_unet(ModelConfig(depth=2, base_filters=4)), default_model_path())
    Traceback (most recent call last):
    ...
    nuclei_core.errors.ConfigError: ...default.keras: another network than this run's (weight 1 ...
    """
    import keras

    from nuclei_core.network.model import load_model

    weights = load_model(base_model).get_weights()
    current = model.get_weights()
    expected = [tuple(weight.shape) for weight in current]
    found = [tuple(weight.shape) for weight in weights]
    output_layer = slice(len(current) - 2, len(current))  # the last kernel and bias
    if _adds_output_channels(found[output_layer], expected[output_layer]):
        for index in range(output_layer.start, output_layer.stop):
            grown = current[index].copy()
            grown[..., : weights[index].shape[-1]] = weights[index]
            weights[index] = grown
            found[index] = expected[index]
    if found != expected:
        index = next(
            (i for i, pair in enumerate(zip(found, expected, strict=False)) if pair[0] != pair[1]),
            min(len(found), len(expected)),
        )
        raise ConfigError(
            f"{base_model}: another network than this run's (weight {index + 1} has shape "
            f"{_shape_at(found, index)}, this run's {_shape_at(expected, index)})"
        )
    model.set_weights(weights)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def _adds_output_channels(found: list[tuple], expected: list[tuple]) -> bool:
    """True when only the last axis of the output kernel and bias grows."""
    if len(found) != 2 or len(expected) != 2:
        return False
    pairs = zip(found, expected, strict=True)
    return all(old[:-1] == new[:-1] and old[-1] < new[-1] for old, new in pairs)


def _shape_at(shapes: list[tuple], index: int) -> str:
    return str(shapes[index]) if index < len(shapes) else "none"


def earlier_runs(config: TrainConfig) -> tuple[list[str], list[float]]:
    """Command lines and minutes of the runs that made ``config.base_model``, first to last.

    A model trained on from another one keeps its base model's history of runs in its
    card (``commands``, ``train_minutes_by_run``), so a peer can be given the same
    runs and the card says how to make the model again. Both lists are empty for a
    fresh run or a base model without a card.

    Examples
    --------
    >>> earlier_runs(TrainConfig(data="a", out="run"))
    ([], [])
    >>> from nuclei_core.locations import default_model_path
    >>> commands, minutes = earlier_runs(TrainConfig(data="a", out="run",
    ...                                               base_model=str(default_model_path())))
    >>> len(commands) == len(minutes) > 0
    True
    """
    if not config.base_model:
        return [], []
    card = read_card(Path(config.base_model))
    minutes = card.get("train_minutes_by_run")
    if minutes is None:
        minutes = [round(card["train_seconds"] / 60, 1)] if card.get("train_seconds") else []
    return training_commands(card), list(minutes)


def base_model_summary(config: TrainConfig, n_images: int, n_replayed: int = 0) -> dict:
    """What the card of a fine-tuned model says of its start (``{}`` for a fresh run).

    ``n_images`` counts the new images, ``n_replayed`` the rehearsal images beside them. The base
    model's minimum confidence and seed height (``postprocess``) carry over: a few minutes of
    fine-tuning leave the network about as sure as it was, and a model that suddenly
    kept every unsure nucleus would look worse for no reason of its own
    (``python -m nuclei_core calibrate --model NEW --data FOLDER`` chooses them again).

    Examples
    --------
    >>> base_model_summary(TrainConfig(data="a", out="run"), 3)
    {}
    >>> from nuclei_core.locations import default_model_path
    >>> config = TrainConfig(data="mine", out="run", base_model=str(default_model_path()),
    ...                      time_budget_minutes=10)
    >>> summary = base_model_summary(config, 3)
    >>> summary["base_model"]["name"], summary["finetune"]["minutes"]
    ('default', 10)
    >>> summary["postprocess"]["min_confidence"]
    0.99
    """
    if not config.base_model:
        return {}
    path = Path(config.base_model)
    base_card = read_card(path)
    inherited = {}
    base_levels = base_card.get("postprocess") or {}
    if "min_confidence" in base_levels:
        inherited["postprocess"] = {
            **{
                key: base_levels[key]
                for key in ("min_confidence", "peak_height")
                if key in base_levels
            },
            "chosen_by": f"inherited from the base model {path}",
        }
    return {
        **inherited,
        "base_model": {
            "path": str(path),
            "name": base_card.get("name") or path.stem,
            "sha256": file_sha256(path) if path.is_file() else None,
        },
        "finetune": {
            "dataset": str(config.data),
            "n_images": n_images,
            "minutes": config.time_budget_minutes,
            "rehearsal": config.rehearsal or [],
            "n_replayed": n_replayed,
        },
    }
