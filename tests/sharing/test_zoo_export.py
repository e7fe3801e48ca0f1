"""``export-model``: a BioImage Model Zoo package that bioimageio.core validates and runs offline.

The tiny model is exported from the command line; ``bioimageio.core.test_model`` must
pass the package (format validation and the Keras 3 weights reproducing the test output),
and the package must describe what this project's engine runs: the test output is
``predict_probabilities`` on the preprocessed sample image.
"""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest

from nuclei_core.errors import InputError

pytest.importorskip("bioimageio.core")


def test_the_package_passes_bioimageio_core_offline(package):
    from bioimageio.core import test_model

    summary = test_model(str(package))
    failed = [detail.name for detail in summary.details if detail.status == "failed"]
    assert summary.status == "passed", failed
    # bioimageio.core sets its default Keras backend (torch) unless one is set: the engine
    # sets TensorFlow first, so the processes started after it still run Keras on TensorFlow
    assert os.environ["KERAS_BACKEND"] == "tensorflow"


def test_the_package_describes_what_the_engine_runs(package):
    from bioimageio.spec import load_model_description

    from nuclei_core.io.imread import read_image
    from nuclei_core.locations import sample_folder
    from nuclei_core.network.model import load_model
    from nuclei_core.network.predict import predict_probabilities
    from nuclei_core.segmentation.preprocess import to_model_input
    from nuclei_core.sharing.zoo_export import TEST_IMAGE

    descr = load_model_description(package, perform_io_checks=False)
    assert str(descr.license) == "CC-BY-NC-SA-4.0"  # MoNuSeg's terms travel with the model
    assert [str(axis.id) for axis in descr.outputs[0].axes] == ["batch", "y", "x", "channel"]
    assert descr.outputs[0].axes[-1].channel_names == ["foreground", "boundary"]
    config = descr.config.model_dump()
    assert config["nuclei_core"]["postprocess"] == {"min_confidence": 0.9}
    assert any("Caicedo" in entry.text for entry in descr.cite)
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        expected = np.load(archive.open("test_output.npy"))
        readme = archive.read("README.md").decode()
    assert {"rdf.yaml", "model.keras", "model.onnx", "test_input.npy", "cover.png"} <= names
    assert "invert brightfield and stained images" in readme and "CC BY-NC-SA 4.0" in readme
    model = load_model(package.with_name("tiny.keras"))
    image = read_image(sample_folder() / "inputs" / TEST_IMAGE)
    found = predict_probabilities(model, to_model_input(image))
    assert np.abs(found[None] - expected).max() < 1e-5


def test_the_onnx_weights_give_the_keras_foreground(package, tmp_path):
    import onnxruntime

    from nuclei_core.io.imread import read_image
    from nuclei_core.locations import sample_folder
    from nuclei_core.network.model import load_model
    from nuclei_core.segmentation.preprocess import to_model_input
    from nuclei_core.sharing.zoo_export import TEST_IMAGE

    with zipfile.ZipFile(package) as archive:
        archive.extract("model.onnx", tmp_path)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    batch = to_model_input(read_image(sample_folder() / "inputs" / TEST_IMAGE))[None]
    (onnx_output,) = session.run(None, {session.get_inputs()[0].name: batch})
    keras_output = np.asarray(load_model(package.with_name("tiny.keras"))(batch))
    assert np.abs(onnx_output[..., 0] - keras_output[..., 0]).max() < 1e-4


def test_a_package_name_and_a_test_image_must_fit(tmp_path, tiny_model_file):
    from nuclei_core.locations import sample_folder
    from nuclei_core.sharing.zoo_export import export_package

    with pytest.raises(InputError, match=r"ends in \.bioimageio\.zip"):
        export_package(tiny_model_file, tmp_path / "model.zip")
    stained = sample_folder() / "inputs" / "stained_01.png"  # dark nuclei: to be inverted
    with pytest.raises(InputError, match="stained_01.png: the test image must be greyscale"):
        export_package(tiny_model_file, tmp_path / "m.bioimageio.zip", test_image=stained)


def test_package_bytes_are_a_whole_package_and_leave_nothing_behind(tmp_path, tiny_model_file):
    from nuclei_core.sharing.zoo_export import package_bytes

    model = tmp_path / "tiny.keras"
    model.write_bytes(tiny_model_file.read_bytes())
    data = package_bytes(model)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert {"rdf.yaml", "model.keras", "model.onnx"} <= set(archive.namelist())
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tiny.keras"]
