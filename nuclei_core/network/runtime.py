"""Inference backends: the network pass in TensorFlow or in OpenVINO, chosen at load time.

:func:`load_inference_model` returns what :mod:`nuclei_core.network.predict` runs: the Keras
model itself (backend ``"tensorflow"``) or an :class:`OpenVinoModel` that wraps the
same weights compiled by OpenVINO for this CPU (backend ``"openvino"``). Training
always uses TensorFlow.

The OpenVINO export of a ``.keras`` file is cached beside it, in
``<name>.openvino/<sha256 of the .keras file>/``, so that the conversion is paid
once. The cache holds a manifest with the checksums of the exported files; a
cache whose manifest, checksums or model do not match is rebuilt, never trusted.
Where the model's folder cannot be written, the cache goes to the data folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nuclei_core.errors import ConfigError, ModelLoadError

BACKENDS = ("auto", "tensorflow", "openvino")
BACKEND_NAMES = {
    "tensorflow": "TensorFlow",
    "openvino": "OpenVINO",
    "bioimageio": "bioimage.io package",
}
PACKAGE_SUFFIX = ".bioimageio.zip"
"""A model file ending so is a BioImage Model Zoo package from elsewhere
(:mod:`nuclei_core.sharing.package_model`)."""
PRECISIONS = ("float32", "bfloat16")
INFERENCE_PRECISIONS = ("auto", *PRECISIONS)
CACHE_SUFFIX = ".openvino"
MANIFEST_NAME = "manifest.json"
_OPENVINO_PRECISION = {"float32": "f32", "bfloat16": "bf16"}


def openvino_available() -> bool:
    """True when the ``openvino`` package can be imported.

    Examples
    --------
    >>> isinstance(openvino_available(), bool)
    True
    """
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str = "auto") -> str:
    """The backend that runs: ``"auto"`` is OpenVINO where installed, else TensorFlow.

    Raises
    ------
    ConfigError
        An unknown backend, or ``"openvino"`` asked for where it is not installed.

    Examples
    --------
    >>> resolve_backend("tensorflow")
    'tensorflow'
    >>> resolve_backend("auto") in ("tensorflow", "openvino")
    True
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "openvino" if openvino_available() else "tensorflow"
    if backend == "openvino" and not openvino_available():
        raise ConfigError(
            "backend 'openvino' needs the openvino package (pip install openvino); "
            "use backend 'tensorflow' or 'auto'"
        )
    return backend


def resolve_precision(precision: str, backend: str, flags: frozenset[str] | None = None) -> str:
    """The precision the network runs in: ``"auto"`` is bfloat16 where it is fast and checked.

    ``"auto"`` picks bfloat16 on the OpenVINO backend on a CPU that computes
    bfloat16 natively (Intel AMX, AVX-512 BF16: ``flags`` holds the CPU's flags,
    read when None) and float32 everywhere else. Measured by ``bench/run.py``
    on the test split of both benchmark sets (2026-11-29): bfloat16 moves the
    DSB score and the foreground IoU by at most 0.002 in every
    image kind, and runs the 256 x 256 network pass 3.3 times faster (125.9
    against 38.6 images/s on a 2-core AMD EPYC with AVX-512 BF16).

    Raises
    ------
    ConfigError
        An unknown precision, or bfloat16 asked for on the TensorFlow backend.

    Examples
    --------
    >>> resolve_precision("auto", "openvino", frozenset({"avx512f", "avx512_bf16"}))
    'bfloat16'
    >>> resolve_precision("auto", "openvino", frozenset({"avx2"}))
    'float32'
    >>> resolve_precision("auto", "tensorflow", frozenset({"amx_bf16"}))
    'float32'
    """
    from nuclei_core.network.precision import NATIVE_BFLOAT16_CPU_FLAGS, cpu_flags

    if precision not in INFERENCE_PRECISIONS:
        raise ConfigError(f"precision must be one of {INFERENCE_PRECISIONS}, got {precision!r}")
    if precision == "bfloat16" and backend != "openvino":
        raise ConfigError(f"precision 'bfloat16' needs backend 'openvino', not {backend!r}")
    if precision != "auto":
        return precision
    native = NATIVE_BFLOAT16_CPU_FLAGS & (cpu_flags() if flags is None else flags)
    return "bfloat16" if backend == "openvino" and native else "float32"


def file_sha256(path) -> str:
    """Hex SHA-256 of a file, read in chunks.

    Examples
    --------
    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile(delete=False) as handle:
    ...     _ = handle.write(b"abc")
    >>> file_sha256(handle.name)[:12]
    'ba7816bf8f01'
    >>> os.remove(handle.name)
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class OpenVinoModel:
    """A model compiled by OpenVINO for this CPU.

    ``model.predict_batch(batch)`` takes ``float32 (N, H, W, 3)`` and returns
    ``float32 (N, H, W, C)`` (C = 2, or 3 with a distance map), as the Keras
    model's forward pass does.
    """

    compiled: object
    source: Path
    precision: str
    cache_dir: Path
    backend: str = "openvino"

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        request = self.compiled.create_infer_request()
        request.infer([np.ascontiguousarray(batch, dtype=np.float32)])
        return np.asarray(request.get_output_tensor(0).data, dtype=np.float32).copy()


def cache_root(model_path) -> Path:
    """The folder holding the OpenVINO exports of a ``.keras`` file (beside it).

    Examples
    --------
    >>> cache_root("models/default.keras").as_posix()
    'models/default.openvino'
    """
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + CACHE_SUFFIX)


def _fallback_root(model_path: Path) -> Path:
    from nuclei_core.locations import data_folder
    from nuclei_core.storage import ensure_dir

    return ensure_dir(data_folder()) / "openvino_cache" / f"{model_path.stem}{CACHE_SUFFIX}"


def _cache_is_valid(folder: Path, digest: str) -> bool:
    """The manifest names this model and both exported files still have their checksums."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text())
        if manifest.get("keras_sha256") != digest:
            return False
        return all(
            file_sha256(folder / name) == checksum for name, checksum in manifest["files"].items()
        )
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return False


def _export(model_path: Path, folder: Path, digest: str) -> None:
    """Convert the Keras model to OpenVINO IR in a temporary folder, then move it in place."""
    import openvino as ov

    from nuclei_core.network.model import load_model
    from nuclei_core.network.precision import computing_in_float32

    keras_model = computing_in_float32(load_model(model_path))
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras notes the input structure; harmless
            converted = ov.convert_model(keras_model, input=[-1, -1, -1, 3])
        ov.save_model(converted, staging / "model.xml", compress_to_fp16=False)
        files = {name: file_sha256(staging / name) for name in ("model.xml", "model.bin")}
        manifest = {"keras_sha256": digest, "openvino": ov.__version__, "files": files}
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def exported_model(model_path, digest: str | None = None) -> Path:
    """The cached OpenVINO export of a ``.keras`` file, made or remade when needed.

    Returns
    -------
    Path
        The export's folder (``model.xml``, ``model.bin``, ``manifest.json``).
    """
    model_path = Path(model_path)
    digest = digest or file_sha256(model_path)
    for root in (cache_root(model_path), _fallback_root(model_path)):
        folder = root / digest[:16]
        if _cache_is_valid(folder, digest):
            return folder
        try:
            _export(model_path, folder, digest)
        except PermissionError:
            continue  # a read-only model folder: use the data folder
        for stale in root.iterdir():
            if stale.is_dir() and stale != folder and not stale.name.startswith(".export-"):
                shutil.rmtree(stale, ignore_errors=True)
        return folder
    raise ModelLoadError(f"{model_path}: could not write an OpenVINO export anywhere")


def load_openvino(model_path, precision: str = "float32") -> OpenVinoModel:
    """Compile the (cached) OpenVINO export of a ``.keras`` file for this CPU.

    ``precision`` is a hint: a CPU without bfloat16 instructions computes in float32 when
    asked for bfloat16, and the model's ``precision`` says what it computes in (as
    OpenVINO reports it), not what was asked.

    Raises
    ------
    ConfigError
        An unknown precision.
    ModelLoadError
        The model file is bad (the same checks as :func:`nuclei_core.network.model.load_model`).
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    import openvino as ov

    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelLoadError(f"{model_path}: no such model file")
    folder = exported_model(model_path)
    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": _OPENVINO_PRECISION[precision]}
    compiled = core.compile_model(core.read_model(folder / "model.xml"), "CPU", config)
    computed = compiled.get_property("INFERENCE_PRECISION_HINT")
    computed = "bfloat16" if computed == ov.Type.bf16 else "float32"
    return OpenVinoModel(compiled, model_path, computed, folder)


def load_inference_model(model_path, backend: str = "auto", precision: str = "auto"):
    """A model ready for :mod:`nuclei_core.network.predict`, on the chosen backend and precision.

    Returns the Keras model for ``"tensorflow"`` and an :class:`OpenVinoModel` for
    ``"openvino"``; a BioImage Model Zoo package from elsewhere (a file ending in
    :data:`PACKAGE_SUFFIX`) runs as a
    :class:`~nuclei_core.sharing.package_model.PackageModel` whatever the backend;
    :func:`backend_of` tells which and :func:`describe` says both.
    ``"auto"`` precision is :func:`resolve_precision`'s choice.

    Raises
    ------
    ConfigError
        Unknown backend or precision, or OpenVINO asked for and not installed;
        ``bfloat16`` is an OpenVINO precision only.
    ModelLoadError
        The model file is bad.
    """
    if str(model_path).lower().endswith(PACKAGE_SUFFIX):
        from nuclei_core.sharing.package_model import load_package_model

        return load_package_model(model_path)  # its own runtime (OpenVINO for ONNX)
    chosen = resolve_backend(backend)
    precision = resolve_precision(precision, chosen)
    if chosen == "openvino":
        return load_openvino(model_path, precision)
    from nuclei_core.network.model import load_model
    from nuclei_core.network.precision import computing_in_float32

    return computing_in_float32(load_model(model_path))


def backend_of(model) -> str:
    """``"openvino"`` for an :class:`OpenVinoModel`, ``"bioimageio"`` for a package from
    elsewhere, else ``"tensorflow"``.

    Examples
    --------
    >>> backend_of(object())
    'tensorflow'
    """
    if not hasattr(model, "predict_batch"):
        return "tensorflow"
    return getattr(model, "backend", "openvino")


def default_runtime() -> str:
    """What :func:`describe` says of a model loaded with the default backend and precision.

    The app's sidebar shows it without loading a model.

    Examples
    --------
    >>> default_runtime() in ("TensorFlow, float32", "OpenVINO, float32", "OpenVINO, bfloat16")
    True
    """
    backend = resolve_backend("auto")
    return f"{BACKEND_NAMES[backend]}, {resolve_precision('auto', backend)}"


def describe(model) -> str:
    """One line naming the backend and precision that run, for the app and the CLI.

    Examples
    --------
    >>> describe(object())
    'TensorFlow, float32'
    """
    backend = backend_of(model)
    precision = "float32" if backend == "tensorflow" else model.precision
    return f"{BACKEND_NAMES[backend]}, {precision}"
