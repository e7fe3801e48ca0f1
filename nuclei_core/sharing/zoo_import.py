"""A BioImage Model Zoo package back into this project: its Keras 3 weights as a registered model.

:func:`package_weights` opens a ``.bioimageio.zip`` (bytes, as uploaded) without running
anything from it: the archive's member names, count and sizes are checked before a
byte is extracted, the description is read by ``bioimageio.spec`` without fetching
anything, and only a package whose network this engine can run is taken: Keras 3
weights with ``foreground`` and ``boundary`` output channels (what
:mod:`nuclei_core.sharing.zoo_export` writes).  :func:`import_package` adds those weights
through :func:`nuclei_core.registry.catalogue.import_model` (``safe_mode`` loading, shape
checks) and records in the model's card where it came from, its licence and its
post-processing levels.
"""

from __future__ import annotations

from pathlib import Path

from nuclei_core.errors import InputTypeError, ModelLoadError
from nuclei_core.sharing.archive import (
    channel_names,
    checked_archive,
    member_bytes,
    read_description,
)

__all__ = ["import_package", "package_weights"]

NEEDED_CHANNELS = ("foreground", "boundary")
"""The output channels, in this order, of a network the engine can run."""


def package_weights(data, file_name: str) -> tuple[bytes, dict]:
    """The Keras 3 weights of a BioImage Model Zoo package, and what its card should say.

    Parameters
    ----------
    data : bytes
        The package file's bytes.
    file_name : str
        Its name, for the messages.

    Returns
    -------
    weights : bytes
        The ``.keras`` file.
    card : dict
        ``name``, ``licence``, ``params`` (where it came from) and, from a package
        exported here, ``postprocess`` and ``nucleus_diameter_px``.

    Raises
    ------
    ModelLoadError
        Not a zip, a member outside the package, too many or too large files, no or an
        invalid ``rdf.yaml``, no Keras 3 weights (the message names the formats it has)
        or outputs other than foreground and boundary probabilities.

    Examples
    --------
    >>> package_weights(b"not a zip", "cells.bioimageio.zip")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.ModelLoadError: cells.bioimageio.zip: not a zip file (a .bioimageio.zip package)
    """  # noqa: E501
    if not isinstance(data, (bytes, bytearray)):
        raise InputTypeError(f"package data must be bytes, got {type(data).__name__}")
    label = Path(str(file_name)).name or "package.bioimageio.zip"
    archive = checked_archive(bytes(data), label)
    return _keras_weights(archive, read_description(archive, label), label)


def _keras_weights(archive, described, label: str) -> tuple[bytes, dict]:
    """:func:`package_weights` of a package already opened and described."""
    keras_weights = described.weights.keras_v3
    if keras_weights is None:
        formats = ", ".join(sorted(described.weights.available_formats)) or "none"
        raise ModelLoadError(
            f"{label}: no Keras 3 weights (it has {formats}); only packages with Keras 3 "
            "weights load here"
        )
    channels = tuple(channel_names(described.outputs[0]))
    if len(described.outputs) != 1 or channels[:2] != NEEDED_CHANNELS:
        raise ModelLoadError(
            f"{label}: its output is {', '.join(channels) or 'unnamed'}; a model here gives "
            "foreground and boundary probabilities (and optionally a distance map)"
        )
    weights = member_bytes(archive, keras_weights.source, label)
    config = (described.config.model_dump() if described.config else {}).get("nuclei_core", {})
    card = {
        "name": str(described.name),
        "licence": str(described.license),
        "params": {"source": "BioImage Model Zoo package", "file_name": label},
    }
    for key in ("postprocess", "nucleus_diameter_px"):
        if config.get(key):
            card[key] = config[key]
    return weights, card


def _made_here(described) -> bool:
    """A package exported by this project: its Keras 3 weights are one of our networks."""
    config = described.config.model_dump() if described.config else {}
    channels = tuple(channel_names(described.outputs[0]))
    return (
        "nuclei_core" in config
        and described.weights.keras_v3 is not None
        and len(described.outputs) == 1
        and channels[:2] == NEEDED_CHANNELS
    )


def _register_package(data: bytes, label: str, registry, name: str, archive, described, owner):
    """Keep a package from elsewhere as it is, in the data folder, once its network has run
    on a small image here; its registered run."""
    import hashlib

    import numpy as np

    from nuclei_core.registry import cards
    from nuclei_core.registry.catalogue import models_folder, slug
    from nuclei_core.sharing.package_model import package_model
    from nuclei_core.storage import atomic_write_bytes, ensure_dir

    digest = hashlib.sha256(data).hexdigest()[:10]
    stem = label.removesuffix(".zip").removesuffix(".bioimageio") or "package"
    target = ensure_dir(models_folder(owner)) / f"{slug(stem)}-{digest}.bioimageio.zip"
    if not target.is_file():
        atomic_write_bytes(target, data)
    try:
        model = package_model(archive, described, target)
        model.predict_batch(np.random.default_rng(0).random((1, 64, 64, 3), np.float32))
    except Exception as error:  # the package's network or its processing failed to run
        target.unlink(missing_ok=True)
        text = str(error).replace(str(target), label).replace(target.name, label)
        if isinstance(error, ModelLoadError):
            raise ModelLoadError(text) from None
        raise ModelLoadError(f"{label}: its network does not run here ({text[:300]})") from None
    card = cards.read_card(target) or {
        "name": name,
        "architecture": "bioimage.io package",
        "licence": str(described.license),
        "description": str(described.description)[:500],
        "params": {
            "source": "BioImage Model Zoo package",
            "file_name": label,
            "weights": model.layout.weight_format,
            "outputs": channel_names(described.outputs[0]) or ["foreground"],
            "authors": [str(author.name) for author in described.authors][:10],
        },
        "created_at": cards.utc_now(),
    }
    cards.write_card(target, card)
    return registry.register_model_card(
        card, target, cards.card_path(target), name=name, owner=owner
    )


def import_package(
    data, file_name: str, registry, name: str | None = None, owner: str | None = None
):
    """Add a BioImage Model Zoo package to the data folder and the registry; its run
    (``owner``'s, as :func:`~nuclei_core.registry.catalogue.import_model`).

    A package exported here comes back as its Keras 3 weights, the same model
    (:func:`package_weights`). One from elsewhere whose network gives a foreground
    probability in ONNX or Keras 3 weights is kept as it is and runs through
    :class:`~nuclei_core.sharing.package_model.PackageModel` (it is run once on a small
    image first); others are refused with the reason
    (:func:`~nuclei_core.sharing.package_model.package_layout`).
    """
    from nuclei_core.registry import cards
    from nuclei_core.registry.catalogue import import_model
    from nuclei_core.sharing.package_model import package_layout

    if not isinstance(data, (bytes, bytearray)):
        raise InputTypeError(f"package data must be bytes, got {type(data).__name__}")
    label = Path(str(file_name)).name or "package.bioimageio.zip"
    archive = checked_archive(bytes(data), label)
    described = read_description(archive, label)
    chosen = (name or "").strip() or None
    if not _made_here(described):
        package_layout(described, label)  # refused here, before anything is written
        return _register_package(
            bytes(data), label, registry, chosen or str(described.name), archive, described, owner
        )
    weights, package_card = _keras_weights(archive, described, label)
    stem = label.removesuffix(".zip").removesuffix(".bioimageio")
    run = import_model(
        weights, f"{stem or 'package'}.keras", registry, chosen or package_card["name"], owner
    )
    card = cards.read_card(run.model_path) or {}
    cards.write_card(run.model_path, {**card, **package_card, "name": run.name})
    return run
