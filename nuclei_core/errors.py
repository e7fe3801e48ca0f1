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
    "one_line",
]


def one_line(error: BaseException) -> str:
    """An error in one line, for a job's status, a page or a log.

    The engine's own errors (:class:`NucleiError`) are one line already: the first line of
    the message. Any other gets its type name and the last non-empty line of its message,
    where TensorFlow puts the reason after its trace.

    Examples
    --------
    >>> one_line(InputError("a.png: empty file"))
    'a.png: empty file'
    >>> one_line(RuntimeError("in user code:\\n\\n    File ...\\n\\n    device lost "))
    'RuntimeError: device lost'
    >>> one_line(MemoryError())
    'MemoryError'
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if isinstance(error, NucleiError):
        return lines[0] if lines else type(error).__name__
    return f"{type(error).__name__}: {lines[-1]}" if lines else type(error).__name__
