"""``import-model``: a package exported here comes back as the same model; others are refused
with the reason, before anything in them is extracted or run."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest

from nuclei_core import cli
from nuclei_core.errors import ModelLoadError

pytest.importorskip("bioimageio.spec")


def test_a_package_exported_here_comes_back_as_the_same_model(package, tmp_path, monkeypatch):
    from nuclei_core.network.model import load_model
    from nuclei_core.registry import cards
    from nuclei_core.registry.store import Registry
    from nuclei_core.segmentation.segment import segment_image

    monkeypatch.setenv("NUCLEI_DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["import-model", str(package), "--name", "shared tiny"]) == 0
    (run,) = [run for run in Registry().list_runs() if run.name == "shared tiny"]
    card = cards.read_card(run.model_path)
    assert card["params"]["source"] == "BioImage Model Zoo package"
    assert card["postprocess"] == {"min_confidence": 0.9} and card["licence"] == "CC-BY-NC-SA-4.0"
    image = np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8)
    original = segment_image(load_model(package.with_name("tiny.keras")), image)
    imported = segment_image(load_model(run.model_path), image)
    assert np.array_equal(original.labels, imported.labels)
    assert np.array_equal(original.probabilities, imported.probabilities)


def rewritten(package, replace: dict | None = None, extra: dict | None = None) -> bytes:
    """The package's bytes with some members replaced or added."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(buffer, "w") as target:
        for member in source.namelist():
            data = (replace or {}).get(member, source.read(member))
            if data is not None:
                target.writestr(member, data)
        for member, data in (extra or {}).items():
            target.writestr(member, data)
    return buffer.getvalue()


def test_packages_this_engine_cannot_run_are_refused_with_the_reason(package):
    from nuclei_core.sharing.zoo_import import package_weights

    rdf = zipfile.ZipFile(package).read("rdf.yaml").decode()
    keras_entry = re.search(r"\n  keras_v3:\n(    .*\n)+", rdf).group(0)
    onnx_only = rdf.replace(keras_entry, "\n").replace("    parent: keras_v3\n", "")
    cases = {
        "not a zip file": b"plain text",
        "a file outside the package": rewritten(package, extra={"../escape.txt": b"x"}),
        "no rdf.yaml": rewritten(package, replace={"rdf.yaml": None}),
        "no Keras 3 weights \\(it has onnx\\)": rewritten(package, replace={"rdf.yaml": onnx_only}),
        "its output is mask, edge": rewritten(
            package,
            replace={
                "rdf.yaml": rdf.replace("- foreground", "- mask").replace("- boundary", "- edge")
            },
        ),
    }
    for reason, data in cases.items():
        with pytest.raises(ModelLoadError, match=f"^shared.bioimageio.zip: {reason}"):
            package_weights(data, "shared.bioimageio.zip")
