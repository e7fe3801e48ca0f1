"""Models that travel: BioImage Model Zoo packages (spec 0.5) out of this project and back in.

``zoo_export``  :func:`~nuclei_core.sharing.zoo_export.export_package`: a ``.keras`` model and
                its card as a ``.bioimageio.zip`` (``rdf.yaml``, Keras 3 and ONNX weights, test
                tensors, cover, documentation) that ``bioimageio.core`` validates and runs
``zoo_import``  :func:`~nuclei_core.sharing.zoo_import.import_package`: a package's Keras 3
                weights registered as a model, the archive and its description checked first
"""
