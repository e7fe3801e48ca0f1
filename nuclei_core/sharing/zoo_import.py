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

import io
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from nuclei_core.errors import InputTypeError, ModelLoadError

__all__ = ["MAX_MEMBERS", "MAX_UNPACKED_BYTES", "import_package", "package_weights"]

MAX_MEMBERS = 256
"""Most files a package may hold."""
MAX_UNPACKED_BYTES = 2 * 1024**3
"""Most bytes a package's files may add up to, unpacked (2 GiB)."""
NEEDED_CHANNELS = ("foreground", "boundary")
"""The output channels, in this order, of a network the engine can run."""


def _checked_archive(data: bytes, label: str) -> zipfile.ZipFile:
    """The package as an open zip, its members checked (names, count, sizes)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ModelLoadError(f"{label}: not a zip file (a .bioimageio.zip package)") from None
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise ModelLoadError(f"{label}: {len(members)} files, over the limit of {MAX_MEMBERS}")
    if sum(member.file_size for member in members) > MAX_UNPACKED_BYTES:
        raise ModelLoadError(
            f"{label}: its files unpack to more than {MAX_UNPACKED_BYTES:,} bytes, the limit"
        )
    for member in members:
        path = PurePosixPath(member.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or ":" in member.filename:
            raise ModelLoadError(f"{label}: a file outside the package ({member.filename!r})")
    if "rdf.yaml" not in archive.namelist():
        raise ModelLoadError(f"{label}: no rdf.yaml: not a BioImage Model Zoo package")
    return archive


def _description(archive: zipfile.ZipFile, label: str):
    """The package's model description, read without network access; refused if invalid."""
    from bioimageio.spec import InvalidDescr, load_model_description

    with tempfile.TemporaryDirectory() as folder:
        archive.extractall(folder)
        try:
            described = load_model_description(Path(folder) / "rdf.yaml", perform_io_checks=False)
        except Exception as error:  # the spec's loader raises several kinds for a bad file
            raise ModelLoadError(f"{label}: its rdf.yaml cannot be read ({error})") from None
    if isinstance(described, InvalidDescr):
        errors = (
            described.validation_summary.details[-1].errors
            if described.validation_summary.details
            else []
        )
        first = errors[0].msg if errors else "not a valid model description"
        raise ModelLoadError(f"{label}: not a valid model description ({first})")
    return described


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
    archive = _checked_archive(bytes(data), label)
    described = _description(archive, label)
    keras_weights = described.weights.keras_v3
    if keras_weights is None:
        formats = ", ".join(sorted(described.weights.available_formats)) or "none"
        raise ModelLoadError(
            f"{label}: no Keras 3 weights (it has {formats}); only packages with Keras 3 "
            "weights load here"
        )
    channels = tuple(
        str(name)
        for axis in described.outputs[0].axes
        if str(axis.type) == "channel"
        for name in axis.channel_names
    )
    if len(described.outputs) != 1 or channels[:2] != NEEDED_CHANNELS:
        raise ModelLoadError(
            f"{label}: its output is {', '.join(channels) or 'unnamed'}; a model here gives "
            "foreground and boundary probabilities (and optionally a distance map)"
        )
    weights = archive.read(str(keras_weights.source.path))
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


def import_package(data, file_name: str, registry, name: str | None = None):
    """Add a package's Keras 3 weights to the data folder and the registry (see
    :func:`package_weights`); the registered model, its card saying where it came from."""
    from nuclei_core.registry import cards
    from nuclei_core.registry.catalogue import import_model

    weights, package_card = package_weights(data, file_name)
    stem = Path(str(file_name)).name.removesuffix(".zip").removesuffix(".bioimageio")
    run = import_model(
        weights, f"{stem or 'package'}.keras", registry, name or package_card["name"]
    )
    card = cards.read_card(run.model_path) or {}
    cards.write_card(run.model_path, {**card, **package_card, "name": run.name})
    return run
