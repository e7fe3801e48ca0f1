"""One training run: :func:`train` and its steps, from the checked config to the model card.

:func:`train` checks the config and the data, picks the distribution strategy
and precision (all before any file is written), reads the images, builds or
resumes the model, fits it (:mod:`nuclei_core.training.callbacks`), saves the
best weights in float32 as ``model.keras`` and writes the card beside it
(:func:`model_card`).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from nuclei_core.errors import ConfigError, NucleiError
from nuclei_core.network.precision import (
    build_for_training,
    float32_copy,
    model_precision,
    training_policy,
)
from nuclei_core.registry.cards import segment_machine, write_card
from nuclei_core.training.card import calibrate_run, model_card
from nuclei_core.training.config import TrainConfig
from nuclei_core.training.data import (
    TrainingSplit,
    check_dataset,
    load_training_data,
    training_diameter,
)
from nuclei_core.training.finetune import start_from
from nuclei_core.training.listener import TrainingListener
from nuclei_core.training.pipelines import training_dataset, validation_dataset
from nuclei_core.training.session import Session, TrainingInputs, TrainResult
from nuclei_core.training.state import STATE_FILE, RunState

# Keras warns about these with every generator-fed fit; they say nothing about this run.
QUIET_FIT_WARNINGS = ".*(shuffle=True|ran out of data).*"


def train(
    config: TrainConfig,
    listener: TrainingListener | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a model as ``config`` says; see :mod:`nuclei_core.training` for the files written.

    Raises
    ------
    ConfigError
        A parameter is out of range, or the precision is one this machine cannot
        train in (both checked before any work starts).
    DatasetError
        The dataset folder has no usable pairs.

    Examples
    --------
    >>> import shutil, tempfile
    >>> from nuclei_core.locations import sample_folder
    >>> data = Path(tempfile.mkdtemp()) / "data"  # two training images, one validation image
    >>> for part in ("inputs", "masks"):
    ...     (data / part).mkdir(parents=True)
    ...     for name in ("fluo_01.png", "fluo_02.png", "fluo_03.png"):
    ...         _ = shutil.copy(sample_folder() / part / name, data / part / name)
    >>> config = TrainConfig(data=str(data), out=str(data.parent / "run"), epochs=1,
    ...                      batch_size=2, crop=64, depth=2, base_filters=4, strategy="none")
    >>> result = train(config)
    >>> result.status, result.model_path.name, result.card_path.name, len(result.history)
    ('finished', 'model.keras', 'model.json', 1)
    """
    config.check()
    split = check_dataset(config)
    # The strategy first: a multi-worker one must exist before TensorFlow lists its devices.
    strategy = _distribution_strategy(config.strategy)
    policy = training_policy(config.precision, config.architecture)  # refused before any work
    out = Path(config.out)
    listener = listener or TrainingListener()
    _set_seed(config.seed)
    model, state = _model_and_state(config, out, strategy, policy, listener)
    replicas = int(strategy.num_replicas_in_sync)
    inputs = _read_inputs(config, split, replicas, listener, epochs_done=state.epoch)
    session = _start_session(config, strategy, model, state, listener)
    with _write_folder(out, strategy) as folder:
        stopped = _fit(config, folder, model, inputs, state, listener, should_stop)
        result = _finish(config, folder, state, inputs, session, stopped)
        if folder == out:  # the chief calibrates; the other workers' folders are temporary
            try:
                calibrate_run(config, split, result.model_path, listener)
            except NucleiError as error:  # the model is saved; say why it has no level
                listener.on_status(f"calibration failed, minimum confidence unchanged: {error}")
    # the chief's files, also on the other workers (whose own were temporary)
    return replace(
        result, model_path=out / result.model_path.name, card_path=out / result.card_path.name
    )


@contextlib.contextmanager
def _write_folder(out: Path, strategy):
    """Where this worker writes: ``out`` on the chief (and without a multi-worker strategy);
    on the other workers of a multi-worker run a temporary folder, removed afterwards.

    Saving a distributed model is collective, so every worker saves its checkpoints and
    model as the chief does; only the chief's land in ``out`` (TensorFlow's convention).
    """
    if getattr(strategy.extended, "should_checkpoint", True):
        out.mkdir(parents=True, exist_ok=True)
        yield out
        return
    with tempfile.TemporaryDirectory(prefix="nuclei-worker-") as folder:
        yield Path(folder)


def _distribution_strategy(name: str):
    """The ``tf.distribute`` strategy ``name`` asks for (TF_CONFIG checked by the config)."""
    import tensorflow as tf

    if name == "multiworker":
        return _multi_worker_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "auto" and len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _multi_worker_strategy():
    """A ``MultiWorkerMirroredStrategy`` whose ``reduce`` takes what Keras 3's ``fit`` passes.

    ``fit`` reduces its first batch, a tuple, and its scalar metrics with ``axis=0``;
    the strategy reduces one tensor at a time, and a scalar only without an axis
    (keras-team/keras#20585). Reducing element by element, scalars without an axis,
    makes ``fit`` run, and every worker sees the same metrics, so all stop together.
    """
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op, value, axis=None):
            def one(part):
                rank = self.experimental_local_results(part)[0].shape.rank
                parent = super(MultiWorkerMirroredStrategy, self)
                return parent.reduce(reduce_op, part, None if rank == 0 else axis)

            return tf.nest.map_structure(one, value)

    return MultiWorkerMirroredStrategy()


def _set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow: weights, crops and augmentation repeat."""
    import keras

    keras.utils.set_random_seed(seed)


def _read_inputs(
    config: TrainConfig,
    split: TrainingSplit,
    replicas: int,
    listener: TrainingListener,
    epochs_done: int = 0,
) -> TrainingInputs:
    """Read the split's images (skipped files reported) and wrap them in pipelines.

    A resumed run (``epochs_done`` epochs finished) goes on with the crops a single
    run would draw next."""
    listener.on_status(
        f"reading {len(split.train)} training and {len(split.val)} validation images"
    )
    train_arrays, problems = load_training_data(
        split.train, config.crop, listener, split.train_groups, config.distance
    )
    val_arrays, val_problems = load_training_data(split.val, config.crop, distance=config.distance)
    problems = [*split.problems, *problems, *val_problems]
    for problem in problems:
        listener.on_status(f"skipped: {problem}")
    if not train_arrays or (config.split == "hash" and len(train_arrays) < config.batch_size):
        raise ConfigError(
            f"only {len(train_arrays)} readable training images for batch size {config.batch_size}"
        )
    steps = config.steps_per_epoch or max(
        1, sum(array.count for array in train_arrays) // config.batch_size
    )
    drawn = epochs_done * steps * config.batch_size
    train_data, _ = training_dataset(
        train_arrays, config.crop, config.batch_size, config.seed, start=drawn
    )
    multiple = config.model_config().size_multiple
    val_data = validation_dataset(val_arrays, multiple, replicas) if val_arrays else None
    return TrainingInputs(
        train=train_data,
        val=val_data,
        steps=steps,
        n_train=len(train_arrays),
        n_val=len(val_arrays),
        n_test=split.n_test,
        problems=problems,
        nucleus_diameter_px=training_diameter(train_arrays),
        n_replayed=sum(group.startswith("rehearsal") for group in split.train_groups),
    )


def _model_and_state(
    config: TrainConfig, out: Path, strategy, policy: str, listener: TrainingListener
) -> tuple[object, RunState]:
    """The compiled model and its state: resumed from ``out`` when asked and possible, else new."""
    import keras

    from nuclei_core.network.losses import NucleiLoss, training_metrics
    from nuclei_core.network.model import load_model

    state_path, last_path = out / STATE_FILE, out / "checkpoint_last.keras"
    with strategy.scope():
        if config.resume and state_path.is_file() and last_path.is_file():
            state = RunState.read(state_path)
            model = load_model(last_path, compile=True)
            listener.on_status(f"resuming after epoch {state.epoch}")
            return model, state
        model, encoder_weights = build_for_training(config.model_config(), policy)
        if config.base_model:
            start_from(model, config.base_model)
            listener.on_status(f"starting from the weights of {config.base_model}")
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss=NucleiLoss(),
            metrics=training_metrics(),
        )
    return model, RunState(encoder_weights=encoder_weights)


def _start_session(
    config: TrainConfig, strategy, model, state: RunState, listener: TrainingListener
) -> Session:
    """Report the strategy and precision, record the command line, start the clock."""
    replicas = int(strategy.num_replicas_in_sync)
    precision = model_precision(model)  # a resumed run keeps its checkpoint's precision
    listener.on_status(
        f"strategy: {type(strategy).__name__} with {replicas} replica(s), precision {precision}"
    )
    command = config.command_line()
    state.start_session(command, segment_machine())
    return Session(replicas, precision, command, time.monotonic())


def _fit(
    config: TrainConfig,
    out: Path,
    model,
    inputs: TrainingInputs,
    state: RunState,
    listener: TrainingListener,
    should_stop: Callable[[], bool] | None,
) -> bool:
    """Fit until the epochs, patience, time budget or stop flag end it; True when stopped."""
    import keras

    from nuclei_core.training.callbacks import RunKeeper

    keeper = RunKeeper(config, out, inputs.steps, state, listener, should_stop)
    tensorboard = keras.callbacks.TensorBoard(out / "logs", profile_batch=0)
    listener.on_status(f"training: {inputs.steps} steps of {config.batch_size} crops per epoch")
    if state.has_work_left(config):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=QUIET_FIT_WARNINGS)
            model.fit(
                inputs.train,
                steps_per_epoch=inputs.steps,
                epochs=config.epochs,
                initial_epoch=state.epoch,
                validation_data=inputs.val,
                callbacks=[keeper, tensorboard],
                verbose=0,
            )
    return keeper.stopped


def _export_best(config: TrainConfig, out: Path) -> tuple[Path, int]:
    """Save the best checkpoint in float32 as ``model.keras``: its path and number of weights."""
    from nuclei_core.network.model import load_model, save_model

    best_path = out / "checkpoint_best.keras"
    if not best_path.is_file():
        raise NucleiError(f"{out}: training stopped before the first epoch ended; nothing saved")
    best_model = float32_copy(load_model(best_path), config.model_config())
    return save_model(best_model, out / "model.keras"), int(best_model.count_params())


def _finish(
    config: TrainConfig,
    out: Path,
    state: RunState,
    inputs: TrainingInputs,
    session: Session,
    stopped: bool,
) -> TrainResult:
    """Export the best model, write its card and the final state: the run's result."""
    model_path, n_parameters = _export_best(config, out)
    card = model_card(config, state, inputs, session, n_parameters=n_parameters, stopped=stopped)
    card_path = write_card(model_path, card)
    state.save(out / STATE_FILE)
    return TrainResult(
        model_path=model_path,
        card_path=card_path,
        history=state.history,
        best_epoch=state.best_epoch,
        stopped_early=state.stopped_early,
        status=card["status"],
        final_metrics=card["final_metrics"],
    )
