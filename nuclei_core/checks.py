"""Input checks: the one vocabulary every engine function uses to refuse a bad argument.

Each check takes the value and the argument's name, returns the value (converted
where the check says so) and raises a one-line error that starts with that name:

* a wrong type raises :class:`~nuclei_core.errors.InputTypeError` (a ``TypeError``);
* a wrong shape or value raises :class:`~nuclei_core.errors.InputError` (a ``ValueError``).

The label-image contract, shared by post-processing, measuring, drawing and the
metrics: an integer array ``(H, W)``, not empty, 0 = background, every other
(non-negative) value one nucleus. :func:`check_label_image` holds functions to it
as it is; :func:`as_label_image` first converts what the metrics accept (lists,
bool masks, floats that hold whole numbers) to ``int64``.

Examples
--------
>>> check_int(3, "min_size", minimum=0)
3
>>> check_int(-1, "min_size", minimum=0)
Traceback (most recent call last):
...
nuclei_core.errors.InputError: min_size must be at least 0, got -1
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from nuclei_core.errors import InputError, InputTypeError

__all__ = [
    "as_image",
    "as_label_image",
    "as_rgb_uint8",
    "check_array",
    "check_choice",
    "check_colour",
    "check_dict",
    "check_finite",
    "check_fraction",
    "check_int",
    "check_label_image",
    "check_name",
    "check_optional_int",
    "check_optional_path",
    "check_optional_str",
    "check_positive",
    "check_same_shape",
]

_LARGEST_LABEL = np.iinfo(np.int64).max


# --------------------------------------------------------------------------- arrays


def _to_array(value: Any, name: str) -> np.ndarray:
    """``np.asarray(value)``, refusing text and what numpy cannot convert."""
    if isinstance(value, (str, bytes)):
        raise InputTypeError(f"{name} must be an array, got {type(value).__name__}")
    try:
        return np.asarray(value)
    except (TypeError, ValueError):
        raise InputTypeError(
            f"{name} cannot be converted to a numpy array ({type(value).__name__})"
        ) from None


def check_array(value: Any, name: str) -> np.ndarray:
    """A numpy array of real numbers or booleans, not empty.

    Examples
    --------
    >>> check_array(np.zeros(2), "mask").shape
    (2,)
    """
    if not isinstance(value, np.ndarray):
        raise InputTypeError(f"{name} must be a numpy array, got {type(value).__name__}")
    if value.dtype.kind not in "biuf":
        raise InputTypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
    if value.size == 0:
        raise InputError(f"{name} must not be empty, got shape {value.shape}")
    return value


def check_finite(array: np.ndarray, name: str) -> np.ndarray:
    """An array without NaN or infinity (checked without a full-size copy).

    Examples
    --------
    >>> check_finite(np.array([np.nan]), "image")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: image must not contain NaN or infinite values
    """
    # min() and max() propagate NaN, and an infinity is its own min or max.
    if array.dtype.kind == "f" and not (np.isfinite(array.min()) and np.isfinite(array.max())):
        raise InputError(f"{name} must not contain NaN or infinite values")
    return array


def as_image(value: Any, name: str = "image") -> np.ndarray:
    """An image as an array: numeric, ``(H, W)`` or ``(H, W, 3)``, not empty.

    Examples
    --------
    >>> as_image([[0, 1], [2, 3]]).shape
    (2, 2)
    """
    array = _to_array(value, name)
    if array.dtype.kind not in "buif":
        raise InputTypeError(f"{name} must be numeric, got dtype {array.dtype}")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise InputError(f"{name} must have shape (H, W) or (H, W, 3), got {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{name} has zero size {array.shape}")
    return array


def as_rgb_uint8(image: Any, name: str) -> np.ndarray:
    """A display image as ``uint8 (H, W, 3)``; grey ``(H, W)`` is stacked to three channels.

    Examples
    --------
    >>> as_rgb_uint8(np.zeros((2, 2), np.uint8), "image").shape
    (2, 2, 3)
    """
    if not isinstance(image, np.ndarray):
        raise InputTypeError(f"{name} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InputTypeError(
            f"{name} must be uint8 (see preprocess.to_display_rgb), got {image.dtype}"
        )
    if image.ndim == 2:
        return np.stack([image, image, image], axis=-1)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{name} must be (H, W) or (H, W, 3), got shape {image.shape}")
    return image


def check_same_shape(
    array: np.ndarray, name: str, shape: tuple[int, ...], reference: str = "labels"
) -> np.ndarray:
    """An array whose first two dimensions are ``shape`` (the shape of ``reference``).

    Examples
    --------
    >>> check_same_shape(np.zeros((2, 3)), "image", (2, 2))
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: image has shape (2, 3) but labels has shape (2, 2)
    """
    if array.shape[:2] != tuple(shape):
        raise InputError(f"{name} has shape {array.shape[:2]} but {reference} has shape {shape}")
    return array


# --------------------------------------------------------------------------- label images


def _check_label_values(array: np.ndarray, name: str) -> None:
    """The shape and values of the label-image contract (any real dtype)."""
    if array.ndim != 2:
        raise InputError(f"{name} must be a 2-D label image (H, W), got shape {array.shape}")
    if array.size == 0:
        raise InputError(f"{name} must not be empty, got shape {array.shape}")
    if array.dtype.kind == "f":
        check_finite(array, name)
        if not np.all(array == np.floor(array)):
            raise InputError(f"{name} contains non-integer values; labels must be whole numbers")
    if array.dtype.kind in "if":
        smallest = array.min()
        if smallest < 0:
            raise InputError(
                f"{name} has negative labels (minimum {smallest}); labels must be >= 0"
            )
    if array.dtype.kind == "f" or array.dtype == np.uint64:
        if array.max() >= _LARGEST_LABEL:
            raise InputError(f"{name} has labels that are too large (maximum {array.max()})")


def check_label_image(labels: Any, name: str = "labels") -> np.ndarray:
    """A label image as it is: integer numpy array ``(H, W)``, not empty, non-negative.

    Examples
    --------
    >>> check_label_image(np.zeros((2, 2), np.int32)).dtype
    dtype('int32')
    >>> check_label_image(np.zeros((2, 2)))
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputTypeError: labels must have an integer dtype, got float64
    """
    if not isinstance(labels, np.ndarray):
        raise InputTypeError(f"{name} must be a numpy array, got {type(labels).__name__}")
    if labels.dtype.kind not in "iu":
        raise InputTypeError(f"{name} must have an integer dtype, got {labels.dtype}")
    _check_label_values(labels, name)
    return labels


def as_label_image(value: Any, name: str = "labels") -> np.ndarray:
    """A label image converted to ``int64``, from an array-like of integers, bools or floats.

    A bool array is a label image with at most one nucleus; floats must hold whole
    numbers. The result is held to the contract of :func:`check_label_image`.

    Examples
    --------
    >>> as_label_image([[0.0, 2.0]], "true_labels")
    array([[0, 2]])
    >>> as_label_image([[-1, 2]], "pred_labels")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: pred_labels has negative labels (minimum -1); labels must be >= 0
    """
    array = _to_array(value, name)
    if array.dtype.kind not in "biuf":
        raise InputTypeError(f"{name} must have an integer or bool dtype, got {array.dtype}")
    _check_label_values(array, name)
    return array.astype(np.int64, copy=False)


# --------------------------------------------------------------------------- numbers


def check_int(value: Any, name: str, minimum: int | None = None) -> int:
    """An integer (numpy integers too, not a bool), at least ``minimum`` when given.

    Examples
    --------
    >>> check_int(np.int64(4), "run_id")
    4
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"{name} must be an integer, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_optional_int(value: Any, name: str, minimum: int | None = None) -> int | None:
    """``None`` or what :func:`check_int` accepts.

    Examples
    --------
    >>> check_optional_int(None, "pid") is None
    True
    """
    return None if value is None else check_int(value, name, minimum)


def _check_real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputTypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def check_fraction(value: Any, name: str) -> float:
    """A real number from 0 to 1 (NaN refused).

    Examples
    --------
    >>> check_fraction(0.5, "threshold")
    0.5
    """
    number = _check_real(value, name)
    if not 0.0 <= number <= 1.0:
        raise InputError(f"{name} must be between 0 and 1, got {value!r}")
    return number


def check_positive(value: Any, name: str) -> float:
    """A finite real number above 0.

    Examples
    --------
    >>> check_positive(0.25, "pixel_size")
    0.25
    """
    number = _check_real(value, name)
    if not (np.isfinite(number) and number > 0):
        raise InputError(f"{name} must be a positive number, got {value}")
    return number


def check_colour(colour: Any, name: str) -> tuple[int, int, int]:
    """An ``(r, g, b)`` triple of integers from 0 to 255.

    Examples
    --------
    >>> check_colour([255, 0, 255], "colour")
    (255, 0, 255)
    """
    if isinstance(colour, (str, bytes)) or not hasattr(colour, "__len__") or len(colour) != 3:
        raise InputTypeError(f"{name} must be an (r, g, b) triple, got {colour!r}")
    for component in colour:
        is_integer = isinstance(component, numbers.Integral) and not isinstance(component, bool)
        if not is_integer or not 0 <= component <= 255:
            raise InputError(f"{name} must hold integers from 0 to 255, got {colour!r}")
    red, green, blue = (int(component) for component in colour)
    return red, green, blue


# --------------------------------------------------------------------------- text and records


def check_name(value: Any, name: str) -> str:
    """A name: a string, stripped of surrounding blanks, not empty.

    Examples
    --------
    >>> check_name("  baseline ", "name")
    'baseline'
    >>> check_name(" ", "new_name")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: new_name is empty
    """
    if not isinstance(value, str):
        raise InputTypeError(f"{name} must be a str, got {type(value).__name__}")
    cleaned = value.strip()
    if not cleaned:
        raise InputError(f"{name} is empty")
    return cleaned


def check_optional_str(value: Any, name: str) -> str | None:
    """``None`` or a string.

    Examples
    --------
    >>> check_optional_str("done", "message")
    'done'
    """
    if value is None or isinstance(value, str):
        return value
    raise InputTypeError(f"{name} must be a str, got {type(value).__name__}")


def check_optional_path(value: Any, name: str) -> str | None:
    """``None``, or a string or path-like as text.

    Examples
    --------
    >>> from pathlib import PurePosixPath
    >>> check_optional_path(PurePosixPath("models/a.keras"), "model_path")
    'models/a.keras'
    """
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise InputTypeError(f"{name} must be a str or path, got {type(value).__name__}")


def check_dict(value: Any, name: str) -> dict[str, Any]:
    """A mapping as a plain dict; ``None`` gives ``{}``.

    Examples
    --------
    >>> check_dict(None, "params")
    {}
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputTypeError(f"{name} must be a dict, got {type(value).__name__}")
    return dict(value)


def check_choice(value: Any, name: str, choices: Collection[Any]) -> Any:
    """One of ``choices``.

    Examples
    --------
    >>> check_choice("done", "status", ("running", "done"))
    'done'
    """
    if value not in choices:
        listed = ", ".join(str(choice) for choice in choices)
        raise InputError(f"{name} must be one of {listed}, got {value!r}")
    return value
