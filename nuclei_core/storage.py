"""Safe file writing for ``nuclei_core``: the data folder and atomic writes.

Model saving, CSV export, model cards and the run registry all write through
these helpers, so a crash, a full disk or a killed process never leaves a
half-written file behind: data goes to a temporary file in the target's own
folder, is flushed to disk, and only then replaces the target in one
``os.replace``.  If anything fails the temporary file is removed, the previous
file stays as it was, and a :class:`~nuclei_core.errors.StorageError` naming
the file is raised.

Examples
--------
>>> import json, tempfile
>>> from pathlib import Path
>>> card = Path(tempfile.mkdtemp()) / "card.json"
>>> atomic_write_json(card, {"name": "baseline"})
>>> json.loads(card.read_text())
{'name': 'baseline'}
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nuclei_core.errors import InputTypeError, StorageError
from nuclei_core.locations import DATA_DIR_ENV

_NEW_FILE_MODE = 0o644


def _reason(error: OSError) -> str:
    """Return the human part of an OSError (``strerror`` when it has one)."""
    return error.strerror or str(error) or type(error).__name__


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create a folder (and its parents) if needed and check it is writable.

    Parameters
    ----------
    path : str or path-like
        The folder.

    Returns
    -------
    pathlib.Path
        The folder as an absolute path.

    Raises
    ------
    StorageError
        If the folder cannot be created, is not a folder, or is not writable.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> ensure_dir(Path(tempfile.mkdtemp()) / "models" / "unet").is_dir()
    True
    """
    folder = Path(path).expanduser().absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:
        raise StorageError(f"cannot create folder {folder}: a file is in the way") from error
    except OSError as error:
        raise StorageError(f"cannot create folder {folder}: {_reason(error)}") from error
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StorageError(f"folder {folder} is not writable")
    return folder


def _remove_quietly(path: str | os.PathLike[str]) -> None:
    """Remove a temporary file or folder, ignoring errors (best-effort cleanup)."""
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target, ignore_errors=True)
        return
    with contextlib.suppress(OSError):
        target.unlink()


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entry list to disk so a rename survives a power cut.

    Best effort: not every platform or file system allows opening a folder,
    and the rename has already happened, so failures are ignored.
    """
    with contextlib.suppress(OSError, AttributeError):
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _target_mode(target: Path) -> int:
    """Return the permission bits the new file should get (the old file's, if any)."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return _NEW_FILE_MODE


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write bytes to a file atomically: the file is either all old or all new.

    Parameters
    ----------
    path : str or path-like
        The file to write; its folder must exist.
    data : bytes
        The new content.

    Raises
    ------
    InputTypeError
        If ``data`` is not bytes-like.
    StorageError
        If the file cannot be written; the previous file at ``path`` is intact.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "mask.png"
    >>> atomic_write_bytes(target, b"\\x89PNG")
    >>> target.read_bytes()
    b'\\x89PNG'
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputTypeError(f"data for {path} must be bytes, not {type(data).__name__}")
    target = Path(path)
    temp_name: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
        ) as handle:
            temp_name = handle.name
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, _target_mode(target))
        os.replace(temp_name, target)
    except OSError as error:
        if temp_name is not None:
            _remove_quietly(temp_name)
        raise StorageError(f"cannot write {path}: {_reason(error)}") from error
    _fsync_folder(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write text to a file atomically (see :func:`atomic_write_bytes`).

    Parameters
    ----------
    path : str or path-like
        The file to write; its folder must exist.
    text : str
        The new content, written as it is (no newline translation).
    encoding : str, default "utf-8"
        The text encoding.

    Raises
    ------
    InputTypeError
        If ``text`` is not a string.
    StorageError
        If the file cannot be written; the previous file at ``path`` is intact.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> table = Path(tempfile.mkdtemp()) / "nuclei.csv"
    >>> atomic_write_text(table, "label,area\\n1,52\\n")
    >>> table.read_text().splitlines()
    ['label,area', '1,52']
    """
    if not isinstance(text, str):
        raise InputTypeError(f"text for {path} must be a str, not {type(text).__name__}")
    atomic_write_bytes(path, text.encode(encoding))


def _json_default(value: Any) -> Any:
    """Turn numpy scalars and arrays (anything with ``tolist``/``item``) into JSON types."""
    for method in ("tolist", "item"):
        if hasattr(value, method):
            return getattr(value, method)()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(obj: Any, indent: int | None) -> str:
    """``json.dumps`` with the module's settings; raises TypeError/ValueError."""
    return json.dumps(
        obj, indent=indent, sort_keys=False, ensure_ascii=False, default=_json_default
    )


def to_json(obj: Any, indent: int | None = None) -> str:
    """Serialise ``obj`` to JSON, accepting numpy scalars/arrays and paths.

    Parameters
    ----------
    obj : object
        Dicts, lists, strings, numbers, ``None``, numpy values, paths.
    indent : int, optional
        Indentation as in :func:`json.dumps`; ``None`` for one line.

    Returns
    -------
    str
        The JSON text (keys in insertion order, non-ASCII kept as is).

    Raises
    ------
    InputTypeError
        If ``obj`` holds something JSON cannot represent.

    Examples
    --------
    >>> to_json({"dice": 0.5, "epoch": 3})
    '{"dice": 0.5, "epoch": 3}'
    """
    try:
        return _dumps(obj, indent)
    except (TypeError, ValueError) as error:
        raise InputTypeError(f"cannot convert to JSON: {error}") from error


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON (indent 2, keys in order) atomically.

    Numpy scalars and arrays are converted to plain numbers and lists.

    Parameters
    ----------
    path : str or path-like
        The file to write; its folder must exist.
    obj : object
        Anything :func:`to_json` accepts.

    Raises
    ------
    InputTypeError
        If ``obj`` cannot be represented as JSON (nothing is written).
    StorageError
        If the file cannot be written; the previous file at ``path`` is intact.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> card = Path(tempfile.mkdtemp()) / "card.json"
    >>> atomic_write_json(card, {"b": 1, "a": [1, 2]})
    >>> print(card.read_text(), end="")
    {
      "b": 1,
      "a": [
        1,
        2
      ]
    }
    """
    try:
        text = _dumps(obj, indent=2)
    except (TypeError, ValueError) as error:
        raise InputTypeError(f"cannot write {path}: {error}") from error
    atomic_write_text(path, text + "\n")


def _fsync_file(path: Path) -> None:
    """Flush a file written by someone else (e.g. Keras) to disk; folders are skipped."""
    if not path.is_file():
        return
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` when the block succeeds.

    For writers that want a file name rather than bytes (``model.save``,
    ``DataFrame.to_csv``).  The temporary file lives in the same folder and
    ends with the same suffixes as ``path`` (``.keras``, ``.weights.h5``),
    because some writers check the extension.  It already exists (empty) when
    the block starts; the writer overwrites it.  If the block raises, the
    temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or path-like
        The final file; its folder must exist.

    Yields
    ------
    pathlib.Path
        The temporary path to write to.

    Raises
    ------
    StorageError
        If the temporary file cannot be created or moved into place, or the
        block raises an ``OSError`` (the block's other errors pass through).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> model_file = Path(tempfile.mkdtemp()) / "unet.keras"
    >>> with atomic_path(model_file) as temp:
    ...     _ = temp.write_bytes(b"weights")
    >>> temp.suffix, model_file.read_bytes()
    ('.keras', b'weights')
    """
    target = Path(path)
    suffix = "".join(target.suffixes) or ".tmp"
    try:
        with tempfile.NamedTemporaryFile(
            dir=target.parent, prefix=f".{target.stem}.", suffix=suffix, delete=False
        ) as handle:
            temp = Path(handle.name)
    except OSError as error:
        raise StorageError(f"cannot write {path}: {_reason(error)}") from error
    try:
        yield temp
    except StorageError:
        _remove_quietly(temp)
        raise
    except OSError as error:
        _remove_quietly(temp)
        raise StorageError(f"cannot write {path}: {_reason(error)}") from error
    except BaseException:
        _remove_quietly(temp)
        raise
    try:
        _fsync_file(temp)
        if temp.is_file():
            os.chmod(temp, _target_mode(target))  # the temporary file was created 0600
        os.replace(temp, target)
    except OSError as error:
        _remove_quietly(temp)
        raise StorageError(f"cannot write {path}: {_reason(error)}") from error
    _fsync_folder(target.parent)


__all__ = [
    "DATA_DIR_ENV",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "ensure_dir",
    "to_json",
]
