"""Running a model on images of any size: padding, tiling, test-time flips.

:func:`predict_probabilities` turns one model input (``float32 (H, W, 3)``,
see :func:`nuclei_core.segmentation.preprocess.to_model_input`) into probabilities ``(H, W, 2)``
(foreground, boundary; ``(H, W, 3)`` with a distance map, see
:mod:`nuclei_core.network.model`). Images larger than ``tile_size`` are predicted in
overlapping tiles whose outputs are blended with a smooth window, so memory
stays bounded and there are no seams. :func:`predict_many` batches images of
equal size together for throughput.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from nuclei_core.errors import ConfigError, InputTypeError
from nuclei_core.network.runtime import backend_of

SIZE_MULTIPLE = 32  # a multiple of every supported architecture's 2**depth
DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 64


def _inference_function(model):
    """A compiled forward pass, cached on the model (one trace for any input size).

    An OpenVINO model or a package from elsewhere (:mod:`nuclei_core.network.runtime`)
    brings its own forward pass
    (looked up by name, not class: a module reload in a running app makes new classes).
    """
    if backend_of(model) != "tensorflow":
        return model.predict_batch
    function = getattr(model, "_nuclei_inference", None)
    if function is None:
        import tensorflow as tf

        @tf.function(
            input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
            reduce_retracing=True,
        )
        def function(batch):
            return model(batch, training=False)

        model._nuclei_inference = function
    return function


def _pad_amounts(size: int, multiple: int, minimum: int = 0) -> int:
    target = max(minimum, -(-size // multiple) * multiple)
    return target - size


def _pad(image: np.ndarray, pad_h: int, pad_w: int) -> np.ndarray:
    if not pad_h and not pad_w:
        return image
    mode = "reflect" if min(image.shape[:2]) > 1 else "edge"
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)


def _run(model, batch: np.ndarray, tta: bool) -> np.ndarray:
    """Forward pass of a batch ``(N, H, W, 3)``; with ``tta`` the mean over four flips."""
    forward = _inference_function(model)
    if not tta:
        return np.asarray(forward(batch))
    total = np.asarray(forward(batch)).copy()
    for flip_axes in ((2,), (1,), (1, 2)):
        output = np.asarray(forward(np.ascontiguousarray(np.flip(batch, axis=flip_axes))))
        total += np.flip(output, axis=flip_axes)
    return total / 4.0


def _check_input(model_input) -> np.ndarray:
    if not isinstance(model_input, np.ndarray):
        raise InputTypeError(f"model_input must be a numpy array, got {type(model_input).__name__}")
    if model_input.ndim != 3 or model_input.shape[-1] != 3:
        raise InputTypeError(f"model_input must have shape (H, W, 3), got {model_input.shape}")
    return np.asarray(model_input, np.float32)


def _ramp(size: int, overlap: int) -> np.ndarray:
    """1-D tile weights: 1 inside, a raised-cosine ramp over ``overlap`` at both ends.

    Examples
    --------
    >>> _ramp(6, 2).astype(float).round(2).tolist()
    [0.15, 0.85, 1.0, 1.0, 0.85, 0.15]
    """
    ramp = np.ones(size, np.float32)
    if overlap > 0:
        positions = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        edge = 0.5 - 0.5 * np.cos(np.pi * positions)
        ramp[:overlap] = edge
        ramp[-overlap:] = edge[::-1]
    return ramp


def tile_plan(length: int, tile_size: int, overlap: int) -> tuple[int, list[int]]:
    """Tile length and start of each tile along one side of ``length`` pixels.

    As few tiles as tiles of ``tile_size`` would need, each as short as covering the
    side allows (a multiple of 32, at most ``tile_size``), so that an image just over
    the tile size costs little more than its own pixels: 1,152 pixels in tiles of
    1,024 overlapping by 64 take two tiles of 608, not two of 1,024. Tiles start on
    multiples of 32, so each sees the pooling grid of the whole image (a U-Net is not
    shift-invariant); ``length`` is a multiple of 32.

    Examples
    --------
    >>> tile_plan(1152, 1024, 64)
    (608, [0, 544])
    >>> tile_plan(320, 128, 16)
    (128, [0, 96, 192])
    """
    count = max(1, math.ceil((length - overlap) / (tile_size - overlap)))
    shortest = math.ceil((length + (count - 1) * overlap) / count)
    tile = min(tile_size, -(-shortest // SIZE_MULTIPLE) * SIZE_MULTIPLE)
    step = max(SIZE_MULTIPLE, (tile - overlap) // SIZE_MULTIPLE * SIZE_MULTIPLE)
    starts = list(range(0, max(1, length - tile + 1), step))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return tile, starts


def _overlap_of(tile: int, starts: list[int]) -> int:
    """Ramp length of tiles at ``starts``: their least overlap, at most half a tile."""
    if len(starts) < 2:
        return 0
    return min(tile - (starts[1] - starts[0]), tile // 2)


def predict_probabilities(
    model,
    model_input: np.ndarray,
    *,
    tile_size: int = DEFAULT_TILE,
    overlap: int | None = None,
    tta: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Foreground and boundary probabilities of one image, any size.

    Parameters
    ----------
    model : keras.Model
        A two-output segmentation model (see :mod:`nuclei_core.network.model`).
    model_input : ndarray
        ``float32 (H, W, 3)`` from :func:`nuclei_core.segmentation.preprocess.to_model_input`.
    tile_size : int
        Images with a side above this are predicted in overlapping tiles at most this
        size (a multiple of 32; :func:`tile_plan`).
    overlap : int, optional
        Least number of pixels shared by neighbouring tiles, blended with a cosine
        window (default: 64, or ``tile_size // 8`` for tiles under 512). Tiles start
        on multiples of 32, so the real overlap can be larger.
    tta : bool
        Average over horizontal/vertical flips (4 passes).
    progress : callable, optional
        Called as ``progress(done, total)`` after each tile.

    Returns
    -------
    ndarray
        ``float32 (H, W, 2)`` in [0, 1].
    """
    image = _check_input(model_input)
    if tile_size < 64 or tile_size % SIZE_MULTIPLE:
        raise ConfigError(
            f"tile_size must be a multiple of {SIZE_MULTIPLE} and >= 64, got {tile_size}"
        )
    if overlap is None:
        overlap = min(DEFAULT_OVERLAP, tile_size // 8)
    if not 0 <= overlap < tile_size // 4:
        raise ConfigError(f"overlap must be in [0, {tile_size // 4}), got {overlap}")
    height, width = image.shape[:2]
    if max(height, width) <= tile_size:
        padded = _pad(
            image, _pad_amounts(height, SIZE_MULTIPLE), _pad_amounts(width, SIZE_MULTIPLE)
        )
        output = _run(model, padded[None], tta)[0, :height, :width]
        if progress:
            progress(1, 1)
        return np.ascontiguousarray(output)
    padded = _pad(image, _pad_amounts(height, SIZE_MULTIPLE), _pad_amounts(width, SIZE_MULTIPLE))
    tile_height, tops = tile_plan(padded.shape[0], tile_size, overlap)
    tile_width, lefts = tile_plan(padded.shape[1], tile_size, overlap)
    # The blending ramp spans the whole overlap (tiles may overlap more than asked).
    window = np.outer(
        _ramp(tile_height, _overlap_of(tile_height, tops)),
        _ramp(tile_width, _overlap_of(tile_width, lefts)),
    )[..., None]
    total = None  # the model's channel count is known after the first tile
    weights = np.zeros(padded.shape[:2] + (1,), np.float32)
    tiles = [(top, left) for top in tops for left in lefts]
    for done, (top, left) in enumerate(tiles, start=1):
        tile = padded[top : top + tile_height, left : left + tile_width]
        output = _run(model, tile[None], tta)[0]
        if total is None:
            total = np.zeros(padded.shape[:2] + output.shape[-1:], np.float32)
        total[top : top + tile_height, left : left + tile_width] += output * window
        weights[top : top + tile_height, left : left + tile_width] += window
        if progress:
            progress(done, len(tiles))
    # Every pixel has a positive weight; at image corners it is as small as 1e-8.
    total /= np.maximum(weights, np.finfo(np.float32).tiny)
    return np.ascontiguousarray(total[:height, :width])


def predict_many(
    model,
    model_inputs: Sequence[np.ndarray],
    *,
    batch_size: int = 8,
    tta: bool = False,
    tile_size: int = DEFAULT_TILE,
    progress: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    """Probabilities for many images; images of equal size run in batches.

    Examples
    --------
    >>> from nuclei_core.network.model import ModelConfig, build_unet
    >>> model = build_unet(ModelConfig(depth=2, base_filters=4))
    >>> images = [np.zeros((32, 32, 3), np.float32), np.zeros((40, 24, 3), np.float32)]
    >>> [p.shape for p in predict_many(model, images)]
    [(32, 32, 2), (40, 24, 2)]
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    images = [_check_input(image) for image in model_inputs]
    results: list[np.ndarray | None] = [None] * len(images)
    by_shape: dict[tuple, list[int]] = {}
    for index, image in enumerate(images):
        if max(image.shape[:2]) > tile_size:
            results[index] = predict_probabilities(model, image, tile_size=tile_size, tta=tta)
        else:
            by_shape.setdefault(image.shape, []).append(index)
    done = sum(result is not None for result in results)
    for shape, indices in by_shape.items():
        pad_h, pad_w = _pad_amounts(shape[0], SIZE_MULTIPLE), _pad_amounts(shape[1], SIZE_MULTIPLE)
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = np.stack([_pad(images[index], pad_h, pad_w) for index in chunk])
            outputs = _run(model, batch, tta)
            for index, output in zip(chunk, outputs, strict=True):
                results[index] = np.ascontiguousarray(output[: shape[0], : shape[1]])
            done += len(chunk)
            if progress:
                progress(done, len(images))
    return results
