"""The zip of a batch's outputs: the summary, every nucleus, each image's files.

:func:`batch_zip` gives it as bytes (the app's download), :func:`write_batch_zip`
writes it atomically; the rows come from :mod:`nuclei_core.batch.images`.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd  # noqa: F401 (doctests)

from nuclei_core.batch.images import (
    COMBINED_CSV,
    PER_IMAGE_FOLDER,
    SUMMARY_CSV,
    BatchItem,
    combined_table,
    summary_frame,
)
from nuclei_core.errors import InputTypeError
from nuclei_core.io import export
from nuclei_core.storage import atomic_path


def _write_zip(items: list[BatchItem], handle) -> None:
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(SUMMARY_CSV, export.table_csv(summary_frame(items)))
        archive.writestr(COMBINED_CSV, export.table_csv(combined_table(items)))
        for item in items:
            for file_name, data in item.outputs().items():
                stored = file_name.endswith(".png")  # PNG is compressed already
                archive.writestr(
                    f"{PER_IMAGE_FOLDER}/{file_name}",
                    data,
                    compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
                )


def batch_zip(items: Iterable[BatchItem]) -> bytes:
    """Zip of every output: ``summary.csv``, ``nuclei.csv`` (all nuclei) and ``per_image/``.

    ``per_image/`` holds ``<stem>_mask.png``, ``<stem>_labels.png`` (16-bit; ``.tif``
    above 65,535 nuclei) and ``<stem>_nuclei.csv`` of every segmented image.

    Examples
    --------
    >>> item = BatchItem("a.png", "a", table=pd.DataFrame({"label": []}), files={"a_mask.png": b""})
    >>> sorted(zipfile.ZipFile(io.BytesIO(batch_zip([item]))).namelist())
    ['nuclei.csv', 'per_image/a_mask.png', 'per_image/a_nuclei.csv', 'summary.csv']
    """
    buffer = io.BytesIO()
    _write_zip(list(items), buffer)
    return buffer.getvalue()


def write_batch_zip(items: Iterable[BatchItem], path: str | os.PathLike) -> Path:
    """Write :func:`batch_zip`'s archive to ``path`` atomically (``storage.atomic_path``).

    Raises
    ------
    StorageError
        The file cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> written = write_batch_zip([], Path(tempfile.mkdtemp()) / "batch.zip")
    >>> sorted(zipfile.ZipFile(written).namelist())
    ['nuclei.csv', 'summary.csv']
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    items = list(items)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        _write_zip(items, handle)
    return Path(path)
