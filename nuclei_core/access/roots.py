"""Which server paths a served app may read: its allowed roots, checked after resolving.

Where the app needs sign-in (:mod:`nuclei_core.access.serving`), a path typed on a page
(a folder to segment or browse, a slide, a training dataset) is read only when it lies
in one of :func:`allowed_roots`: the data folder's ``imports/``, the project's sample
images, and the folders of ``$NUCLEI_ALLOWED_ROOTS``. :func:`check_server_path` resolves
the path first (``~``, ``..`` and symlinks), so a link or a ``..`` cannot lead out, and
refuses everything else with one message that names the allowed roots and says nothing
of whether the path exists. One person on their own machine (loopback, no sign-in) may
read any path, as before.
"""

from __future__ import annotations

import os
from pathlib import Path

from nuclei_core import locations
from nuclei_core.errors import InputError, InputTypeError


def allowed_roots() -> list[tuple[str, Path]]:
    """``(name shown, resolved folder)`` of every root a served app may read.

    Examples
    --------
    >>> [name for name, _ in allowed_roots()][:2]
    ['imports/ in the data folder', 'the sample images']
    """
    roots = [
        ("imports/ in the data folder", locations.data_folder() / locations.IMPORTS_FOLDER_NAME),
        ("the sample images", locations.sample_folder()),
    ]
    roots += [(str(path), path) for path in locations.configured_roots()]
    return [(name, path.resolve()) for name, path in roots]


def check_server_path(text, roots: list[tuple[str, Path]] | None = None) -> Path:
    """The resolved path ``text`` names, if it lies in one of ``roots`` (default
    :func:`allowed_roots`). A relative path starts in the first root.

    Raises
    ------
    InputError
        Empty, or outside every root (after ``~``, ``..`` and symlinks are resolved). The
        message is the same whether the path exists or not.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp()).resolve()
    >>> (root / "plate1").mkdir()
    >>> check_server_path("plate1", [("the plates", root)]) == root / "plate1"
    True
    >>> check_server_path("plate1/../../etc/passwd", [("the plates", root)])
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: this server reads only from the plates; that path is outside
    """
    if not isinstance(text, str | os.PathLike):
        raise InputTypeError(f"path must be text, got {type(text).__name__}")
    roots = allowed_roots() if roots is None else roots
    cleaned = os.fspath(text).strip()
    if not cleaned:
        raise InputError("no path given")
    path = Path(cleaned).expanduser()
    if not path.is_absolute():
        path = roots[0][1] / path
    resolved = path.resolve()
    for _, root in roots:
        if resolved == root or root in resolved.parents:
            return resolved
    names = ", ".join(name for name, _ in roots)
    raise InputError(f"this server reads only from {names}; that path is outside")
