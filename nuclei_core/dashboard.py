"""Engine helpers for the dashboard pages: model catalogue, image rendering, exports, curves.

The Streamlit pages only lay out widgets; whatever they show or offer for download
is computed here, without Streamlit, so it can be tested and reused:

* the model catalogue: registering the bundled default model from its card
  (:func:`bootstrap_registry`), the registered models with a file
  (:func:`model_runs`), a one-line summary of a model (:func:`model_summary`),
  adding an uploaded ``.keras`` file (:func:`import_model`), deleting one
  (:func:`delete_model`);
* reading uploads with the engine's warnings collected as text
  (:func:`read_upload`, :func:`read_ground_truth`);
* pictures and files to download: probability map, thumbnails, a slider view,
  mask / 16-bit label PNG / TIFF, CSV (:func:`mask_png`, :func:`labels_tiff` ...);
* browsing a dataset folder (:func:`check_dataset_folder`, :func:`evaluate_folder`);
* training progress text and the per-epoch curves (:func:`history_frame`,
  :func:`curves_chart`).

Importing this module does not import TensorFlow; :func:`import_model` does.
"""

from __future__ import annotations

import hashlib
import io as _stdio
import math
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from nuclei_core import cards, instances, io, metrics, segment
from nuclei_core.errors import DatasetError, InputTypeError, ModelLoadError
from nuclei_core.storage import atomic_write_bytes, data_dir, ensure_dir

PROJECT_ROOT = segment.PROJECT_ROOT
DEFAULT_MODEL_ENV = "NUCLEI_DEFAULT_MODEL"
"""Environment variable naming another bundled default model file (tests, deployments)."""
SAMPLES_ENV = "NUCLEI_SAMPLES_DIR"
"""Environment variable naming another folder of bundled sample images."""

ARCHITECTURE_LABELS = {
    "unet": "U-Net",
    "mobilenetv2": "MobileNetV2 U-Net (the original project's model)",
}
CURVE_METRICS = ("loss", "accuracy", "iou", "dice")
METRIC_LABELS = {
    "loss": "loss",
    "accuracy": "pixel accuracy",
    "iou": "foreground IoU",
    "dice": "Dice",
}
SCORE_LABELS = {
    "pixel_accuracy": "Pixel accuracy",
    "foreground_iou": "Foreground IoU",
    "dice": "Dice",
    "f1": "F1 @ IoU 0.5",
    "dsb_score": "DSB score",
    "count_error": "Count error",
}
IMAGE_TYPES = ("png", "jpg", "jpeg", "tif", "tiff")
GROUND_TRUTH_TYPES = ("png", "tif", "tiff", "zip")


# --------------------------------------------------------------------------- locations


def default_model_path() -> Path:
    """The bundled default model: ``$NUCLEI_DEFAULT_MODEL`` or ``models/default.keras``.

    Examples
    --------
    >>> default_model_path().suffix
    '.keras'
    """
    configured = os.environ.get(DEFAULT_MODEL_ENV, "").strip()
    return Path(configured).expanduser() if configured else segment.DEFAULT_MODEL


def sample_folder() -> Path:
    """The bundled sample images: ``$NUCLEI_SAMPLES_DIR`` or ``sample_images/``."""
    configured = os.environ.get(SAMPLES_ENV, "").strip()
    return Path(configured).expanduser() if configured else PROJECT_ROOT / "sample_images"


def sample_images(folder=None) -> list[Path]:
    """Image files of the sample folder (``inputs/`` or ``images/`` of the flat layout).

    A missing folder gives ``[]``.
    """
    root = Path(folder) if folder is not None else sample_folder()
    found: list[Path] = []
    for sub in ("inputs", "images", "test/inputs", "test/images", "."):
        candidate = root / sub
        if candidate.is_dir():
            found += [
                path
                for path in sorted(candidate.iterdir())
                if path.is_file()
                and path.suffix.lower() in io.IMAGE_SUFFIXES
                and not path.name.startswith(".")
            ]
        if found:
            break
    return found


def sample_mask(image_path) -> Path | None:
    """The mask of a flat-layout sample image (``masks/<stem>[_mask].png``), if there is one."""
    image_path = Path(image_path)
    masks = image_path.parent.parent / "masks"
    if not masks.is_dir():
        return None
    for path in sorted(masks.iterdir()):
        stem = path.stem
        for suffix in ("", *io.MASK_STEM_SUFFIXES):
            if stem == image_path.stem + suffix and path.suffix.lower() in io.IMAGE_SUFFIXES:
                return path
    return None


def check_dataset_folder(text, base=None) -> Path:
    """Resolve a folder typed by the user and check it can be browsed.

    Relative paths are taken from the project folder (``base``).

    Raises
    ------
    DatasetError
        Empty, missing, not a folder, or not readable.

    Examples
    --------
    >>> import tempfile
    >>> check_dataset_folder(tempfile.gettempdir()).is_dir()
    True
    """
    if not isinstance(text, (str, os.PathLike)):
        raise InputTypeError(f"folder must be text, got {type(text).__name__}")
    cleaned = os.fspath(text).strip()
    if not cleaned:
        raise DatasetError("dataset folder: no folder given")
    path = Path(cleaned).expanduser()
    if not path.is_absolute():
        path = Path(base if base is not None else PROJECT_ROOT) / path
    path = path.resolve()
    if not path.exists():
        raise DatasetError(f"{path}: dataset folder does not exist")
    if not path.is_dir():
        raise DatasetError(f"{path}: not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise DatasetError(f"{path}: folder is not readable (permission denied)")
    return path


def slug(text: str) -> str:
    """File-name-safe version of a name.

    Examples
    --------
    >>> slug("My model (v2).keras")
    'My-model-v2-.keras'
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")
    return cleaned[:60] or "model"


# --------------------------------------------------------------------------- model catalogue


def bootstrap_registry(registry, model_path=None):
    """Register the bundled default model from its card; make it active if none is.

    Idempotent: a model already registered (same file) is not added twice.

    Returns
    -------
    Run or None
        The default model's run, or ``None`` when there is no default model file.

    Raises
    ------
    ModelLoadError
        The card beside the model is not valid JSON.
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
    """Whether a run names a model file that exists."""
    return bool(run.model_path) and Path(run.model_path).is_file()


def model_runs(registry) -> list:
    """Registered runs that have a model file (the models one can switch to), newest first."""
    return [run for run in registry.list_runs() if not run.is_active and has_model_file(run)]


def model_file_key(run) -> tuple[str, int]:
    """``(path, modification time in ns)`` of a run's model: the key of a loaded-model cache.

    Raises
    ------
    ModelLoadError
        The run has no model file (deleted or moved).
    """
    if not has_model_file(run):
        raise ModelLoadError(f"model {run.name!r}: its file {run.model_path} is missing")
    path = Path(run.model_path)
    return str(path), path.stat().st_mtime_ns


def format_date(text: str | None) -> str:
    """``2024-05-01 12:30 UTC`` from an ISO-8601 timestamp (``"unknown"`` when missing).

    Examples
    --------
    >>> format_date("2024-05-01T12:30:10+00:00")
    '2024-05-01 12:30 UTC'
    """
    if not text:
        return "unknown"
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(text)


def validation_metrics(run) -> dict[str, float]:
    """The run's validation metrics as ``{label: value}`` (Dice, IoU, pixel accuracy, loss).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> validation_metrics(SimpleNamespace(final_metrics={"val_dice": 0.8, "dice": 0.9}))
    {'Dice': 0.8}
    """
    found = {}
    for key in ("dice", "iou", "accuracy", "loss"):
        value = (run.final_metrics or {}).get(f"val_{key}")
        if isinstance(value, (int, float)) and math.isfinite(value):
            found[METRIC_LABELS[key][0].upper() + METRIC_LABELS[key][1:]] = float(value)
    return found


def architecture_label(architecture: str | None) -> str:
    """Readable architecture name.

    Examples
    --------
    >>> architecture_label("unet"), architecture_label(None)
    ('U-Net', 'unknown')
    """
    if not architecture:
        return "unknown"
    return ARCHITECTURE_LABELS.get(architecture, architecture)


def model_summary(run) -> dict:
    """What the sidebar shows about a model: name, architecture, validation metrics, date."""
    return {
        "name": run.name,
        "architecture": architecture_label(run.architecture),
        "metrics": validation_metrics(run),
        "date": format_date(run.finished_at or run.created_at),
        "status": run.status,
    }


def run_label(run) -> str:
    """One line naming a run in a select box.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> run = SimpleNamespace(name="u", architecture="unet", status="finished",
    ...                       finished_at="2024-05-01T12:30:00+00:00", created_at=None)
    >>> run_label(run)
    'u · U-Net · 2024-05-01 12:30 UTC'
    """
    label = f"{run.name} · {architecture_label(run.architecture).split(' (')[0]}"
    label += f" · {format_date(run.finished_at or run.created_at)}"
    if run.status not in ("finished",):
        label += f" · {run.status}"
    return label


def _architecture_of(model) -> str | None:
    name = getattr(model, "name", "") or ""
    if "mobilenet" in name:
        return "mobilenetv2"
    if "unet" in name:
        return "unet"
    return None


def import_model(data: bytes, file_name: str, registry, name: str | None = None):
    """Add an uploaded ``.keras`` file to the data folder and the registry.

    The file is saved under ``<data dir>/models/``, then loaded with
    :func:`nuclei_core.model.load_model` (``safe_mode=True``, shape checks); a
    file that is refused is removed again.

    Returns
    -------
    Run
        The registered model (an identical file uploaded before gives its run).

    Raises
    ------
    ModelLoadError
        Not a ``.keras`` file, unsafe, does not load, or the wrong input/output shape;
        the message names ``file_name``.
    """
    from nuclei_core.model import load_model

    if not isinstance(data, (bytes, bytearray)):
        raise InputTypeError(f"model data must be bytes, got {type(data).__name__}")
    label = Path(str(file_name)).name or "upload.keras"
    if not label.lower().endswith(".keras"):
        raise ModelLoadError(f"{label}: model files must end in .keras")
    if not data:
        raise ModelLoadError(f"{label}: file is empty")
    digest = hashlib.sha256(bytes(data)).hexdigest()[:10]
    folder = ensure_dir(data_dir() / "models")
    target = folder / f"{slug(Path(label).stem)}-{digest}.keras"
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
    return registry.register_model_card(card, target, card_file, name=(name or "").strip() or None)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def delete_model(registry, run_id: int) -> list[Path]:
    """Remove a model from the registry; delete its files when they live in the data folder.

    Files elsewhere (the bundled default model, a model trained by the CLI) are
    left on disk.

    Returns
    -------
    list of Path
        The files deleted.
    """
    run = registry.delete_run(run_id)
    removed = []
    folder = data_dir()
    for text in (run.model_path, run.card_path):
        if text and Path(text).is_file() and _inside(Path(text), folder):
            Path(text).unlink(missing_ok=True)
            removed.append(Path(text))
    return removed


# --------------------------------------------------------------------------- reading uploads


def _collect_warnings(function, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function(*args, **kwargs)
    return result, [str(item.message) for item in caught]


def read_upload(data: bytes, name: str):
    """Read an uploaded image; returns ``(image, warnings)`` (warnings as one-line texts).

    Raises
    ------
    ImageReadError
        Not a readable PNG, JPEG or TIFF image.
    """
    return _collect_warnings(io.read_image, data, name=name)


def read_ground_truth(data: bytes, name: str, shape):
    """Read uploaded ground truth (mask, label image, zip); returns ``(labels, warnings)``.

    Raises
    ------
    GroundTruthError
        Unreadable, empty, or not the size of the image.
    """
    return _collect_warnings(io.read_labels, data, name=name, shape=tuple(shape[:2]))


def image_digest(data: bytes) -> str:
    """Short content hash of an upload (the key of cached predictions).

    Examples
    --------
    >>> image_digest(b"abc")
    'ba7816bf8f01cfea'
    """
    return hashlib.sha256(bytes(data)).hexdigest()[:16]


# --------------------------------------------------------------------------- pictures and files


def mask_png(labels: np.ndarray) -> bytes:
    """Binary mask PNG: nuclei 255, background 0."""
    return io.encode_png(((np.asarray(labels) > 0) * 255).astype(np.uint8))


def labels_png16(labels: np.ndarray) -> bytes:
    """16-bit label PNG (0 = background, 1..N = nuclei)."""
    return io.encode_png(io.labels_to_uint16(labels))


def labels_tiff(labels: np.ndarray) -> bytes:
    """Label image as a compressed TIFF (16-bit, 32-bit above 65,535 nuclei).

    Examples
    --------
    >>> labels = np.zeros((4, 4), np.int32); labels[1:3, 1:3] = 1
    >>> int(io.read_labels(labels_tiff(labels)).max())
    1
    """
    import tifffile

    labels = np.asarray(labels)
    dtype = np.uint16 if (not labels.size or labels.max() <= 65535) else np.uint32
    buffer = _stdio.BytesIO()
    tifffile.imwrite(buffer, labels.astype(dtype), compression="zlib")
    return buffer.getvalue()


def table_csv(table: pd.DataFrame) -> bytes:
    """A table as UTF-8 CSV bytes (no index)."""
    return table.to_csv(index=False).encode("utf-8")


def probability_rgb(probabilities: np.ndarray) -> np.ndarray:
    """The foreground probability as a viridis-coloured uint8 ``(H, W, 3)`` image.

    Examples
    --------
    >>> probability_rgb(np.zeros((2, 3, 2), np.float32)).shape
    (2, 3, 3)
    """
    from matplotlib import colormaps

    channel = np.asarray(probabilities)
    channel = channel[..., 0] if channel.ndim == 3 else channel
    table = (colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    index = np.clip(np.nan_to_num(channel) * 255 + 0.5, 0, 255).astype(np.uint8)
    return table[index]


def thumbnail(rgb: np.ndarray, max_side: int = 256) -> np.ndarray:
    """A copy of an image whose longer side is at most ``max_side`` pixels.

    Examples
    --------
    >>> thumbnail(np.zeros((1000, 500, 3), np.uint8)).shape
    (256, 128, 3)
    """
    import cv2

    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return rgb.copy()
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def display_size(rgb: np.ndarray, max_side: int = 2048, max_width: int = 1460) -> np.ndarray:
    """Shrink very large or very wide images for the browser (the downloads keep full size).

    ``st.image`` scales a picture wider than the page (about 1460 pixels) down to the
    page width; a 1-pixel-high strip would become 0 pixels high and fail, so wide
    pictures are shrunk to ``max_width`` here, keeping at least one pixel of height.

    Examples
    --------
    >>> display_size(np.zeros((3, 5000, 3), np.uint8)).shape
    (1, 1460, 3)
    """
    width = rgb.shape[1]
    side = min(max_side, max(rgb.shape[:2]) * max_width // width) if width > max_width else max_side
    return thumbnail(rgb, max(1, side))


def split_view(left: np.ndarray, right: np.ndarray, fraction: float) -> np.ndarray:
    """Slider view: ``left`` up to ``fraction`` of the width, ``right`` after, a white line between.

    Examples
    --------
    >>> view = split_view(np.zeros((2, 10, 3), np.uint8), np.full((2, 10, 3), 9, np.uint8), 0.5)
    >>> view[0, 0].tolist(), view[0, 9].tolist(), view[0, 5].tolist()
    ([0, 0, 0], [9, 9, 9], [255, 255, 255])
    """
    if left.shape != right.shape:
        raise InputTypeError(f"views must have the same shape, got {left.shape} and {right.shape}")
    width = left.shape[1]
    cut = int(round(min(max(float(fraction), 0.0), 1.0) * width))
    view = right.copy()
    view[:, :cut] = left[:, :cut]
    line = max(1, width // 300)
    if 0 < cut < width:
        view[:, max(0, cut - line // 2) : cut + (line + 1) // 2] = 255
    return view


def comparison(true_labels: np.ndarray, labels: np.ndarray):
    """Scores and error map (1 TP, 2 FP, 3 FN) of a prediction against ground truth."""
    return metrics.evaluate_labels(true_labels, labels), metrics.error_map(true_labels, labels)


def score_items(scores) -> list[tuple[str, str]]:
    """``(label, text)`` pairs of the six scores the Segment page shows.

    Examples
    --------
    >>> labels = np.array([[1, 0], [0, 2]])
    >>> dict(score_items(metrics.evaluate_labels(labels, labels)))["Count error"]
    '+0'
    """
    values = scores.as_dict()
    items = []
    for key, label in SCORE_LABELS.items():
        value = values[key]
        items.append((label, f"{value:+d}" if key == "count_error" else f"{value:.3f}"))
    return items


def error_legend() -> list[tuple[str, str]]:
    """``(name, "#rrggbb")`` of the error overlay colours (true/false positive, missed).

    Examples
    --------
    >>> [name for name, _ in error_legend()]
    ['true positive', 'false positive', 'missed nucleus (false negative)']
    """
    legend = []
    for code in sorted(instances.ERROR_COLOURS):
        name, (red, green, blue) = instances.ERROR_COLOURS[code]
        if name == "false negative":
            name = "missed nucleus (false negative)"
        legend.append((name, f"#{red:02x}{green:02x}{blue:02x}"))
    return legend


def error_legend_html() -> str:
    """The legend as a line of coloured squares (fixed HTML, no user text)."""
    parts = [
        f'<span style="display:inline-block;width:0.9em;height:0.9em;background:{colour};'
        f'vertical-align:middle;margin-right:0.3em"></span>{name}'
        for name, colour in error_legend()
    ]
    return " &nbsp; ".join(parts)


# --------------------------------------------------------------------------- browsing a folder


@dataclass
class FolderResult:
    """Scores of every image of a dataset folder and a thumbnail of each prediction."""

    folder: Path
    split: str
    results: list
    problems: list[str]
    samples: dict = field(default_factory=dict)  # id -> io.Sample
    thumbnails: dict = field(default_factory=dict)  # id -> uint8 (h, w, 3)
    seconds: float = 0.0

    def result(self, sample_id: str):
        return next((item for item in self.results if item.id == sample_id), None)


def evaluate_folder(
    model,
    folder,
    split: str = "all",
    options: segment.SegmentOptions | None = None,
    progress=None,
    thumbnail_side: int = 256,
) -> FolderResult:
    """Segment and score the images of one split of a dataset folder.

    ``progress(done, total)`` is called after each image.

    Raises
    ------
    DatasetError
        The folder holds no image/mask pairs, or the split is empty.
    """
    options = options or segment.SegmentOptions()
    dataset = io.discover_dataset(folder)
    samples = io.select_split(dataset, split)
    if not samples:
        raise DatasetError(f"{dataset.root}: the {split} split has no images")
    thumbnails: list[np.ndarray] = []

    def segmenter(image):
        labels = segment.segment_image(model, image, options).labels
        thumbnails.append(
            thumbnail(instances.overlay(io.to_display_rgb(image), labels), thumbnail_side)
        )
        return labels

    started = time.perf_counter()
    results, problems = segment.evaluate_samples(segmenter, samples, options, progress)
    return FolderResult(
        folder=dataset.root,
        split=split,
        results=results,
        problems=list(dataset.problems) + problems,
        samples={sample.id: sample for sample in samples},
        thumbnails={result.id: thumb for result, thumb in zip(results, thumbnails, strict=True)},
        seconds=time.perf_counter() - started,
    )


def results_frame(results) -> pd.DataFrame:
    """One row of scores per image."""
    return pd.DataFrame([result.row() for result in results])


def kind_summary_frame(results) -> pd.DataFrame:
    """Mean scores over all images and per image kind, one row per group."""
    summary = segment.summarize_by_kind(results)
    rows = [{"images": group, **values} for group, values in summary.items()]
    return pd.DataFrame(rows)


def order_results(results, worst_first: bool = True, kinds=None, key: str = "dsb_score"):
    """Results filtered by image kind and sorted by a score (worst first by default)."""
    chosen = [result for result in results if not kinds or result.kind in kinds]
    return sorted(
        chosen, key=lambda result: (getattr(result.scores, key), result.id), reverse=not worst_first
    )


def sample_views(sample, result):
    """Display image, ground-truth overlay, prediction overlay and error overlay of a sample.

    Raises
    ------
    ImageReadError, GroundTruthError
        The image or its mask can no longer be read.
    """
    image, true_labels = io.load_sample(sample)
    rgb = io.to_display_rgb(image)
    error = metrics.error_map(true_labels, result.labels)
    return {
        "image": rgb,
        "truth": instances.overlay(rgb, true_labels),
        "prediction": instances.overlay(rgb, result.labels),
        "errors": instances.error_overlay(rgb, error),
    }


# --------------------------------------------------------------------------- training


def format_eta(seconds) -> str:
    """Remaining time in words.

    Examples
    --------
    >>> format_eta(None), format_eta(42), format_eta(125), format_eta(7300)
    ('unknown', 'under a minute', 'about 2 min', 'about 2 h 2 min')
    """
    if seconds is None or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "unknown"
    if seconds < 60:
        return "under a minute"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"about {minutes} min"
    return f"about {minutes // 60} h {minutes % 60} min"


def job_progress(status: dict) -> tuple[float, str]:
    """Progress fraction in [0, 1] and a line of text from ``jobs.job_status``.

    ``epoch`` is the 1-based epoch in progress (0 before training starts).

    Examples
    --------
    >>> job_progress({"epoch": 2, "epochs": 4, "step": 5, "steps": 10, "eta_seconds": 90})
    (0.375, 'Epoch 2 of 4 · batch 5 of 10 · about 2 min left')
    >>> job_progress({"epoch": 0, "epochs": 4})
    (0.0, 'Preparing the data (epoch 1 of 4 comes next)')
    """
    epochs = max(int(status.get("epochs") or 1), 1)
    epoch = int(status.get("epoch") or 0)
    steps = int(status.get("steps") or 0)
    step = int(status.get("step") or 0)
    if epoch < 1:
        return 0.0, f"Preparing the data (epoch 1 of {epochs} comes next)"
    fraction = status.get("fraction")
    if not isinstance(fraction, (int, float)) or not math.isfinite(fraction):
        fraction = (epoch - 1 + (step / steps if steps else 0.0)) / epochs
    fraction = min(max(float(fraction), 0.0), 1.0)
    text = f"Epoch {min(epoch, epochs)} of {epochs}"
    if steps:
        text += f" · batch {step} of {steps}"
    text += f" · {format_eta(status.get('eta_seconds'))} left"
    return fraction, text


# --------------------------------------------------------------------------- curves


def history_frame(registry, runs) -> pd.DataFrame:
    """Per-epoch metrics of runs in long form.

    Columns: ``run`` (name), ``run_id``, ``epoch``, ``metric`` (loss, accuracy,
    iou, dice), ``split`` (training / validation), ``value``.
    """
    rows = []
    for run in runs:
        for entry in registry.epochs(run.id):
            for metric in CURVE_METRICS:
                for split, key in (("training", metric), ("validation", f"val_{metric}")):
                    value = entry.get(key)
                    if isinstance(value, (int, float)) and math.isfinite(value):
                        rows.append(
                            {
                                "run": run.name,
                                "run_id": run.id,
                                "epoch": int(entry["epoch"]),
                                "metric": metric,
                                "split": split,
                                "value": float(value),
                            }
                        )
    columns = ["run", "run_id", "epoch", "metric", "split", "value"]
    return pd.DataFrame(rows, columns=columns)


def best_epoch(registry, run) -> int | None:
    """The run's best (early-stopping) epoch: stored, else the lowest validation loss."""
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
    """``run``, ``epoch`` of each run's best epoch (runs without one are left out)."""
    rows = []
    for run in runs:
        epoch = best_epoch(registry, run)
        if epoch is not None:
            rows.append({"run": run.name, "epoch": epoch, "marker": "best epoch"})
    return pd.DataFrame(rows, columns=["run", "epoch", "marker"])


def final_metrics_frame(registry, runs) -> pd.DataFrame:
    """One row per run: status, epochs, best epoch and its metrics."""
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
            "architecture": architecture_label(run.architecture).split(" (")[0],
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
    """Every epoch of the runs, one row per (run, epoch), as CSV bytes."""
    rows = []
    for run in runs:
        for entry in registry.epochs(run.id):
            rows.append({"run": run.name, "run_id": run.id, **entry})
    return table_csv(pd.DataFrame(rows))


def curves_chart(history: pd.DataFrame, metric: str, best: pd.DataFrame | None = None):
    """Interactive Altair chart of one metric per epoch: colour = run, dashes = validation.

    Hovering a point shows run, split, epoch and value; a dotted vertical rule
    marks each run's best epoch.
    """
    import altair as alt

    data = history[history["metric"] == metric]
    title = METRIC_LABELS.get(metric, metric)
    base = alt.Chart(data).encode(
        x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title=title, scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", title="run"),
        strokeDash=alt.StrokeDash("split:N", title="data", sort=["training", "validation"]),
        tooltip=[
            alt.Tooltip("run:N"),
            alt.Tooltip("split:N"),
            alt.Tooltip("epoch:Q"),
            alt.Tooltip("value:Q", format=".4f", title=title),
        ],
    )
    chart = base.mark_line() + base.mark_point(filled=True, size=40)
    if best is not None and not best.empty:
        rules = (
            alt.Chart(best)
            .mark_rule(strokeDash=[2, 3], opacity=0.8)
            .encode(
                x="epoch:Q",
                color=alt.Color("run:N"),
                tooltip=[alt.Tooltip("run:N"), alt.Tooltip("epoch:Q", title="best epoch")],
            )
        )
        chart = chart + rules
    return chart.properties(title=title, height=260).interactive()


__all__ = [
    "ARCHITECTURE_LABELS",
    "CURVE_METRICS",
    "FolderResult",
    "bootstrap_registry",
    "check_dataset_folder",
    "curves_chart",
    "delete_model",
    "evaluate_folder",
    "history_csv",
    "history_frame",
    "import_model",
    "job_progress",
    "model_runs",
    "model_summary",
    "read_ground_truth",
    "read_upload",
]
