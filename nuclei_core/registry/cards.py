"""Model cards: the JSON file that sits beside every ``.keras`` model.

A card says what the model is (architecture, parameters, number of weights),
how it was made (dataset, split, command, machine, wall time, per-epoch
history) and how good it is (validation metrics; test-split metrics once
``python -m nuclei_core evaluate --update-card`` has run).  :func:`parse_card`
checks the fields the run registry keeps of a card.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nuclei_core.checks import (
    check_dict,
    check_int,
    check_optional_int,
    check_optional_path,
    check_optional_str,
)
from nuclei_core.errors import InputError, InputTypeError, ModelLoadError
from nuclei_core.storage import atomic_write_json


def card_path(model_path) -> Path:
    """The card of ``models/x.keras`` is ``models/x.json``.

    Examples
    --------
    >>> card_path("models/default.keras").as_posix()
    'models/default.json'
    """
    return Path(model_path).with_suffix(".json")


def read_card(model_path) -> dict:
    """The card beside ``model_path``, or ``{}`` when there is none."""
    path = card_path(model_path)
    if not path.is_file():
        return {}
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{path}: model card is not valid JSON ({error})") from None
    if not isinstance(card, dict):
        raise ModelLoadError(f"{path}: model card is not a JSON object")
    return card


def training_commands(card: Mapping) -> list[str]:
    """The command lines that made a model, first to last: the card's ``commands`` (a model
    trained on from another lists the base model's too), else its one ``command``.

    Examples
    --------
    >>> training_commands({"commands": ["a", "b"], "command": "b"}), training_commands({})
    (['a', 'b'], [])
    >>> training_commands({"command": "a"})
    ['a']
    """
    commands = card.get("commands") or ([card["command"]] if card.get("command") else [])
    return list(commands)


def write_card(model_path, card: dict) -> Path:
    """Write the card beside ``model_path`` atomically."""
    path = card_path(model_path)
    atomic_write_json(path, card)
    return path


def machine_description() -> dict:
    """CPU count, platform and visible GPUs of this machine, for the card."""
    import tensorflow as tf

    return {
        "cpu_cores": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "tensorflow": tf.__version__,
    }


def segment_machine() -> dict:
    """What a training segment records of its machine: cores, processor, platform.

    Examples
    --------
    >>> sorted(segment_machine())
    ['cpu_cores', 'platform', 'processor']
    """
    return {
        "cpu_cores": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(terse=True),
    }


def utc_now() -> str:
    """Current time as ISO-8601 UTC text, to the second.

    Examples
    --------
    >>> utc_now().endswith("+00:00")
    True
    """
    return datetime.now(UTC).isoformat(timespec="seconds")


def as_utc_time(value: Any) -> str:
    """Return ``value`` (ISO-8601 text, maybe naive or ``Z``) as UTC text; now if unusable.

    A naive time is taken as UTC.

    Examples
    --------
    >>> as_utc_time("2024-05-01T14:30:00+02:00")
    '2024-05-01T12:30:00+00:00'
    """
    if not isinstance(value, str) or not value.strip():
        return utc_now()
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return utc_now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class CardFields:
    """The fields of a model card that the run registry keeps, checked.

    ``history`` holds ``(epoch, metrics)`` pairs, ``metrics`` being the
    card's per-epoch dict as it is (its ``epoch`` key included).
    """

    name: Any
    architecture: str | None
    params: dict[str, Any] = field(hash=False)
    dataset: str | None
    created_at: str
    best_epoch: int | None
    final_metrics: dict[str, Any] = field(hash=False)
    history: list[tuple[int, dict[str, Any]]] = field(hash=False)


def check_epoch(epoch: Any, name: str = "epoch") -> int:
    """Return an epoch number: an integer >= 0.

    Examples
    --------
    >>> check_epoch(-1)
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: epoch must be >= 0, not -1
    """
    number = check_int(epoch, name)
    if number < 0:
        raise InputError(f"{name} must be >= 0, not {number}")
    return number


def _history(history: Any, source: str) -> list[tuple[int, dict[str, Any]]]:
    """Check a card's ``history`` (a list of dicts, each with an ``epoch``)."""
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise InputTypeError(f"{source}: history must be a list, not {type(history).__name__}")
    pairs = []
    for index, entry in enumerate(history):
        name = f"{source}: history[{index}]"
        if not isinstance(entry, Mapping) or "epoch" not in entry:
            raise InputError(f"{name} has no 'epoch'")
        pairs.append((check_epoch(entry["epoch"], f"{name}['epoch']"), dict(entry)))
    return pairs


def _dataset_text(dataset):
    """A card's ``dataset``: one folder, or several (a list) joined as a path list.

    Examples
    --------
    >>> _dataset_text(["a/dsb", "b/he"]) == os.pathsep.join(["a/dsb", "b/he"])
    True
    """
    if isinstance(dataset, list) and all(isinstance(item, str) for item in dataset):
        return os.pathsep.join(dataset)
    return dataset


def parse_card(card: Any, source: str = "card") -> CardFields:
    """Check the fields of a model card that the run registry keeps.

    Missing fields are allowed; ``created_at`` becomes UTC text (now when
    missing or unreadable).

    Parameters
    ----------
    card : dict
        The model card: ``name``, ``architecture``, ``params``, ``dataset``,
        ``created_at``, ``history`` (per-epoch dicts with an ``epoch`` key),
        ``best_epoch``, ``final_metrics``.
    source : str, default "card"
        What to call the card in error messages (its file, usually).

    Returns
    -------
    CardFields
        The checked fields.

    Raises
    ------
    InputError, InputTypeError
        If the card is not a dict, its ``params``/``final_metrics`` are not
        dicts, or a ``history`` entry has no integer ``epoch``.

    Examples
    --------
    >>> fields = parse_card({"name": "shipped", "history": [{"epoch": 1, "loss": 0.3}]})
    >>> fields.name, fields.params, fields.history
    ('shipped', {}, [(1, {'epoch': 1, 'loss': 0.3})])
    >>> parse_card({"history": [{"loss": 0.3}]}, "models/shipped.json")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: models/shipped.json: history[0] has no 'epoch'
    """
    if not isinstance(card, Mapping):
        raise InputTypeError(f"card must be a dict, not {type(card).__name__}")
    return CardFields(
        name=card.get("name"),
        history=_history(card.get("history"), source),
        created_at=as_utc_time(card.get("created_at")),
        architecture=check_optional_str(card.get("architecture"), f"{source}: architecture"),
        params=check_dict(card.get("params"), f"{source}: params"),
        dataset=check_optional_path(_dataset_text(card.get("dataset")), f"{source}: dataset"),
        best_epoch=check_optional_int(card.get("best_epoch"), f"{source}: best_epoch"),
        final_metrics=check_dict(card.get("final_metrics"), f"{source}: final_metrics"),
    )
