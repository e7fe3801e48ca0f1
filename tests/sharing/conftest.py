"""The package both halves test: the tiny model exported by ``nuclei export-model``."""

from __future__ import annotations

import json

import pytest

from nuclei_core import cli


@pytest.fixture(scope="session")
def package(tmp_path_factory, tiny_model_file):
    """The tiny model exported by ``nuclei export-model``, with a card naming MoNuSeg and a
    minimum confidence; ``tiny.keras`` beside it is the model."""
    pytest.importorskip("bioimageio.core")
    folder = tmp_path_factory.mktemp("zoo")
    model = folder / "tiny.keras"
    model.write_bytes(tiny_model_file.read_bytes())
    card = {
        "name": "tiny",
        "datasets": [
            {"name": "2018 Data Science Bowl stage1_train", "licence": "CC0 1.0", "images": 670},
            {"name": "MoNuSeg 2018 training tiles", "licence": "CC BY-NC-SA 4.0", "images": 30},
        ],
        "postprocess": {"min_confidence": 0.9},
    }
    (folder / "tiny.json").write_text(json.dumps(card))
    out = folder / "tiny.bioimageio.zip"
    assert cli.main(["export-model", "--model", str(model), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def foreign_package(tmp_path_factory):
    """A package made elsewhere (:func:`tests.sharing.foreign.write_foreign_package`)."""
    pytest.importorskip("bioimageio.core")
    from tests.sharing.foreign import write_foreign_package

    return write_foreign_package(tmp_path_factory.mktemp("foreign"))
