"""Models that travel: BioImage Model Zoo packages (spec 0.5) written from this project's models.

``zoo_export``  :func:`~nuclei_core.sharing.zoo_export.export_package`: a ``.keras`` model and
                its card as a ``.bioimageio.zip`` (``rdf.yaml``, Keras 3 weights, test tensors,
                cover, documentation) that ``bioimageio.core`` validates and runs
"""
