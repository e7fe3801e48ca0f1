"""Model cards: the JSON file that sits beside every ``.keras`` model.

A card says what the model is (architecture, parameters, number of weights),
how it was made (dataset, split, command, machine, wall time, per-epoch
history) and how good it is (validation metrics; test-split metrics once
``python -m nuclei_core evaluate --update-card`` has run).
"""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from nuclei_core.errors import ModelLoadError
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


def utc_now() -> str:
    """Current time as ISO-8601 UTC text, to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()
