"""Multi-channel and multi-page images: list their channels and planes, pick the nuclear one.

:func:`read_stack` reads a file into an :class:`ImageStack`, an array
``(planes, H, W, channels)`` whatever the file's order of axes: ImageJ and OME-TIFF
hyperstacks (``TZCYX``), channel-last (``YXS``) or channel-first TIFFs, and plain PNG /
JPEG images (one plane).  :func:`list_channels` and :func:`list_planes` name what is
there; :func:`select_image` gives the image to segment (one channel, and one plane or the
maximum projection of all planes); :func:`channel_images` gives every channel of that
plane for per-channel intensities.

Axes of a TIFF series (``tifffile``): ``C`` channels, ``S`` samples (the colours of an RGB
image, or channels stored last), ``Y``/``X`` the plane, anything else (``Z``, ``T`` ...) a
plane axis.  A generic page axis (``I``/``Q``, a TIFF without metadata) of 2 to 5 pages
is taken for channels, a longer one for planes.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import tifffile

from nuclei_core.errors import ImageReadError, InputError
from nuclei_core.io.imread import (
    ImageSource,
    check_size,
    fill_non_finite,
    is_tiff,
    pixel_budget,
    read_image,
    source_bytes,
)
from nuclei_core.io.metadata import PixelSize, tiff_pixel_size

__all__ = [
    "MAX_PROJECTION",
    "STACK_BUDGET_FACTOR",
    "ImageStack",
    "channel_images",
    "list_channels",
    "list_planes",
    "read_stack",
    "select_image",
]

MAX_PROJECTION = "max"
"""The ``plane`` that asks for the maximum projection of all planes."""
STACK_BUDGET_FACTOR = 16
"""A stack may hold this many times the pixel budget in all (planes x channels x H x W)."""
_GENERIC_PAGES = "IQ"
_COLOUR_NAMES = ("red", "green", "blue")


@dataclass(frozen=True)
class ImageStack:
    """An image file's pixels as ``data`` ``(planes, H, W, channels)`` and what they are.

    ``plane_axes`` names the plane axes (``"Z"``, ``"T"``, ``"TZ"``; ``""`` for one plane)
    and ``plane_sizes`` their lengths; ``colour`` says the channels are an RGB image's
    colours; ``notes`` holds what had to be fixed while reading (one line each).
    """

    data: np.ndarray
    name: str
    plane_axes: str = ""
    plane_sizes: tuple = ()
    colour: bool = False
    pixel_size: PixelSize = PixelSize(None)
    notes: tuple = ()

    @property
    def n_planes(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.data.shape[-1])

    @property
    def is_multichannel(self) -> bool:
        """Several channels that are not the colours of an RGB image."""
        return self.n_channels > 1 and not self.colour


def _standard_dtype(array: np.ndarray, label: str) -> np.ndarray:
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype.kind not in "uif":
        raise ImageReadError(f"{label}: unsupported pixel type {array.dtype}")
    return array


def _channel_axis(axes: str, shape: tuple) -> int | None:
    for letter in "CS":
        if letter in axes:
            return axes.index(letter)
    for index, letter in enumerate(axes):
        if letter in _GENERIC_PAGES and 2 <= shape[index] <= 5:
            return index
    return None


def _alpha_samples(page) -> int:
    extra = page.tags.get("ExtraSamples")
    if extra is None:
        return 0
    values = extra.value if isinstance(extra.value, tuple) else (extra.value,)
    return sum(1 for value in values if int(value) in (1, 2))  # associated / unassociated alpha


def _tiff_stack(data: bytes, label: str, budget: int) -> ImageStack:
    with tifffile.TiffFile(io.BytesIO(data)) as tiff:
        if not tiff.series:
            raise ImageReadError(f"{label}: TIFF file has no pages")
        series = tiff.series[0]
        axes, shape = series.axes, tuple(series.shape)
        if "Y" not in axes or "X" not in axes:
            raise ImageReadError(f"{label}: unsupported TIFF axes {axes} {shape}")
        check_size(shape[axes.index("X")], shape[axes.index("Y")], label, budget)
        if int(np.prod(shape)) > STACK_BUDGET_FACTOR * budget:
            raise ImageReadError(
                f"{label}: stack {axes} {shape} holds {int(np.prod(shape)):,} values, over the "
                f"limit of {STACK_BUDGET_FACTOR * budget:,}"
            )
        array = series.asarray()
        page = series.pages[0] if series.pages else tiff.pages[0]
        photometric_rgb = page.photometric == tifffile.PHOTOMETRIC.RGB
        alpha = _alpha_samples(page)
        size = tiff_pixel_size(tiff)
    channel = _channel_axis(axes, shape)
    if channel is not None and "C" in axes and "S" in axes:
        raise ImageReadError(f"{label}: unsupported TIFF axes {axes} {shape}")
    order = [i for i, letter in enumerate(axes) if letter not in "YX" and i != channel]
    order += [axes.index("Y"), axes.index("X")] + ([channel] if channel is not None else [])
    array = np.transpose(array, order)
    plane_axes = "".join(axes[i] for i in order[: len(order) - 2 - (channel is not None)])
    plane_sizes = tuple(array.shape[: len(plane_axes)])
    height, width = array.shape[len(plane_axes) : len(plane_axes) + 2]
    array = array.reshape(int(np.prod(plane_sizes, dtype=int)), height, width, -1)
    if alpha and channel is not None and axes[channel] == "S" and array.shape[-1] > alpha:
        array = array[..., : array.shape[-1] - alpha]
    colour = photometric_rgb and array.shape[-1] == 3
    notes = ()
    generic = [i for i, letter in enumerate(axes) if letter in _GENERIC_PAGES]
    if generic:  # no metadata says what the pages are: say what they were taken for
        pages = shape[generic[0]]
        taken = "channels" if generic[0] == channel else "planes"
        notes = (f"{label}: multi-page TIFF with {pages} pages, read as {pages} {taken}",)
    plane_axes = "".join("P" if letter in _GENERIC_PAGES else letter for letter in plane_axes)
    return ImageStack(array, label, plane_axes, plane_sizes, colour, size, notes)


def read_stack(
    source: ImageSource, *, name: str | None = None, max_pixels: int | None = None
) -> ImageStack:
    """Read an image file with all its channels and planes.

    Parameters
    ----------
    source : str, Path, bytes or binary file object
        PNG, JPEG or TIFF (ImageJ, OME or plain; multi-page, multi-channel).
    name : str, optional
        Name used in messages.
    max_pixels : int, optional
        Largest plane (width x height), as for :func:`nuclei_core.io.imread.read_image`; the
        whole stack may hold :data:`STACK_BUDGET_FACTOR` times that.

    Raises
    ------
    ImageReadError
        Not a readable image, or over the pixel budget; the message names the file.

    Examples
    --------
    >>> buffer = io.BytesIO()
    >>> tifffile.imwrite(buffer, np.zeros((4, 2, 6, 5), np.uint16), imagej=True,
    ...                  metadata={"axes": "ZCYX"})
    >>> stack = read_stack(buffer.getvalue(), name="cells.tif")
    >>> stack.data.shape, stack.plane_axes, list_channels(stack)
    ((4, 6, 5, 2), 'Z', ['channel 0', 'channel 1'])
    """
    data, label = source_bytes(source, name)
    if not data:
        raise ImageReadError(f"{label}: file is empty")
    budget = pixel_budget(max_pixels)
    if not is_tiff(data):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image = read_image(data, name=label, max_pixels=budget)
        notes = tuple(str(item.message) for item in caught)
        colour = image.ndim == 3
        planes = image[None] if colour else image[None, ..., None]
        return ImageStack(planes, label, colour=colour, notes=notes)
    try:
        stack = _tiff_stack(data, label, budget)
    except ImageReadError:
        raise
    except Exception as error:  # tifffile raises many types for corrupt files
        raise ImageReadError(f"{label}: truncated or corrupt TIFF ({error})") from None
    array = _standard_dtype(stack.data, label)
    try:
        array, replaced = fill_non_finite(array)
    except InputError as error:
        raise ImageReadError(f"{label}: {error}") from None
    notes = stack.notes
    if replaced:
        notes += (f"{label}: {replaced} NaN/inf pixels set to the lowest value",)
    return ImageStack(
        np.ascontiguousarray(array),
        label,
        stack.plane_axes,
        stack.plane_sizes,
        stack.colour,
        stack.pixel_size,
        notes,
    )


def list_channels(stack: ImageStack) -> list[str]:
    """Names of the stack's channels: colours of an RGB image, else ``channel 0`` ...

    Examples
    --------
    >>> list_channels(ImageStack(np.zeros((1, 2, 2, 3)), "rgb.png", colour=True))
    ['red', 'green', 'blue']
    """
    if stack.colour:
        return list(_COLOUR_NAMES)
    return [f"channel {index}" for index in range(stack.n_channels)]


def list_planes(stack: ImageStack) -> list[str]:
    """Names of the stack's planes (``z 3``, ``t 1, z 0`` ...); one plane gives ``["plane 0"]``.

    Examples
    --------
    >>> list_planes(ImageStack(np.zeros((3, 2, 2, 1)), "z.tif", "Z", (3,)))
    ['z 0', 'z 1', 'z 2']
    """
    if not stack.plane_axes:
        return [f"plane {index}" for index in range(stack.n_planes)]
    letters = ["page" if axis == "P" else axis.lower() for axis in stack.plane_axes]
    names = []
    for index in np.ndindex(*stack.plane_sizes):
        names.append(", ".join(f"{letter} {i}" for letter, i in zip(letters, index, strict=True)))
    return names


def _plane_array(stack: ImageStack, plane) -> np.ndarray:
    """``(H, W, C)`` of one plane (an index) or of the maximum projection (``"max"``)."""
    if plane is None:
        plane = 0
    if isinstance(plane, str) and plane.strip().lower() == MAX_PROJECTION:
        return stack.data.max(axis=0)
    try:
        index = int(plane)
    except (TypeError, ValueError):
        raise InputError(f"{stack.name}: plane must be an index or 'max', got {plane!r}") from None
    if not 0 <= index < stack.n_planes:
        raise InputError(
            f"{stack.name}: no plane {index} (the image has {stack.n_planes} "
            f"plane{'s' if stack.n_planes != 1 else ''}: 0-{stack.n_planes - 1})"
        )
    return stack.data[index]


def select_image(stack: ImageStack, channel: int | None = None, plane=None) -> np.ndarray:
    """The image to segment: one channel of one plane (or of the maximum projection).

    Parameters
    ----------
    stack : ImageStack
        From :func:`read_stack`.
    channel : int, optional
        The nuclear channel (0 = first).  None: an RGB image stays in colour, a
        multi-channel image gives its first channel.
    plane : int or "max", optional
        Plane index (0 = first, the default) or ``"max"`` for the maximum projection.

    Returns
    -------
    ndarray
        ``(H, W)``, or ``(H, W, 3)`` for an RGB image without ``channel``.

    Raises
    ------
    InputError
        No such channel or plane; the message names the file and what it has.

    Examples
    --------
    >>> stack = ImageStack(np.arange(24).reshape(2, 2, 3, 2), "cells.tif", "Z", (2,))
    >>> select_image(stack, channel=1, plane="max").tolist()
    [[13, 15, 17], [19, 21, 23]]
    >>> select_image(stack, channel=2)
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: cells.tif: no channel 2 (the image has 2 channels: 0-1)
    """
    planes = _plane_array(stack, plane)
    if channel is None:
        return planes if stack.colour else planes[..., 0]
    try:
        index = int(channel)
    except (TypeError, ValueError):
        raise InputError(f"{stack.name}: channel must be an index, got {channel!r}") from None
    if not 0 <= index < stack.n_channels:
        count = stack.n_channels
        raise InputError(
            f"{stack.name}: no channel {index} (the image has {count} "
            f"channel{'s' if count != 1 else ''}: 0-{count - 1})"
        )
    return planes[..., index]


def channel_images(stack: ImageStack, plane=None) -> np.ndarray:
    """Every channel of one plane (or of the maximum projection): ``(H, W, C)``.

    Examples
    --------
    >>> channel_images(ImageStack(np.ones((3, 4, 5, 2)), "z.tif", "Z", (3,)), "max").shape
    (4, 5, 2)
    """
    return _plane_array(stack, plane)
