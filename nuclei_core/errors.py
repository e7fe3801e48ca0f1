"""Exception types raised by ``nuclei_core``.

Every error the engine raises on purpose is a :class:`NucleiError`.  The
subclasses also derive from the matching built-in type (``ValueError``,
``TypeError``, ``OSError``, ``RuntimeError``) so callers that only know the
standard library still catch them.  Messages name the file or argument and the
problem in one line, so the app and the CLI can show them as they are.
"""

from __future__ import annotations


class NucleiError(Exception):
    """Base class of every error raised on purpose by ``nuclei_core``."""


class InputError(NucleiError, ValueError):
    """An argument has the right type but an unusable value or shape."""


class InputTypeError(NucleiError, TypeError):
    """An argument has the wrong type."""


class ImageReadError(InputError):
    """A file is not a readable image (empty, truncated, too large, ...)."""


class GroundTruthError(InputError):
    """A ground-truth mask or label image does not fit its image."""


class DatasetError(InputError):
    """A dataset folder has no usable image/mask pairs."""


class ModelLoadError(InputError):
    """A model file is unsafe, does not load, or has the wrong shape."""


class ConfigError(InputError):
    """A training or prediction parameter is out of range."""


class EditError(InputError):
    """An edit of a label image cannot be done (a split line that cuts nothing, ...)."""


class EncoderWeightsError(NucleiError, OSError):
    """Pretrained encoder weights could not be loaded (offline, no cached copy)."""


class StorageError(NucleiError, OSError):
    """A file could not be written (disk full, read-only folder, ...)."""


class JobBusyError(NucleiError, RuntimeError):
    """A training job is already running; only one may run at a time."""


__all__ = [
    "NucleiError",
    "InputError",
    "InputTypeError",
    "ImageReadError",
    "GroundTruthError",
    "DatasetError",
    "ModelLoadError",
    "ConfigError",
    "EditError",
    "EncoderWeightsError",
    "StorageError",
    "JobBusyError",
]
