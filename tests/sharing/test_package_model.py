"""Packages made elsewhere: a foreground probability in ONNX or Keras 3 weights runs here
like a model of this project (its own preprocessing, ONNX on OpenVINO); others are refused
with what is missing."""

from __future__ import annotations

import re
import zipfile

import numpy as np
import pytest

from nuclei_core import cli
from nuclei_core.errors import ModelLoadError
from tests.sharing.test_zoo_import import rewritten

pytest.importorskip("bioimageio.core")


def imported(package, tmp_path, monkeypatch, name):
    from nuclei_core.registry.store import Registry

    monkeypatch.setenv("NUCLEI_DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["import-model", str(package), "--name", name]) == 0
    (run,) = [run for run in Registry().list_runs() if run.name == name]
    return run


def test_a_one_channel_onnx_package_runs_with_its_own_preprocessing(
    foreign_package, tmp_path, monkeypatch
):
    from nuclei_core.network.predict import predict_probabilities
    from nuclei_core.network.runtime import describe, load_inference_model
    from nuclei_core.registry import cards
    from nuclei_core.segmentation.segment import segment_image

    run = imported(foreign_package, tmp_path, monkeypatch, "lab")
    assert run.model_path.endswith(".bioimageio.zip")  # kept as it came
    card = cards.read_card(run.model_path)
    assert card["params"]["weights"] == "onnx" and card["params"]["outputs"] == ["prob"]
    assert card["licence"] == "MIT" and card["params"]["authors"] == ["Another Lab"]
    model = load_inference_model(run.model_path, backend="tensorflow")
    assert describe(model) == "bioimage.io package, float32"
    # sides of multiples of 32: nothing padded, so its statistics are the image's own
    model_input = np.random.default_rng(2).random((96, 64, 3)).astype(np.float32)
    probabilities = predict_probabilities(model, model_input)
    grey = model_input.mean(axis=-1)  # one channel: the mean of the three
    standardised = (grey - grey.mean()) / (grey.std() + 1e-6)
    expected = 1 / (1 + np.exp(-(4 * standardised - 2)))
    assert probabilities.shape == (96, 64, 2)
    np.testing.assert_allclose(probabilities[..., 0], expected, atol=1e-4)
    assert not probabilities[..., 1].any()  # no boundary channel: zeros
    image = np.zeros((64, 64), np.uint8)
    image[10:30, 10:30] = image[40:60, 35:55] = 250
    found = segment_image(model, image)
    assert found.labels.max() == 2


def test_an_onnx_only_package_gives_the_keras_foreground_and_boundary(
    package, tmp_path, monkeypatch
):
    """Our own package without its Keras weights is a package from elsewhere: its ONNX
    weights run on OpenVINO and give what the Keras network gives."""
    from nuclei_core.network.model import load_model
    from nuclei_core.network.predict import predict_probabilities
    from nuclei_core.network.runtime import backend_of, load_inference_model

    rdf = zipfile.ZipFile(package).read("rdf.yaml").decode()
    keras_entry = re.search(r"\n  keras_v3:\n(    .*\n)+", rdf).group(0)
    onnx_only = rdf.replace(keras_entry, "\n").replace("    parent: keras_v3\n", "")
    path = tmp_path / "onnx_only.bioimageio.zip"
    path.write_bytes(rewritten(package, replace={"rdf.yaml": onnx_only}))
    run = imported(path, tmp_path, monkeypatch, "onnx only")
    model = load_inference_model(run.model_path)
    assert backend_of(model) == "bioimageio" and model.layout.boundary == 1
    from nuclei_core.segmentation.preprocess import to_model_input

    image = np.random.default_rng(3).integers(0, 255, (64, 64), dtype=np.uint8)
    model_input = to_model_input(image)  # its percentiles are 0 and 1: the package's own
    # scaling (1st to 99.8th percentile) leaves it as it is
    keras_output = predict_probabilities(load_model(package.with_name("tiny.keras")), model_input)
    np.testing.assert_allclose(
        predict_probabilities(model, model_input), keras_output[..., :2], atol=1e-4
    )
    with pytest.raises(ModelLoadError, match="cannot be trained on, fine-tuned or exported"):
        load_model(run.model_path)


def test_packages_whose_network_does_not_fit_are_refused_with_what_is_missing(
    package, foreign_package, tmp_path, monkeypatch
):
    from nuclei_core.registry.store import Registry
    from nuclei_core.sharing.zoo_import import import_package

    monkeypatch.setenv("NUCLEI_DATA_DIR", str(tmp_path / "data"))
    ours = zipfile.ZipFile(package).read("rdf.yaml").decode()
    theirs = zipfile.ZipFile(foreign_package).read("rdf.yaml").decode()
    renamed = ours.replace("- foreground\n", "- rays\n").replace("- boundary\n", "- angles\n")
    cases = {
        "its output is rays, angles: no foreground probability": (
            rewritten(package, replace={"rdf.yaml": renamed})
        ),
        "its input has 4 channels, not 1 or 3": rewritten(
            foreign_package,
            replace={
                "rdf.yaml": theirs.replace(
                    "- dapi\n", "- a\n          - b\n          - c\n          - d\n"
                )
            },
        ),
        "its output is not a probability from 0 to 1": rewritten(
            foreign_package, replace={"rdf.yaml": theirs.replace("- 1.0\n", "- 255.0\n")}
        ),
    }
    for reason, data in cases.items():
        with pytest.raises(ModelLoadError, match=f"^theirs.bioimageio.zip: {re.escape(reason)}"):
            import_package(data, "theirs.bioimageio.zip", Registry())
    assert not list((tmp_path / "data").rglob("*.bioimageio.zip"))  # nothing kept


def test_a_keras_only_package_from_elsewhere_runs_with_safe_mode(package, tmp_path, monkeypatch):
    """Our package without its ONNX weights and its ``config.nuclei_core`` is a Keras 3
    package made elsewhere: kept as it came, run by Keras, the same probabilities."""
    from nuclei_core.network.model import load_model
    from nuclei_core.network.predict import predict_probabilities
    from nuclei_core.network.runtime import load_inference_model
    from nuclei_core.segmentation.preprocess import to_model_input

    rdf = zipfile.ZipFile(package).read("rdf.yaml").decode()
    keras_only = re.sub(r"\n  onnx:\n(    .*\n)+", "\n", rdf).split("\nconfig:\n")[0] + "\n"
    path = tmp_path / "keras_only.bioimageio.zip"
    path.write_bytes(rewritten(package, replace={"rdf.yaml": keras_only}))
    run = imported(path, tmp_path, monkeypatch, "keras only")
    assert run.model_path.endswith(".bioimageio.zip")
    model = load_inference_model(run.model_path)
    assert model.layout.weight_format == "keras_v3"
    image = np.random.default_rng(4).integers(0, 255, (64, 64), dtype=np.uint8)
    model_input = to_model_input(image)
    keras_output = predict_probabilities(load_model(package.with_name("tiny.keras")), model_input)
    np.testing.assert_allclose(
        predict_probabilities(model, model_input), keras_output[..., :2], atol=1e-4
    )


def test_onnx_weights_that_point_at_other_files_are_refused(foreign_package, tmp_path):
    """An initializer stored as "external data" would make the runtime read a file of the
    server (here ``/etc/hostname``): the package is refused before OpenVINO sees it."""
    import onnx
    from onnx import TensorProto, helper

    from nuclei_core.sharing.package_model import load_package_model

    model = onnx.load(zipfile.ZipFile(foreign_package).open("net.onnx"), load_external_data=False)
    stolen = helper.make_tensor("four", TensorProto.FLOAT, [], [4.0])
    stolen.ClearField("float_data")
    stolen.data_location = TensorProto.EXTERNAL
    stolen.external_data.add(key="location", value="../../../../etc/hostname")
    model.graph.initializer[0].CopyFrom(stolen)
    path = tmp_path / "stolen.bioimageio.zip"
    path.write_bytes(rewritten(foreign_package, replace={"net.onnx": model.SerializeToString()}))
    with pytest.raises(ModelLoadError, match="external data"):
        load_package_model(path)
