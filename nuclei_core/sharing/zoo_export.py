"""A model of this project as a BioImage Model Zoo package (spec 0.5), for Fiji, QuPath, napari.

:func:`export_package` writes ``<name>.bioimageio.zip``: ``rdf.yaml`` described with
``bioimageio.spec`` (input, outputs, axes, preprocessing), the network as Keras 3 weights
(the ``.keras`` file) and as ONNX, a test input and its output from a sample image, a cover
(the sample with its nuclei outlined) and a ``README.md`` from the model card (data sets
and licences, test figures, calibration).  The post-processing that turns the outputs into
nuclei (seeded watershed, minimum confidence) is named in the package's
``config.nuclei_core``.

The input is the image's intensities on three channels; the percentile normalisation of
:func:`~nuclei_core.segmentation.preprocess.to_model_input` is the spec's ``scale_range``
(1 and 99.8 %, over the whole image) and ``clip``.  Its inversion of images with a bright
background (nuclei dark) has no standard operation: the documentation says to invert such
images before.  The test image is a fluorescence one, which is not inverted.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from nuclei_core.errors import InputError, ModelLoadError
from nuclei_core.network.runtime import PACKAGE_SUFFIX

__all__ = ["OUTPUT_CHANNELS", "SUFFIX", "export_package", "package_bytes", "package_contents"]

SUFFIX = PACKAGE_SUFFIX
"""How an exported package's file name ends."""
OUTPUT_CHANNELS = ("foreground", "boundary", "distance")
"""The network's output channels, in order (a model without a distance map has two)."""
TEST_IMAGE = "fluo_03.png"
"""The sample image (``sample_images/inputs``) of the test tensors and the cover."""
TAGS = ["nuclei", "instance-segmentation", "fluorescence", "brightfield", "histology", "unet"]
DATASET_CITATIONS = {
    "2018 Data Science Bowl": (
        "Caicedo et al. Nucleus segmentation across imaging experiments: the 2018 Data "
        "Science Bowl. Nature Methods 16, 1247-1253 (2019)",
        "10.1038/s41592-019-0612-7",
    ),
    "MoNuSeg": (
        "Kumar et al. A multi-organ nucleus segmentation challenge. IEEE Transactions on "
        "Medical Imaging 39(5), 1380-1391 (2020)",
        "10.1109/TMI.2019.2947628",
    ),
}
"""Citations of the data sets a card may name (matched by the start of their names)."""


def _licence(card: dict) -> str:
    """The SPDX id of the model's licence: that of its most restrictive training data."""
    names = " ".join(str(dataset.get("licence", "")) for dataset in card.get("datasets", []))
    text = f"{card.get('licence', '')} {names}"
    if "BY-NC-SA" in text:
        return "CC-BY-NC-SA-4.0"
    if "CC BY" in text:
        return "CC-BY-4.0"
    return "CC0-1.0"


def _documentation(card: dict, model_name: str, channels: tuple[str, ...]) -> str:
    """The package's ``README.md``, from the model card."""
    lines = [
        f"# {model_name}",
        "",
        "A U-Net that finds cell nuclei in microscopy images (fluorescence, brightfield, "
        "H&E and other stained tissue), exported from the nuclei segmentation dashboard "
        "(`python -m nuclei_core export-model`).",
        "",
        "## Input",
        "",
        "The image's intensities on three channels (a greyscale image repeated), scaled "
        "between its 1st and 99.8th percentiles over the whole image and clipped to [0, 1] "
        "(the package's preprocessing). **Nuclei must be bright**: invert brightfield and "
        "stained images (bright background, dark nuclei) before, as `nuclei_core` does for a "
        "greyscale image whose median is above 0.5 and a colour image whose median is above "
        "0.25. Height and width: any multiple of 32.",
        "",
        "## Outputs",
        "",
        *(f"- `{name}`: {_CHANNEL_TEXT[name]}" for name in channels),
        "",
        "## From outputs to nuclei",
        "",
        "Seeds are the peaks of the distance map (h-maxima) inside `foreground > 0.5`, "
        "grown by a watershed over the boundary probability; nuclei under the minimum size "
        "or whose foreground never reaches the minimum confidence are dropped. "
        f"The levels are in `config.nuclei_core`: {json.dumps(card.get('postprocess', {}))}.",
        "",
        "## Training data and licence",
        "",
        *(
            f"- {dataset.get('name')}: {dataset.get('images')} images, licence "
            f"{dataset.get('licence')}"
            for dataset in card.get("datasets", [])
        ),
        "",
        f"Licence of this model: {card.get('licence', _licence(card))}.",
        "",
    ]
    lines += [
        "## Validation",
        "",
        "`bioimageio test <package>` (bioimageio.core) runs the Keras weights on the test "
        "input and compares with the test output; the exporter runs the same check.",
        "",
    ]
    commands = card.get("commands") or ([card["command"]] if card.get("command") else [])
    if commands:
        lines += ["## Training", "", "```", *commands, "```", ""]
    lines += _test_figures(card)
    return "\n".join(lines)


def _test_figures(card: dict) -> list[str]:
    """The card's test figures (``evaluations``) as a table, by set and image kind."""
    rows = []
    for where, evaluation in (card.get("evaluations") or {}).items():
        for kind, figures in (evaluation.get("summary") or {}).items():
            rows.append(
                f"| {where} | {kind} | {figures.get('n_images')} "
                f"| {figures.get('mean_dsb_score', float('nan')):.3f} "
                f"| {figures.get('mean_f1', float('nan')):.3f} "
                f"| {figures.get('mean_foreground_iou', float('nan')):.3f} |"
            )
    if not rows:
        return []
    return [
        "## Test figures (held-out test part of each set)",
        "",
        "| set | kind | images | DSB score | F1@0.5 | foreground IoU |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


_CHANNEL_TEXT = {
    "foreground": "probability that a pixel is inside a nucleus, 0 to 1",
    "boundary": "probability that a pixel is on a nucleus's boundary, 0 to 1",
    "distance": "distance to the nucleus's edge, normalised per nucleus, 0 to 1",
}


def _cited(card: dict) -> list[tuple[str, str]]:
    """The citations (text, DOI) of the data sets the card names (the DSB 2018 paper where
    it names none)."""
    found = []
    for dataset in card.get("datasets", []):
        name = str(dataset.get("name", ""))
        for start, citation in DATASET_CITATIONS.items():
            if name.startswith(start) and citation not in found:
                found.append(citation)
    return found or [DATASET_CITATIONS["2018 Data Science Bowl"]]


def _citations(card: dict) -> list:
    from bioimageio.spec.model.v0_5 import CiteEntry

    return [CiteEntry(text=text, doi=doi) for text, doi in _cited(card)]


def package_contents(card: dict, output_channels: int) -> list[str]:
    """What :func:`export_package` puts in a model's package, one line each, from its card
    (for the app to show before the export; nothing is loaded or built).

    Examples
    --------
    >>> lines = package_contents({"postprocess": {"min_confidence": 0.9}}, 3)
    >>> lines[1]
    'outputs: foreground, boundary, distance (0 to 1 each)'
    >>> lines[3]
    'licence CC0-1.0 (that of its training data)'
    """
    levels = card.get("postprocess") or {}
    confidence = levels.get("min_confidence")
    height = levels.get("peak_height")
    diameter = card.get("nucleus_diameter_px")
    figures = card.get("evaluations") or {}
    return [
        "weights: Keras 3 (.keras) and ONNX (converted on export)",
        f"outputs: {', '.join(OUTPUT_CHANNELS[:output_channels])} (0 to 1 each)",
        "input: the image's intensities on 3 channels, scaled between its 1st and 99.8th "
        "percentiles (the package's preprocessing); nuclei bright",
        f"licence {_licence(card)} (that of its training data)",
        "cites: " + "; ".join(". ".join(text.split(". ")[:2]) for text, _ in _cited(card)),
        "post-processing named in config: minimum confidence "
        + (f"{confidence}" if confidence is not None else "none (0)")
        + (f", seed height {height}" if height is not None else "")
        + (f", nucleus diameter {diameter} px" if diameter else ""),
        f"test input and output, and a cover with outlines, from sample image {TEST_IMAGE}",
        "README.md from this card: data sets and licences"
        + (f", training command, test figures of {len(figures)} sets by kind" if figures else ""),
    ]


def _test_tensors(model, test_image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The raw test input ``(1, H, W, 3)`` float32, the network's output ``(1, H, W, C)`` on
    the preprocessed input, and the test image (for the cover)."""
    from nuclei_core.io.imread import read_image
    from nuclei_core.locations import sample_folder
    from nuclei_core.network.predict import predict_probabilities
    from nuclei_core.segmentation.preprocess import grey, normalise, to_model_input

    image = read_image(test_image or sample_folder() / "inputs" / TEST_IMAGE)
    model_input = to_model_input(image)
    # The package's preprocessing is the percentile scaling alone, of the greyscale repeated.
    as_packaged = np.allclose(model_input, normalise(grey(image, np.float32))[..., None])
    if not as_packaged or image.shape[0] % 32 or image.shape[1] % 32:
        raise InputError(
            f"{test_image}: the test image must be greyscale with nuclei brighter than the "
            "background (not inverted), its sides multiples of 32"
        )
    raw = np.repeat(grey(image, np.float32)[..., None], 3, axis=-1)[None]
    output = predict_probabilities(model, model_input)
    return raw, output[None].astype(np.float32), image


def _onnx_weights(model, path: Path) -> int:
    """Write the network as ONNX (Keras's exporter, through tf2onnx); its opset version."""
    import onnx

    model(np.zeros((1, 64, 64, 3), np.float32))  # the exporter wants a model that has run
    model.export(str(path), format="onnx", verbose=False)
    return max(entry.version for entry in onnx.load(str(path)).opset_import if not entry.domain)


def _cover(probabilities: np.ndarray, image: np.ndarray, model_path: Path, path: Path) -> Path:
    """The test image with its nuclei outlined, found from the test output (no second
    network pass) with the model's own minimum confidence."""
    from nuclei_core.io.export import encode_png
    from nuclei_core.io.render import overlay
    from nuclei_core.segmentation.options import SegmentOptions, model_settings
    from nuclei_core.segmentation.segment import nuclei_from_probabilities

    options = SegmentOptions(**model_settings(model_path))
    labels, _ = nuclei_from_probabilities(probabilities, image, options)
    path.write_bytes(encode_png(overlay(image, labels)))
    return path


def export_package(model_path, out=None, test_image=None) -> Path:
    """Write the BioImage Model Zoo package of a ``.keras`` model and its card; its path.

    Parameters
    ----------
    model_path : str or Path
        A model of this project (a ``.keras`` file; its card ``.json`` beside it is read
        when there is one).
    out : str or Path, optional
        The package file (ending in :data:`SUFFIX`); default: beside the model.
    test_image : str or Path, optional
        The image of the test tensors and the cover (fluorescence-like: nuclei bright;
        sides multiples of 32); default :data:`TEST_IMAGE` of the sample images.

    Raises
    ------
    ModelLoadError
        The model cannot be loaded (see :func:`nuclei_core.network.model.load_model`), or
        its card is not valid JSON (the package would lose its data sets' licences).
    InputError
        ``out`` does not end in :data:`SUFFIX`, or the test image does not fit.
    ImageReadError
        The test image cannot be read (no sample images where none is given).
    """
    import keras
    import tensorflow as tf
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5

    from nuclei_core.network.model import load_model
    from nuclei_core.network.precision import computing_in_float32
    from nuclei_core.registry.cards import read_card

    model_path = Path(model_path)
    out = Path(out) if out is not None else model_path.with_name(model_path.stem + SUFFIX)
    if not out.name.endswith(SUFFIX):
        raise InputError(f"{out}: a BioImage Model Zoo package's name ends in {SUFFIX}")
    model = computing_in_float32(load_model(model_path))
    card = read_card(model_path)  # {} without a card; an unreadable one is an error
    channels = OUTPUT_CHANNELS[: int(model.output_shape[-1])]
    if len(channels) < 2:
        raise ModelLoadError(f"{model_path}: the network has no foreground and boundary outputs")
    name = f"nuclei U-Net {card.get('name') or model_path.stem}"[:64]
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        weights = folder / "model.keras"
        weights.write_bytes(model_path.read_bytes())
        opset = _onnx_weights(model, folder / "model.onnx")
        raw, output, image = _test_tensors(model, test_image)
        np.save(folder / "test_input.npy", raw)
        np.save(folder / "test_output.npy", output)
        (folder / "README.md").write_text(_documentation(card, name, channels))
        cover = _cover(output[0], image, model_path, folder / "cover.png")
        space = [
            v0_5.SpaceInputAxis(id=axis, size=v0_5.ParameterizedSize(min=64, step=32))
            for axis in ("y", "x")
        ]
        whole_image = [v0_5.AxisId("y"), v0_5.AxisId("x"), v0_5.AxisId("channel")]
        descr = v0_5.ModelDescr(
            name=name.replace(".", " "),
            description="Cell nuclei: foreground, boundary (and distance map) probabilities.",
            authors=[v0_5.Author(name="nuclei segmentation dashboard")],
            cite=_citations(card),
            license=_licence(card),
            documentation=v0_5.FileDescr(source=folder / "README.md"),
            covers=[v0_5.FileDescr(source=cover)],
            tags=TAGS,
            inputs=[
                v0_5.InputTensorDescr(
                    id=v0_5.TensorId("image"),
                    description="intensities, greyscale repeated on 3 channels, nuclei bright",
                    axes=[
                        v0_5.BatchAxis(),
                        *space,
                        v0_5.ChannelAxis(channel_names=["c0", "c1", "c2"]),
                    ],
                    test_tensor=v0_5.FileDescr(source=folder / "test_input.npy"),
                    preprocessing=[
                        v0_5.ScaleRangeDescr(
                            kwargs=v0_5.ScaleRangeKwargs(
                                axes=whole_image, min_percentile=1.0, max_percentile=99.8
                            )
                        ),
                        v0_5.ClipDescr(kwargs=v0_5.ClipKwargs(min=0.0, max=1.0)),
                    ],
                )
            ],
            outputs=[
                v0_5.OutputTensorDescr(
                    id=v0_5.TensorId("probabilities"),
                    description=", ".join(channels) + ", each 0 to 1",
                    axes=[
                        v0_5.BatchAxis(),
                        *(
                            v0_5.SpaceOutputAxis(
                                id=axis,
                                size=v0_5.SizeReference(tensor_id="image", axis_id=axis),
                            )
                            for axis in ("y", "x")
                        ),
                        v0_5.ChannelAxis(channel_names=list(channels)),
                    ],
                    test_tensor=v0_5.FileDescr(source=folder / "test_output.npy"),
                    data=v0_5.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
                )
            ],
            weights=v0_5.WeightsDescr(
                keras_v3=v0_5.KerasV3WeightsDescr(
                    source=weights,
                    keras_version=keras.__version__,
                    backend=("tensorflow", tf.__version__),
                ),
                onnx=v0_5.OnnxWeightsDescr(
                    source=folder / "model.onnx", opset_version=opset, parent="keras_v3"
                ),
            ),
            config={
                "nuclei_core": {
                    "postprocess": card.get("postprocess", {}),
                    "nucleus_diameter_px": card.get("nucleus_diameter_px"),
                }
            },
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        save_bioimageio_package(descr, output_path=out)
    return out


def package_bytes(model_path, test_image=None) -> bytes:
    """:func:`export_package` into a temporary folder: the package file's bytes (for a
    download), nothing left on disk."""
    with tempfile.TemporaryDirectory() as folder:
        return export_package(model_path, Path(folder) / f"model{SUFFIX}", test_image).read_bytes()
