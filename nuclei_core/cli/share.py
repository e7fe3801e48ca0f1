"""``export-model``: a model as a BioImage Model Zoo package, for Fiji, QuPath and napari.

The package (:func:`nuclei_core.sharing.zoo_export.export_package`) holds the network's
Keras 3 weights, its description (``rdf.yaml``, spec 0.5), test tensors, a cover and the
model card's documentation; ``bioimageio test PACKAGE`` validates it and reproduces the
test output offline.
"""

from __future__ import annotations


def _export_model(args) -> int:
    from nuclei_core.cli.common import model_path
    from nuclei_core.sharing.zoo_export import export_package

    written = export_package(model_path(args), args.out)
    print(f"{written}: BioImage Model Zoo package ({written.stat().st_size / 1e6:.1f} MB)")
    return 0


def add_commands(commands) -> None:
    """Register ``export-model``."""
    export = commands.add_parser(
        "export-model", help="write a model as a BioImage Model Zoo package (.bioimageio.zip)"
    )
    export.add_argument("--model", default=None, help="model file (default: the bundled one)")
    export.add_argument(
        "--out",
        default=None,
        help="package file, ending in .bioimageio.zip (default: beside the model)",
    )
    export.set_defaults(handler=_export_model)
