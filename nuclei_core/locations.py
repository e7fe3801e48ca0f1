"""Where things are: the project's folders and the ``NUCLEI_*`` environment variables.

The one module that knows the repository layout (``models/``, ``sample_images/``,
the data folder) and reads the environment variables that move them. Every value
is read when a function is called, never at import time, so a test or a notebook
can set a variable after importing the package.

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
=========================  =====================================================
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The folder that holds the ``nuclei_core`` package, ``models/`` and ``sample_images/``."""

DEFAULT_MODEL = PROJECT_ROOT / "models" / "default.keras"
"""The bundled default model."""

DATA_DIR_ENV = "NUCLEI_DATA_DIR"
DEFAULT_MODEL_ENV = "NUCLEI_DEFAULT_MODEL"
SAMPLES_ENV = "NUCLEI_SAMPLES_DIR"
MAX_PIXELS_ENV = "NUCLEI_MAX_PIXELS"
LOCK_FD_ENV = "NUCLEI_JOB_LOCK_FD"

DEFAULT_DATA_DIR_NAME = ".nuclei_data"
DEFAULT_MAX_PIXELS = 8192 * 8192


def _configured_path(variable: str) -> Path | None:
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else None


def data_folder() -> Path:
    """The app's data folder (not created here; ``storage.data_dir`` creates it).

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
