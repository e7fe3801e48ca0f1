"""``export-model`` / ``import-model``: BioImage Model Zoo packages out and in.

The package (:func:`nuclei_core.sharing.zoo_export.export_package`) holds the network's
Keras 3 and ONNX weights, its description (``rdf.yaml``, spec 0.5), test tensors, a cover
and the model card's documentation; ``bioimageio test PACKAGE`` validates it and
reproduces the test output offline.  ``import-model`` adds a package's Keras 3 weights
to the data folder's models (:func:`nuclei_core.sharing.zoo_import.import_package`), where
the app lists them.
"""

from __future__ import annotations


def _export_model(args) -> int:
    from nuclei_core.cli.common import model_path
    from nuclei_core.sharing.zoo_export import export_package

    written = export_package(model_path(args), args.out, args.test_image)
    print(f"{written}: BioImage Model Zoo package ({written.stat().st_size / 1e6:.1f} MB)")
    return 0


def _import_model(args) -> int:
    from pathlib import Path

    from nuclei_core.errors import ModelLoadError
    from nuclei_core.registry.store import Registry
    from nuclei_core.sharing.zoo_import import import_package

    path = Path(args.package)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such package file")
    run = import_package(path.read_bytes(), path.name, Registry(), args.name)
    print(f"{path.name}: added as model {run.name!r} ({run.model_path})")
    return 0


def add_commands(commands) -> None:
    """Register ``export-model`` and ``import-model``."""
    export = commands.add_parser(
        "export-model", help="write a model as a BioImage Model Zoo package (.bioimageio.zip)"
    )
    export.add_argument("--model", default=None, help="model file (default: the bundled one)")
    export.add_argument(
        "--out",
        default=None,
        help="package file, ending in .bioimageio.zip (default: beside the model)",
    )
    export.add_argument(
        "--test-image",
        default=None,
        help="image of the test tensors and the cover: nuclei bright, sides multiples of 32 "
        "(default: sample_images/inputs/fluo_03.png)",
    )
    export.set_defaults(handler=_export_model)
    bring = commands.add_parser(
        "import-model", help="add a BioImage Model Zoo package's model to the app's models"
    )
    bring.add_argument("package", help="a .bioimageio.zip package with Keras 3 weights")
    bring.add_argument("--name", default=None, help="the model's name (default: the package's)")
    bring.set_defaults(handler=_import_model)
