"""A BioImage Model Zoo package from elsewhere, run as this engine's network.

A package whose network gives a foreground probability (optionally with a boundary
channel) in ONNX or Keras 3 weights runs on the Segment, Browse and Folder pages and in
the CLI beside this project's own models.  :func:`package_layout` reads from the
description what the engine needs (one input with y and x axes and 1 or 3 channels; an
output whose channels name a foreground, and maybe a boundary, probability) and refuses
anything else with what is missing.  :func:`load_package_model` gives a
:class:`PackageModel`: ``predict_batch`` like an OpenVINO model, the package's own
preprocessing and postprocessing run by ``bioimageio.core``, its network by OpenVINO
(ONNX weights, preferred) or by Keras with ``safe_mode`` (Keras 3 weights).  No code
from the package runs.

The network gets the image as this engine prepares it (scaled to 0-1, nuclei bright,
see :func:`~nuclei_core.segmentation.preprocess.to_model_input`; the mean of the three
channels for a one-channel input), then the package's preprocessing; statistics it takes
per image (``zero_mean_unit_variance``, ``scale_range``) are those of the tile the engine
feeds (a large image goes in tiles, a side that is not a multiple of 32 padded).  A package with
no boundary channel gets a boundary of zeros: touching nuclei are split only where the
foreground parts them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nuclei_core.errors import ModelLoadError
from nuclei_core.sharing.archive import (
    channel_names,
    checked_archive,
    member_bytes,
    read_description,
)

__all__ = [
    "FOREGROUND_NAMES",
    "BOUNDARY_NAMES",
    "RUNNABLE_FORMATS",
    "PackageLayout",
    "PackageModel",
    "load_package_model",
    "package_model",
    "package_layout",
]

FOREGROUND_NAMES = ("foreground", "nucle", "cell", "prob", "mask", "semantic", "fg")
"""A channel whose name contains one of these is a foreground probability."""
BOUNDARY_NAMES = ("bound", "contour", "edge", "border")
"""A channel whose name contains one of these is a boundary probability."""
RUNNABLE_FORMATS = ("onnx", "keras_v3")
"""The weight formats run here, the first one present preferred."""


@dataclass(frozen=True)
class PackageLayout:
    """What the engine needs to know of a package's network.

    Attributes
    ----------
    input_channels : int
        1 or 3.
    foreground, boundary : int or None
        The output channels of the foreground and boundary probabilities (``boundary``
        None when the package has none).
    weight_format : str
        The weights that run (one of :data:`RUNNABLE_FORMATS`).
    """

    input_channels: int
    foreground: int
    boundary: int | None
    weight_format: str


def _axis_types(tensor) -> list[str]:
    return [str(axis.type) for axis in tensor.axes]


def _spatial_ids(tensor) -> list[str]:
    return [str(axis.id) for axis in tensor.axes if str(axis.type) == "space"]


def _channel_names(tensor) -> list[str]:
    return channel_names(tensor) or ["(one channel)"]


def _find(names: list[str], parts: tuple[str, ...], skip: int | None = None) -> int | None:
    """The first channel (other than ``skip``) whose name contains one of ``parts``."""
    for index, name in enumerate(names):
        if index != skip and any(part in name.lower() for part in parts):
            return index
    return None


def _check_input(described, label: str) -> int:
    """The input's channel count; refused unless it is one 2D image of 1 or 3 channels."""
    if len(described.inputs) != 1:
        raise ModelLoadError(f"{label}: the network takes {len(described.inputs)} inputs, not one")
    tensor = described.inputs[0]
    if sorted(_spatial_ids(tensor)) != ["x", "y"] or not set(_axis_types(tensor)) <= {
        "batch",
        "channel",
        "space",
    }:
        axes = ", ".join(str(axis.id) for axis in tensor.axes)
        raise ModelLoadError(f"{label}: its input axes are {axes}, not a 2D image (y, x)")
    channels = len(_channel_names(tensor))
    if channels not in (1, 3):
        raise ModelLoadError(f"{label}: its input has {channels} channels, not 1 or 3")
    return channels


def _check_output(described, label: str) -> tuple[int, int | None]:
    """The foreground and boundary channels of the first output, or the reason there are none."""
    from bioimageio.spec.model.v0_5 import IntervalOrRatioDataDescr

    tensor = described.outputs[0]
    if sorted(_spatial_ids(tensor)) != ["x", "y"]:
        axes = ", ".join(str(axis.id) for axis in tensor.axes)
        raise ModelLoadError(f"{label}: its output axes are {axes}, not a 2D image (y, x)")
    names = _channel_names(tensor)
    foreground = 0 if len(names) == 1 else _find(names, FOREGROUND_NAMES)
    if foreground is None:
        raise ModelLoadError(
            f"{label}: its output is {', '.join(names)}: no foreground probability (a channel "
            f"named like {', '.join(FOREGROUND_NAMES[:4])}); other output kinds (labels, "
            "distances, polygons) do not run here"
        )
    data = tensor.data[0] if isinstance(tensor.data, (list, tuple)) else tensor.data
    low, high = data.range if isinstance(data, IntervalOrRatioDataDescr) else (0, 1)
    if (
        not isinstance(data, IntervalOrRatioDataDescr)
        or (low is not None and low < 0)
        or (high is not None and high > 1)
    ):
        raise ModelLoadError(
            f"{label}: its output is not a probability from 0 to 1 ({data}); a model here "
            "gives foreground (and boundary) probabilities"
        )
    return foreground, _find(names, BOUNDARY_NAMES, skip=foreground)


def package_layout(described, label: str) -> PackageLayout:
    """What a package's network takes and gives, or the reason it cannot run here.

    Raises
    ------
    ModelLoadError
        Not one 2D input of 1 or 3 channels, no foreground probability in the first
        output, or no ONNX or Keras 3 weights (the message names what it has).
    """
    channels = _check_input(described, label)
    foreground, boundary = _check_output(described, label)
    present = [name for name in RUNNABLE_FORMATS if getattr(described.weights, name) is not None]
    if not present:
        formats = ", ".join(sorted(described.weights.available_formats)) or "none"
        raise ModelLoadError(
            f"{label}: no ONNX or Keras 3 weights (it has {formats}); only those run here"
        )
    return PackageLayout(channels, foreground, boundary, present[0])


def _adapter(described, network):
    """A ``bioimageio.core`` model adapter running ``network`` (the weights read here); its
    class is made on first use, as the base class comes with bioimageio.core."""
    from bioimageio.core._model_adapter import LocalModelAdapter

    class Adapter(LocalModelAdapter):
        def __init__(self):
            self.network = network  # before the base class loads the adapter
            super().__init__(described, None)

        def _parse_devices(self, devices):
            return [None]

        def _init_model_on_device(self, device):
            return self.network

        def _forward_impl(self, device, network, input_arrays):
            return [network(input_arrays[0].astype(np.float32))]

        def _cleanup_pre_model_deletion(self, device, network):
            pass

        def _cleanup_post_model_deletion(self, device):
            pass

    return Adapter()


def _refuse_external_data(path: Path, label: str) -> None:
    """Refuse ONNX weights that refer to files outside themselves ("external data"): the
    runtime would read them from wherever they point, a server file included."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises its own decode errors
        raise ModelLoadError(f"{label}: its ONNX weights cannot be read ({error})") from None
    tensors = list(model.graph.initializer) + [
        attribute.t for node in model.graph.node for attribute in node.attribute
    ]
    if any(tensor.data_location == onnx.TensorProto.EXTERNAL for tensor in tensors):
        raise ModelLoadError(
            f"{label}: its ONNX weights keep data in other files (external data); refused"
        )


def _network(archive, described, layout: PackageLayout, label: str):
    """The package's weights as a function of one float32 array, in the input's axis order."""
    weights = getattr(described.weights, layout.weight_format)
    data = member_bytes(archive, weights.source, label)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("model.onnx" if layout.weight_format == "onnx" else "model.keras")
        path.write_bytes(data)
        if layout.weight_format == "onnx":
            import openvino as ov

            _refuse_external_data(path, label)

            core = ov.Core()
            try:
                compiled = core.compile_model(core.read_model(str(path)), "CPU")
            except RuntimeError as error:
                message = str(error).splitlines()[0][:300]
                raise ModelLoadError(
                    f"{label}: OpenVINO cannot read its ONNX weights ({message})"
                ) from None

            def run(array):
                return np.asarray(compiled([array])[compiled.outputs[0]], np.float32)

            return run
        from nuclei_core.network.model import load_keras_safely

        try:
            network = load_keras_safely(path)
        except ModelLoadError as error:
            raise ModelLoadError(str(error).replace(str(path), label)) from None

    def run(array):
        output = network(array, training=False)
        return np.asarray(output[0] if isinstance(output, (list, tuple)) else output, np.float32)

    return run


@dataclass
class PackageModel:
    """A foreign package's network with its own pre- and postprocessing.

    ``predict_batch(batch)`` takes ``float32 (N, H, W, 3)`` in [0, 1] and returns
    ``float32 (N, H, W, 2)``: foreground and boundary probabilities (zeros where the
    package has no boundary), as this engine's networks do.
    """

    pipeline: object
    layout: PackageLayout
    source: Path
    precision: str = "float32"
    backend: str = "bioimageio"

    def _one(self, image: np.ndarray) -> np.ndarray:
        from bioimageio.core import Sample, Tensor

        descr = self.pipeline.model_description
        tensor, produced_descr = descr.inputs[0], descr.outputs[0]
        plane = image if self.layout.input_channels == 3 else image.mean(axis=-1, keepdims=True)
        # (1, H, W, C) to the input's axes, in its order (batch and channel may be absent)
        source = {"batch": 0, "y": 1, "x": 2, "channel": 3}
        kept = [
            source[
                "channel"
                if str(a.type) == "channel"
                else str(a.id)
                if str(a.type) == "space"
                else "batch"
            ]
            for a in tensor.axes
        ]
        squeezed = np.squeeze(plane[None], axis=tuple(i for i in range(4) if i not in kept))
        present = sorted(kept)
        array = np.transpose(squeezed, [present.index(i) for i in kept]).astype(np.float32)
        sample = Sample(
            members={tensor.id: Tensor(array, dims=[a.id for a in tensor.axes])}, stat={}, id=0
        )
        output = self.pipeline.predict_sample_without_blocking(sample)
        ids = {
            str(a.type) if str(a.type) != "space" else str(a.id): a.id for a in produced_descr.axes
        }
        wanted = [ids["y"], ids["x"], *([ids["channel"]] if "channel" in ids else [])]
        values = output.members[produced_descr.id].data.transpose(*wanted, ...).values
        values = np.asarray(values, np.float32).reshape(values.shape[:2] + (-1,))
        if values.shape[:2] != image.shape[:2]:
            raise ModelLoadError(
                f"{self.source.name}: its output is {values.shape[0]} x {values.shape[1]} "
                f"for an input of {image.shape[0]} x {image.shape[1]}"
            )
        result = np.zeros(image.shape[:2] + (2,), np.float32)
        result[..., 0] = values[..., self.layout.foreground]
        if self.layout.boundary is not None:
            result[..., 1] = values[..., self.layout.boundary]
        return np.clip(result, 0.0, 1.0)

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        return np.stack([self._one(image) for image in np.asarray(batch, np.float32)])


def package_model(archive, described, path: Path) -> PackageModel:
    """The :class:`PackageModel` of a package already opened
    (:func:`~nuclei_core.sharing.archive.checked_archive`) and described; ``path`` is its
    file, named in messages.

    Raises
    ------
    ModelLoadError
        Its network does not fit (:func:`package_layout`) or its weights cannot be read.
    """
    from bioimageio.core import create_prediction_pipeline

    label = Path(path).name
    layout = package_layout(described, label)
    adapter = _adapter(described, _network(archive, described, layout, label))
    pipeline = create_prediction_pipeline(described, model_adapter=adapter)
    return PackageModel(pipeline, layout, Path(path))


def load_package_model(path) -> PackageModel:
    """Open a ``.bioimageio.zip`` package as a model the engine runs (see the module notes).

    Raises
    ------
    ModelLoadError
        The package is unsafe or invalid (:func:`~nuclei_core.sharing.archive.checked_archive`)
        or its network does not fit (:func:`package_layout`).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file")
    archive = checked_archive(path.read_bytes(), path.name)
    return package_model(archive, read_description(archive, path.name), path)
