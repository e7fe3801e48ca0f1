"""A BioImage Model Zoo package opened safely: its archive checked, its description read.

Nothing from the package runs and nothing is fetched: :func:`checked_archive` looks at
the member names, count and sizes before a byte is extracted, :func:`read_description`
reads ``rdf.yaml`` alone with ``bioimageio.spec`` (no file or network checks).
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from nuclei_core.errors import ModelLoadError

__all__ = [
    "MAX_MEMBERS",
    "MAX_UNPACKED_BYTES",
    "channel_names",
    "checked_archive",
    "member_bytes",
    "read_description",
]

MAX_MEMBERS = 256
"""Most files a package may hold."""
MAX_UNPACKED_BYTES = 2 * 1024**3
"""Most bytes a package's files may add up to, unpacked (2 GiB)."""


def checked_archive(data: bytes, label: str) -> zipfile.ZipFile:
    """The package as an open zip, its members checked (names, count, sizes).

    Examples
    --------
    >>> checked_archive(b"not a zip", "cells.bioimageio.zip")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.ModelLoadError: cells.bioimageio.zip: not a zip file (a .bioimageio.zip package)
    """  # noqa: E501
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


def read_description(archive: zipfile.ZipFile, label: str):
    """The package's model description, read without network access; refused if invalid."""
    from bioimageio.spec import InvalidDescr, load_model_description

    with tempfile.TemporaryDirectory() as folder:
        # The description alone: its files are not read (no IO checks), so nothing else
        # is unpacked.
        archive.extract("rdf.yaml", folder)
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


def member_bytes(archive: zipfile.ZipFile, source, label: str) -> bytes:
    """The bytes of the package file a description names (``weights.onnx.source``)."""
    name = str(getattr(source, "path", source)).replace("\\", "/").lstrip("./")
    try:
        return archive.read(name)
    except KeyError:
        raise ModelLoadError(f"{label}: its rdf.yaml names {name!r}, not in the package") from None


def channel_names(tensor) -> list[str]:
    """The channel names of a described tensor (``[]`` when it has no channel axis)."""
    return [
        str(name)
        for axis in tensor.axes
        if str(axis.type) == "channel"
        for name in axis.channel_names
    ]
