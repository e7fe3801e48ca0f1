"""Where things are: the project's folders and the ``NUCLEI_*`` environment variables.

The one module that knows the repository layout (``models/``, ``sample_images/``,
the data folder) and reads the environment variables that move them. Every value
is read when a function is called, never at import time, so a test or a notebook
can set a variable after importing the package.

An installed package (``pip install .``) carries its own copy of the default model
(``models/default.keras`` and its card) inside ``nuclei_core/models/``; the checkout
has none there and uses the project's ``models/``.

=========================  =====================================================
variable                   what it sets (default)
=========================  =====================================================
``NUCLEI_DATA_DIR``        the app's data folder: registry, runs, uploads
                           (``.nuclei_data`` in the project root)
``NUCLEI_DEFAULT_MODEL``   the model used when none is chosen
                           (``models/default.keras``)
``NUCLEI_SAMPLES_DIR``     the bundled sample images (``sample_images/``)
``NUCLEI_MAX_PIXELS``      largest image read whole, width x height (8192 x 8192)
``NUCLEI_JOB_LOCK_FD``     set by the app for its training worker process only
``NUCLEI_PASSWORD_HASH``   the lab password's hash (``nuclei hash-password``)
``NUCLEI_OPERATOR_``       the operator password's hash: who signs in with it
``PASSWORD_HASH``          may change shared models and the default
``NUCLEI_OPERATORS``       single-sign-on accounts (e-mails, ``,``-separated)
                           that are operators
``NUCLEI_ALLOWED_ROOTS``   ``:``-separated folders a served app may read
``NUCLEI_ALLOW_ANONYMOUS`` ``1``: serve a network address without sign-in
``NUCLEI_MAX_JOBS``        folder batches and whole slides running at once on
                           an app server; more wait in a queue (2)
=========================  =====================================================
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The folder that holds the ``nuclei_core`` package, ``models/`` and ``sample_images/``."""

_PACKAGED_MODELS = files("nuclei_core") / "models"
MODELS_FOLDER = Path(_PACKAGED_MODELS) if _PACKAGED_MODELS.is_dir() else PROJECT_ROOT / "models"
"""The bundled models: the installed package's copy, else the project's ``models/``."""

DEFAULT_MODEL = MODELS_FOLDER / "default.keras"
"""The bundled default model."""

DATA_DIR_ENV = "NUCLEI_DATA_DIR"
DEFAULT_MODEL_ENV = "NUCLEI_DEFAULT_MODEL"
SAMPLES_ENV = "NUCLEI_SAMPLES_DIR"
MAX_PIXELS_ENV = "NUCLEI_MAX_PIXELS"
LOCK_FD_ENV = "NUCLEI_JOB_LOCK_FD"
PASSWORD_HASH_ENV = "NUCLEI_PASSWORD_HASH"  # the lab password's hash (nuclei hash-password)
ALLOW_ANONYMOUS_ENV = "NUCLEI_ALLOW_ANONYMOUS"  # 1: serve a network without sign-in, on purpose
ALLOWED_ROOTS_ENV = "NUCLEI_ALLOWED_ROOTS"  # ':'-separated folders a served app may read
MAX_JOBS_ENV = "NUCLEI_MAX_JOBS"  # folder batches and slides running at once on a server
DEFAULT_MAX_JOBS = 2
OPERATORS_ENV = "NUCLEI_OPERATORS"  # ','-separated single-sign-on accounts that are operators
OPERATOR_HASH_ENV = "NUCLEI_OPERATOR_PASSWORD_HASH"  # the operator password's hash
IMPORTS_FOLDER_NAME = "imports"  # <data folder>/imports: what a served app reads by default

DEFAULT_DATA_DIR_NAME = ".nuclei_data"
DEFAULT_MAX_PIXELS = 8192 * 8192


def _configured_path(variable: str) -> Path | None:
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else None


def data_folder() -> Path:
    """The app's data folder (not created here; ``storage.ensure_dir`` creates it).

    Examples
    --------
    >>> data_folder().is_absolute() or DATA_DIR_ENV in os.environ
    True
    """
    return _configured_path(DATA_DIR_ENV) or PROJECT_ROOT / DEFAULT_DATA_DIR_NAME


def user_datasets_folder() -> Path:
    """The folder of the user datasets (images corrected in the app): ``<data folder>/datasets``.

    Examples
    --------
    >>> user_datasets_folder() == data_folder() / "datasets"
    True
    """
    return data_folder() / "datasets"


def default_model_path() -> Path:
    """The model used when none is chosen: ``$NUCLEI_DEFAULT_MODEL`` or ``models/default.keras``.

    Examples
    --------
    >>> default_model_path().suffix
    '.keras'
    """
    return _configured_path(DEFAULT_MODEL_ENV) or DEFAULT_MODEL


def sample_folder() -> Path:
    """The bundled sample images: ``$NUCLEI_SAMPLES_DIR`` or ``sample_images/``.

    Examples
    --------
    >>> sample_folder().name
    'sample_images'
    """
    return _configured_path(SAMPLES_ENV) or PROJECT_ROOT / "sample_images"


def max_pixels() -> int:
    """Largest image (width x height) read whole: ``$NUCLEI_MAX_PIXELS`` or 8192 x 8192.

    Raises
    ------
    ValueError
        The variable is set but is not a positive whole number.

    Examples
    --------
    >>> max_pixels() >= 1
    True
    """
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{MAX_PIXELS_ENV} must be a positive whole number, got {value!r}")
    return int(value)


def max_jobs() -> int:
    """How many folder batches and slides an app server runs at once: ``$NUCLEI_MAX_JOBS``
    or 2.

    Raises
    ------
    ValueError
        The variable is set but is not a whole number of 1 or more.

    Examples
    --------
    >>> max_jobs() >= 1
    True
    """
    value = os.environ.get(MAX_JOBS_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_JOBS
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{MAX_JOBS_ENV} must be a whole number of 1 or more, got {value!r}")
    return int(value)


def password_hash_setting() -> str | None:
    """The lab password's hash from ``$NUCLEI_PASSWORD_HASH``, or None where it is not set.

    Examples
    --------
    >>> os.environ[PASSWORD_HASH_ENV] = " scrypt$16384$8$1$c2FsdA$aGFzaA "
    >>> password_hash_setting()
    'scrypt$16384$8$1$c2FsdA$aGFzaA'
    >>> del os.environ[PASSWORD_HASH_ENV]; password_hash_setting() is None
    True
    """
    return os.environ.get(PASSWORD_HASH_ENV, "").strip() or None


def anonymous_allowed() -> bool:
    """Whether the operator set ``NUCLEI_ALLOW_ANONYMOUS=1``: serve a network without sign-in.

    Examples
    --------
    >>> anonymous_allowed() == (os.environ.get(ALLOW_ANONYMOUS_ENV, "").strip() == "1")
    True
    """
    return os.environ.get(ALLOW_ANONYMOUS_ENV, "").strip() == "1"


def configured_roots() -> list[Path]:
    """The folders of ``$NUCLEI_ALLOWED_ROOTS`` (``:``-separated; empty parts ignored).

    Examples
    --------
    >>> os.environ[ALLOWED_ROOTS_ENV] = "/scans:: /shared/plates "
    >>> [str(path) for path in configured_roots()]
    ['/scans', '/shared/plates']
    >>> del os.environ[ALLOWED_ROOTS_ENV]
    """
    parts = os.environ.get(ALLOWED_ROOTS_ENV, "").split(":")
    return [Path(part.strip()).expanduser() for part in parts if part.strip()]


def operator_hash_setting() -> str | None:
    """The operator password's hash from ``$NUCLEI_OPERATOR_PASSWORD_HASH``, or None.

    Examples
    --------
    >>> operator_hash_setting() == (os.environ.get(OPERATOR_HASH_ENV, "").strip() or None)
    True
    """
    return os.environ.get(OPERATOR_HASH_ENV, "").strip() or None


def operators_setting() -> list[str]:
    """The single-sign-on accounts of ``$NUCLEI_OPERATORS`` (``,``-separated, blanks ignored).

    Examples
    --------
    >>> os.environ[OPERATORS_ENV] = " ada@lab.org, ,bob@lab.org"
    >>> operators_setting()
    ['ada@lab.org', 'bob@lab.org']
    >>> del os.environ[OPERATORS_ENV]
    """
    parts = os.environ.get(OPERATORS_ENV, "").split(",")
    return [part.strip() for part in parts if part.strip()]
