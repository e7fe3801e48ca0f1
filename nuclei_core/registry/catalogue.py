"""The model catalogue: the trained models one can switch to, add and delete.

A model is a registered run (:class:`~nuclei_core.registry.Run`) with a ``.keras``
file. This module registers the bundled default model from its card
(:func:`bootstrap_registry`), lists the models with a file (:func:`model_runs`),
reads what a run recorded (:func:`validation_metrics`, :func:`latest_training_run`),
adds an uploaded model file (:func:`import_model`) and deletes one
(:func:`delete_model`).

Importing this module does not import TensorFlow; :func:`import_model` does.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

from nuclei_core.errors import InputTypeError, ModelLoadError
from nuclei_core.locations import data_folder, default_model_path
from nuclei_core.registry import cards
from nuclei_core.storage import atomic_write_bytes, ensure_dir

VALIDATION_METRICS = ("dice", "iou", "accuracy", "loss")
"""The validation metrics a run may record (as ``val_<name>``), in the order shown."""

__all__ = [
    "VALIDATION_METRICS",
    "bootstrap_registry",
    "delete_model",
    "has_model_file",
    "import_model",
    "is_bundled",
    "latest_training_run",
    "model_file_key",
    "model_runs",
    "slug",
    "validation_metrics",
]


def slug(text: str) -> str:
    """File-name-safe version of a name.

    Examples
    --------
    >>> slug("My model (v2).keras")
    'My-model-v2-.keras'
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")
    return cleaned[:60] or "model"


def bootstrap_registry(registry, model_path=None):
    """Register the bundled default model from its card; make it active if none is.

    Idempotent: a model already registered (same file) is not added twice.

    Parameters
    ----------
    registry : Registry
        The run registry.
    model_path : str or path-like, optional
        The model file; default :func:`nuclei_core.locations.default_model_path`.

    Returns
    -------
    Run or None
        The default model's run, or ``None`` when there is no default model file.

    Raises
    ------
    ModelLoadError
        The card beside the model is not valid JSON.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> bootstrap_registry(registry, folder / "missing.keras") is None
    True
    >>> _ = (folder / "default.keras").write_bytes(b"model")
    >>> bootstrap_registry(registry, folder / "default.keras").name
    'default'
    >>> registry.active_model().name
    'default'
    """
    path = Path(model_path) if model_path is not None else default_model_path()
    if not path.is_file():
        return None
    card = cards.read_card(path)
    card_file = cards.card_path(path)
    run = registry.register_model_card(
        card, path.resolve(), card_file.resolve() if card_file.is_file() else None
    )
    if registry.active_model() is None:
        registry.set_active_model(run.id)
    return run


def has_model_file(run) -> bool:
    """Whether a run names a model file that exists.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> has_model_file(SimpleNamespace(model_path=None))
    False
    """
    return bool(run.model_path) and Path(run.model_path).is_file()


def model_runs(registry) -> list:
    """Registered runs that have a model file (the models one can switch to), newest first.

    Examples
    --------
    >>> _ = registry.create_run("no-file", "unet", {}, "data")
    >>> model_runs(registry)
    []
    """
    return [run for run in registry.list_runs() if not run.is_active and has_model_file(run)]


def model_file_key(run) -> tuple[str, int]:
    """``(path, modification time in ns)`` of a run's model: the key of a loaded-model cache.

    Raises
    ------
    ModelLoadError
        The run has no model file (deleted or moved).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model_file_key(SimpleNamespace(name="gone", model_path="/nowhere/gone.keras"))
    Traceback (most recent call last):
    ...
    nuclei_core.errors.ModelLoadError: model 'gone': its file /nowhere/gone.keras is missing
    """
    if not has_model_file(run):
        raise ModelLoadError(f"model {run.name!r}: its file {run.model_path} is missing")
    path = Path(run.model_path)
    return str(path), path.stat().st_mtime_ns


def validation_metrics(run) -> dict[str, float]:
    """The run's finite validation metrics as ``{metric: value}``, in :data:`VALIDATION_METRICS`.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> run = SimpleNamespace(final_metrics={"val_loss": 0.2, "val_dice": 0.8, "dice": 0.9})
    >>> validation_metrics(run)
    {'dice': 0.8, 'loss': 0.2}
    """
    found = {}
    for metric in VALIDATION_METRICS:
        value = (run.final_metrics or {}).get(f"val_{metric}")
        if isinstance(value, (int, float)) and math.isfinite(value):
            found[metric] = float(value)
    return found


def latest_training_run(registry):
    """The run whose training started last (``None`` when no training ever started).

    Examples
    --------
    >>> latest_training_run(registry) is None
    True
    >>> _ = registry.create_run("first", "unet", {}, "data", status="running")
    >>> _ = registry.register_model_card({"name": "uploaded"}, "uploaded.keras", None)
    >>> latest_training_run(registry).name
    'first'
    """
    started = [run for run in registry.list_runs() if run.started_at]
    return max(started, key=lambda run: run.id) if started else None


def _architecture_of(model) -> str | None:
    name = getattr(model, "name", "") or ""
    if "mobilenet" in name:
        return "mobilenetv2"
    if "unet" in name:
        return "unet"
    return None


def import_model(
    data: bytes, file_name: str, registry, name: str | None = None, owner: str | None = None
):
    """Add an uploaded ``.keras`` file to the data folder and the registry.

    The file is saved under ``<data dir>/models/`` (``owner``'s own models folder for a
    signed-in user's upload, :func:`models_folder`), then loaded with
    :func:`nuclei_core.network.model.load_model` (``safe_mode=True``, shape checks); a
    file that is refused is removed again.

    Returns
    -------
    Run
        The registered model, ``owner``'s (an identical file uploaded before by the same
        user gives its run).

    Raises
    ------
    ModelLoadError
        Not a ``.keras`` file, unsafe, does not load, or the wrong input/output shape;
        the message names ``file_name``.

    Examples
    --------
    >>> import_model(b"", "weights.h5", registry=None)
    Traceback (most recent call last):
    ...
    nuclei_core.errors.ModelLoadError: weights.h5: model files must end in .keras
    """
    if not isinstance(data, (bytes, bytearray)):
        raise InputTypeError(f"model data must be bytes, got {type(data).__name__}")
    label = Path(str(file_name)).name or "upload.keras"
    if not label.lower().endswith(".keras"):
        raise ModelLoadError(f"{label}: model files must end in .keras")
    if not data:
        raise ModelLoadError(f"{label}: file is empty")
    from nuclei_core.network.model import load_model

    digest = hashlib.sha256(bytes(data)).hexdigest()[:10]
    target = ensure_dir(models_folder(owner)) / f"{slug(Path(label).stem)}-{digest}.keras"
    if not target.is_file():
        atomic_write_bytes(target, bytes(data))
    try:
        model = load_model(target)
    except ModelLoadError as error:
        target.unlink(missing_ok=True)
        raise ModelLoadError(str(error).replace(str(target), label)) from None
    card_file = cards.card_path(target)
    card = cards.read_card(target) or {
        "name": (name or "").strip() or Path(label).stem,
        "architecture": _architecture_of(model),
        "params": {"source": "uploaded file", "file_name": label},
        "n_parameters": int(model.count_params()),
        "created_at": cards.utc_now(),
    }
    cards.write_card(target, card)
    return registry.register_model_card(
        card, target, card_file, name=(name or "").strip() or None, owner=owner
    )


def models_folder(owner: str | None) -> Path:
    """Where uploaded and imported models are kept: ``<data folder>/models`` for shared
    ones, ``<data folder>/users/<owner's folder>/models`` for a signed-in user's.

    Examples
    --------
    >>> models_folder(None) == data_folder() / "models"
    True
    >>> models_folder("ada").parent.parent.name
    'users'
    """
    if owner is None:
        return data_folder() / "models"
    from nuclei_core.access.users import user_folder

    return user_folder(owner) / "models"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def is_bundled(run) -> bool:
    """Whether a run's model is the bundled default model (which cannot be deleted).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> is_bundled(SimpleNamespace(model_path=None)), is_bundled(SimpleNamespace(model_path="x"))
    (False, False)
    """
    path = run.model_path
    return bool(path) and Path(path).resolve() == default_model_path().resolve()


def delete_model(registry, run_id: int) -> list[Path]:
    """Remove a model from the registry; delete its files when they live in the data folder.

    Files elsewhere (a model trained by the CLI) are left on disk, and the bundled default
    model cannot be removed (every new session would start with no model).  The OpenVINO
    export of a deleted file (``<name>.openvino/``, beside it) goes with it.

    Returns
    -------
    list of Path
        The files and folders deleted.

    Raises
    ------
    InputError
        The run is the bundled default model.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "elsewhere.keras").write_bytes(b"model")
    >>> run = registry.register_model_card({}, folder / "elsewhere.keras", None)
    >>> delete_model(registry, run.id), (folder / "elsewhere.keras").is_file()
    ([], True)
    """
    import shutil

    from nuclei_core.errors import InputError

    run = registry.get_run(run_id)
    if is_bundled(run):
        raise InputError(
            f"model {run.name!r} is the bundled default model and cannot be deleted; "
            "make another model the default instead"
        )
    registry.delete_run(run_id)
    removed = []
    folder = data_folder()
    for text in (run.model_path, run.card_path):
        if text and Path(text).is_file() and _inside(Path(text), folder):
            Path(text).unlink(missing_ok=True)
            removed.append(Path(text))
    if run.model_path and Path(run.model_path) in removed:
        model_path = Path(run.model_path)
        export = model_path.with_name(model_path.stem + ".openvino")
        if export.is_dir():
            shutil.rmtree(export, ignore_errors=True)
            removed.append(export)
    return removed
