"""The models and methods the default model is compared with: which exist here, how each was made.

* the default model and, with ``--model``, a candidate that may replace it;
* the original project's recipe (MobileNetV2 U-Net, 128 x 128 crops, batch 10):
  found as ``models/peers/mobilenetv2/model.keras``, or the commands that retrain it on
  the default model's data with its training runs;
* StarDist 2D, the tool a user would pick instead: its pretrained weights cannot be
  downloaded here, so it is trained here on the default model's data with its time
  budget (``python -m bench.stardist_peer``) and committed in ``models/peers/stardist``;
* two classical methods without learning (:data:`bench.sections.segmenters.CLASSICAL_METHODS`).

How the classical methods and StarDist segment an image is in :mod:`bench.sections.segmenters`.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path

from bench.sections.segmenters import CLASSICAL_METHODS
from bench.tools.paths import STARDIST_MODEL, relative
from nuclei_core.errors import NucleiError
from nuclei_core.registry.cards import read_card, training_commands

MODEL_LABELS = {
    "default": "default model (default settings)",
    "default_as_is": "default model, images as they are (no diameter estimate)",
    "default_tensorflow": "default model, TensorFlow float32",
    "default_float32": "default model, OpenVINO float32",
    "default_bfloat16": "default model, OpenVINO bfloat16",
    "candidate": "candidate model",
    "mobilenetv2": "original recipe (MobileNetV2, 128 px crops)",
    "stardist": "StarDist 2D (trained here, same data and budget)",
}
"""How each model's rows read in the report."""

MOBILENETV2_COMMAND = (
    "python -m nuclei_core train --data {data} --arch mobilenetv2 --crop 128 --batch-size 10 "
    "--epochs 100 --patience 10 --time-budget {minutes:g} --out {out} "
    "--name mobilenetv2-baseline"
)
"""The original project's recipe as a training command, for its data and time budget."""

RECIPE_DATA = ("../shared/data/dsb2018/stage1_train",)
RECIPE_MINUTES = 85.0
"""Data and time budget of the recipe when the default model's card does not say its own."""

ENCODER_STARTS = {"imagenet": "ImageNet weights", "random": "random weights"}
"""How a model card's ``encoder_weights`` reads in the Models table."""

CARD_FACTS = (
    "command",
    "commands",
    "train_seconds",
    "train_minutes_by_run",
    "epochs_run",
    "best_epoch",
    "stopped_early",
    "precision",
    "encoder_weights",
)
"""The model card's entries the Models table shows."""


# --------------------------------------------------------------------------- models


def load_optional_model(path):
    """``(model, None)``, or ``(None, reason)`` when the file is missing or does not load."""
    from nuclei_core.network.model import load_model

    if not Path(path).is_file():
        return None, f"{relative(path)} not found"
    try:
        return load_model(path), None
    except NucleiError as error:
        return None, str(error)


def card_or_empty(model_path) -> dict:
    """The model card beside ``model_path``; ``{}`` when it is missing or unreadable."""
    try:
        return read_card(model_path)
    except NucleiError:
        return {}


def made_with(card: dict) -> str:
    """The commands that made a model, in order, as the report shows them ('' when none).

    A resumed run lists its command once per session; it is shown once.

    Examples
    --------
    >>> made_with({"commands": ["a", "a", "b"]})
    '`a`, then `b`'
    >>> made_with({"command": "a"}), made_with({})
    ('`a`', '')
    """
    shown = []
    for command in training_commands(card):
        if not shown or shown[-1] != command:
            shown.append(command)
    return ", then ".join(f"`{command}`" for command in shown)


def describe_model(model, path) -> dict:
    """Runtime, architecture, parameters, file size and training facts from the model card."""
    from nuclei_core.network.model import load_model
    from nuclei_core.network.runtime import backend_of, describe

    card = card_or_empty(path)
    keras_model = model if backend_of(model) == "tensorflow" else load_model(path)
    return {
        "path": relative(path),
        "runtime": describe(model),
        "architecture": keras_model.name,
        "parameters": int(keras_model.count_params()),
        "file_megabytes": round(Path(path).stat().st_size / 1e6, 1),
        **{key: card[key] for key in CARD_FACTS if key in card},
    }


# --------------------------------------------------------------------------- peers


def training_minutes(default_card: dict) -> list[int]:
    """Minutes of each training run behind the default model, first to last.

    A model trained on from another one (``train --start-from``) lists the runs before
    it in its card (``train_minutes_by_run``); each peer gets the same runs, so the
    comparison gives both the same time.

    Examples
    --------
    >>> training_minutes({"train_minutes_by_run": [119.7, 58.2]})
    [120, 58]
    >>> training_minutes({"params": {"time_budget_minutes": 90.0}}), training_minutes({})
    ([90], [85])
    """
    minutes = default_card.get("train_minutes_by_run")
    if not minutes:
        minutes = [default_card.get("params", {}).get("time_budget_minutes") or RECIPE_MINUTES]
    return [round(value) for value in minutes]


def run_folder(peer: str, run: int) -> str:
    """Where run ``run`` (0 = the first) of a peer's training goes.

    >>> run_folder("stardist", 0), run_folder("stardist", 1)
    ('runs/stardist', 'runs/stardist-2')
    """
    return f"runs/{peer}" if run == 0 else f"runs/{peer}-{run + 1}"


def retrain_commands(default_card: dict) -> list[str]:
    """The commands that train the MobileNetV2 recipe on the default model's data and runs.

    The first run starts from random weights; each later one goes on from the run
    before with the default model's later learning rate, as the default model did.

    Examples
    --------
    >>> card = {"params": {"data": ["a/dsb", "b/he"], "learning_rate": 0.001},
    ...         "train_minutes_by_run": [120.1, 58.2]}
    >>> first, second = retrain_commands(card)
    >>> print(first)  # doctest: +NORMALIZE_WHITESPACE
    python -m nuclei_core train --data a/dsb b/he --arch mobilenetv2 --crop 128 --batch-size 10
    --epochs 100 --patience 10 --time-budget 120 --out runs/mobilenetv2
    --name mobilenetv2-baseline
    >>> print(second.split("--name mobilenetv2-baseline ")[1])
    --lr 0.001 --start-from runs/mobilenetv2/model.keras
    """
    params = default_card.get("params", {})
    data = params.get("data") or RECIPE_DATA
    folders = shlex.join([data] if isinstance(data, str) else data)
    commands = []
    for run, minutes in enumerate(training_minutes(default_card)):
        out = run_folder("mobilenetv2", run)
        command = MOBILENETV2_COMMAND.format(data=folders, minutes=minutes, out=out)
        if run > 0:
            learning_rate = params.get("learning_rate", 1e-3)
            start = f"{run_folder('mobilenetv2', run - 1)}/model.keras"
            command += f" --lr {learning_rate:g} --start-from {start}"
        commands.append(command)
    return commands


def stardist_commands(default_card: dict) -> list[str]:
    """The commands that train StarDist 2D on the default model's data and runs.

    Examples
    --------
    >>> first, second = stardist_commands({"train_minutes_by_run": [120.1, 58.2]})
    >>> print(first)
    python -m bench.stardist_peer train --minutes 120 --out runs/stardist
    >>> print(second.split(" train ")[1])
    --minutes 58 --out runs/stardist-2 --start-from runs/stardist/stardist --seed 1
    """
    commands = []
    for run, minutes in enumerate(training_minutes(default_card)):
        command = f"python -m bench.stardist_peer train --minutes {minutes:g} "
        command += f"--out {run_folder('stardist', run)}"
        if run > 0:
            command += f" --start-from {run_folder('stardist', run - 1)}/stardist --seed {run}"
        commands.append(command)
    return commands


def mobilenetv2_peer(model_path, default_card: dict) -> dict:
    """Whether the recipe's model is here, and the command that made it (or would make it).

    Examples
    --------
    >>> peer = mobilenetv2_peer("/nowhere/model.keras", {})
    >>> peer["found"], peer["how"].split(" --arch")[0]
    (False, '`python -m nuclei_core train --data ../shared/data/dsb2018/stage1_train')
    """
    shown = relative(model_path)
    peer = {"name": "mobilenetv2", "label": MODEL_LABELS["mobilenetv2"], "path": shown}
    if not Path(model_path).is_file():
        how = made_with({"commands": retrain_commands(default_card)})
        status = (
            f"`{shown}` not found here; the commands retrain it on the default model's data "
            "with its training runs"
        )
        return {**peer, "found": False, "status": status, "how": how}
    how = made_with(card_or_empty(model_path))
    how = how or f"unknown: no model card with a command beside `{shown}`"
    return {**peer, "found": True, "status": f"found at `{shown}`", "how": how}


def stardist_missing(model_dir=STARDIST_MODEL) -> str | None:
    """Why the StarDist row cannot run here (None when it can).

    Examples
    --------
    >>> "not found" in stardist_missing("/nowhere/stardist")
    True
    """
    if not (Path(model_dir) / "weights_best.h5").is_file():
        return f"{relative(model_dir)}/weights_best.h5 not found"
    for package in ("stardist", "tf_keras"):
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed (pip install -r bench/requirements-peers.txt)"
    return None


def stardist_peer(model_dir=STARDIST_MODEL) -> dict:
    """StarDist 2D: whether it can run here, and the command that trained it.

    Examples
    --------
    >>> peer = stardist_peer("/nowhere/stardist")
    >>> peer["found"], "cannot be downloaded" in peer["status"]
    (False, True)
    """
    card_path = Path(model_dir) / "card.json"
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    how = made_with(card) or "`python -m bench.train_peers`"
    if card:
        how += (
            f" ({card['epochs_run']} epochs of {card['steps_per_epoch']} batches of "
            f"{card['batch_size']} in "
            f"{card['train_seconds'] / 60:.0f} min; thresholds optimised on the validation "
            f"images: probability {card['thresholds']['prob']:.2f}, overlap "
            f"{card['thresholds']['nms']:.2f})"
        )
    missing = stardist_missing(model_dir)
    status = "its pretrained weights cannot be downloaded here (no network); "
    status += f"trained here, found at `{relative(model_dir)}`" if not missing else missing
    return {
        "name": "stardist",
        "label": MODEL_LABELS["stardist"],
        "found": missing is None,
        "status": status,
        "how": how,
    }


def find_peers(mobilenetv2_path, default_card: dict) -> list[dict]:
    """Every peer of the default model: ``name, label, found, status, how`` (how it was made).

    ``how`` is markdown: the command that made the peer (or makes it again) in backticks.

    Examples
    --------
    >>> [peer["name"] for peer in find_peers("/nowhere/model.keras", {})]
    ['mobilenetv2', 'stardist', 'classical', 'classical_he']
    """
    without_learning = [
        {"name": name, "label": label, "found": True, "status": "no training", "how": how}
        for name, (label, _, how) in CLASSICAL_METHODS.items()
    ]
    return [mobilenetv2_peer(mobilenetv2_path, default_card), stardist_peer(), *without_learning]
