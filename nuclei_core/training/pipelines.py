"""The ``tf.data`` pipelines of a run: augmented training crops, whole validation images.

:func:`training_dataset` turns the :class:`~nuclei_core.training.data.TrainingArray`
of a run into an endless stream of augmented crops (rescaling that shows nuclei
from 0.35 to 2 times their size, flips, rotations, HED stain jitter with weak
haematoxylin, intensity jitter, blur and JPEG artefacts). Every random draw is
stateless, keyed by the run's seed and the crop's index (:func:`crop_order`), so a
resumed run draws exactly what a single run would have drawn next.
:func:`validation_dataset` gives whole, padded validation images.
TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from nuclei_core.training.data import TrainingArray, pad_to  # noqa: F401 (doctests)

# Augmentation (docs/MODEL.md says what each was measured to do).
NUCLEUS_SCALES = (0.35, 2.0)  # nuclei seen at this share of their size (log-uniform): 20x and below
STAIN_JITTER = 0.1  # HED optical densities scaled by 1 +- this and shifted by +- half of it
PALE_CHANCE, PALE_HAEMATOXYLIN = 0.3, (0.3, 0.8)  # weak haematoxylin: this share of it is kept
GAMMA, CONTRAST = (0.6, 1.5), (0.5, 1.3)  # log-uniform gamma; contrast around the mean
BLUR_CHANCE, BLUR_SHRINK = 0.2, (0.4, 0.8)  # blur: shrink by this factor and back
JPEG_CHANCE, JPEG_QUALITY = 0.2, (30, 90)  # JPEG compression at a quality in this range

# --------------------------------------------------------------------------- augmentation

# Stain vectors of haematoxylin, eosin and DAB (Ruifrok and Johnston, as skimage.color).
_RGB_FROM_HED = np.array(
    [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=np.float32
)
_RGB_FROM_HED /= np.linalg.norm(_RGB_FROM_HED, axis=1, keepdims=True)


def _stain_jitter(image, seeds):
    """Random HED stain change of an inverted colour model input (Tellez et al. 2018).

    The input is ``1 - rgb``; the optical densities of haematoxylin, eosin and
    DAB are each scaled by ``1 +- STAIN_JITTER`` and shifted by
    ``+- STAIN_JITTER / 2``; one crop in ``PALE_CHANCE`` has its haematoxylin
    weakened to :data:`PALE_HAEMATOXYLIN` of it (a weakly stained section, the
    look of pale brightfield tissue); then hue and saturation are jittered.
    ``seeds`` is a ``(5, 2)`` tensor of stateless seeds.
    """
    import tensorflow as tf

    rgb_from_hed = tf.constant(_RGB_FROM_HED)
    hed_from_rgb = tf.constant(np.linalg.inv(_RGB_FROM_HED).astype(np.float32))
    density = -tf.math.log(tf.clip_by_value(1.0 - image, 1e-3, 1.0))
    hed = tf.tensordot(density, hed_from_rgb, axes=1)
    scale = tf.random.stateless_uniform([3], seeds[0], 1 - STAIN_JITTER, 1 + STAIN_JITTER)
    shift = tf.random.stateless_uniform([3], seeds[1], -STAIN_JITTER / 2, STAIN_JITTER / 2)
    pale = tf.random.stateless_uniform([2], seeds[2])
    weaken = tf.where(
        pale[0] < PALE_CHANCE,
        PALE_HAEMATOXYLIN[0] + pale[1] * (PALE_HAEMATOXYLIN[1] - PALE_HAEMATOXYLIN[0]),
        1.0,
    )
    scale = scale * tf.stack([weaken, 1.0, 1.0])
    density = tf.maximum(tf.tensordot(hed * scale + shift, rgb_from_hed, axes=1), 0.0)
    rgb = tf.exp(-density)
    rgb = tf.image.stateless_random_hue(rgb, 0.05, seeds[3])
    rgb = tf.image.stateless_random_saturation(rgb, 0.7, 1.3, seeds[4])
    return 1.0 - tf.clip_by_value(rgb, 0.0, 1.0)


def _scan_artefacts(image, seeds):
    """Blur (a resize down and back up) and JPEG compression, each on some crops.

    The softness and block artefacts of brightfield slide scans; ``seeds`` is
    a ``(3, 2)`` tensor of stateless seeds.
    """
    import tensorflow as tf

    crop = tf.shape(image)[0]
    draw = tf.random.stateless_uniform([3], seeds[0])
    factor = BLUR_SHRINK[0] + draw[1] * (BLUR_SHRINK[1] - BLUR_SHRINK[0])
    small = tf.maximum(tf.cast(tf.cast(crop, tf.float32) * factor, tf.int32), 1)
    blurred = tf.image.resize(tf.image.resize(image, [small, small]), [crop, crop])
    image = tf.where(draw[0] < BLUR_CHANCE, blurred, image)
    compressed = tf.image.stateless_random_jpeg_quality(image, *JPEG_QUALITY, seeds[1])
    image = tf.where(draw[2] < JPEG_CHANCE, compressed, image)
    return tf.clip_by_value(image, 0.0, 1.0)


def _augment(image, target, colour, crop: int, seed):
    """Random rescaled crop, flips, rotation, stain, intensity and scan artefacts (tf ops).

    The crop covers ``crop / scale`` pixels (scale log-uniform in
    :data:`NUCLEUS_SCALES`, the crop at most the image) and is resized to
    ``crop``, so nuclei are seen from 0.35 to twice their size. Every random
    draw is stateless, from ``seed`` (a ``(2,)`` int tensor): the same seed
    gives the same crop, which is what makes a resumed run draw what a single
    run would have drawn.
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, num=16)
    low, high = (math.log(scale) for scale in NUCLEUS_SCALES)
    scale = tf.exp(tf.random.stateless_uniform([], seeds[0], low, high))
    shape = tf.shape(image)
    size = tf.minimum(tf.cast(tf.round(crop / scale), tf.int32), tf.minimum(shape[0], shape[1]))
    channels = target.shape[-1]
    stacked = tf.concat([image, target], axis=-1)
    patch = tf.image.stateless_random_crop(stacked, tf.stack([size, size, 3 + channels]), seeds[1])
    patch = tf.image.resize(patch, [crop, crop], method="bilinear")
    patch = tf.image.stateless_random_flip_left_right(patch, seeds[2])
    patch = tf.image.stateless_random_flip_up_down(patch, seeds[3])
    turns = tf.random.stateless_uniform([], seeds[4], 0, 4, dtype=tf.int32)
    patch = tf.image.rot90(patch, k=turns)
    # Foreground and boundary stay binary; a distance map is a fraction and stays one.
    image, masks = patch[..., :3], tf.cast(patch[..., 3:5] > 0.5, tf.float32)
    target = tf.concat([masks, patch[..., 5:]], axis=-1)
    image = tf.clip_by_value(image, 0.0, 1.0)
    if colour:
        image = _stain_jitter(image, seeds[5:10])
    draws = tf.random.stateless_uniform([4], seeds[10])
    if draws[0] < 0.2:
        image = tf.repeat(tf.reduce_mean(image, axis=-1, keepdims=True), 3, axis=-1)
    gamma = tf.exp(math.log(GAMMA[0]) + draws[1] * math.log(GAMMA[1] / GAMMA[0]))
    image = image**gamma
    contrast = CONTRAST[0] + draws[2] * (CONTRAST[1] - CONTRAST[0])
    brightness = (draws[3] - 0.5) * 0.2
    mean = tf.reduce_mean(image)
    image = tf.clip_by_value((image - mean) * contrast + mean + brightness, 0.0, 1.0)
    image = _scan_artefacts(image, seeds[11:14])
    return tf.ensure_shape(image, [crop, crop, 3]), tf.ensure_shape(target, [crop, crop, channels])


# --------------------------------------------------------------------------- pipelines


def crop_order(n_crops: int, seed: int, start: int = 0) -> Iterator[int]:
    """The endless sequence of crop slots from crop ``start`` on: one permutation per pass.

    Pass ``p`` over the ``n_crops`` slots is ``default_rng([seed, p])``'s
    permutation, so the sequence from ``start`` is the tail of the sequence
    from 0, the property a resumed run relies on.

    Examples
    --------
    >>> whole = [slot for slot, _ in zip(crop_order(4, seed=0), range(10))]
    >>> tail = [slot for slot, _ in zip(crop_order(4, seed=0, start=6), range(4))]
    >>> tail == whole[6:]
    True
    """
    if n_crops < 1:
        raise ValueError(f"n_crops must be at least 1, got {n_crops}")
    index = start
    while True:
        pass_number, position = divmod(index, n_crops)
        permutation = np.random.default_rng([seed, pass_number]).permutation(n_crops)
        for slot in permutation[position:]:
            yield int(slot)
        index = (pass_number + 1) * n_crops


def training_dataset(arrays, crop: int, batch_size: int, seed: int, start: int = 0):
    """Endless ``tf.data`` pipeline of augmented crops from the cached arrays.

    ``start`` is the number of crops drawn before (a resumed run's epochs times
    steps times batch size): the pipeline then goes on with the crops, and the
    augmentation of each, that a single run would draw next.

    Returns
    -------
    dataset : tf.data.Dataset
        Batches of ``(images, targets)``, float32 ``(batch_size, crop, crop, 3)``
        and ``(batch_size, crop, crop, 2)``.
    crops : int
        Crops per pass over the arrays (the sum of their counts).

    Examples
    --------
    >>> image, targets = np.zeros((64, 64, 3), np.float32), np.zeros((64, 64, 2), np.float32)
    >>> array = TrainingArray(image, targets, count=2, colour=False)
    >>> dataset, crops = training_dataset([array], crop=32, batch_size=2, seed=0)
    >>> images, targets = next(iter(dataset))
    >>> tuple(images.shape), tuple(targets.shape), crops
    ((2, 32, 32, 3), (2, 32, 32, 2), 2)
    """
    import tensorflow as tf

    order = np.repeat(np.arange(len(arrays)), [array.count for array in arrays])
    channels = arrays[0].targets.shape[-1]

    def generate():
        for index, slot in enumerate(crop_order(len(order), seed, start), start=start):
            array = arrays[order[slot]]
            yield array.model_input, array.targets, array.colour, np.array([seed, index])

    signature = (
        tf.TensorSpec((None, None, 3), tf.float32),
        tf.TensorSpec((None, None, channels), tf.float32),
        tf.TensorSpec((), tf.bool),
        tf.TensorSpec((2,), tf.int64),
    )
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    dataset = dataset.map(
        lambda image, target, colour, crop_seed: _augment(image, target, colour, crop, crop_seed),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE), len(order)


def validation_dataset(arrays, multiple: int, replicas: int = 1):
    """Whole validation images, zero-padded to a size multiple, one per replica per batch.

    With several replicas (a distribution strategy) every batch holds one image per
    replica, zero-padded to the largest, and images are repeated to fill the last
    batch: a replica that gets an empty batch makes the evaluation step fail.

    Examples
    --------
    >>> image, targets = np.zeros((40, 50, 3), np.float32), np.zeros((40, 50, 2), np.float32)
    >>> array = TrainingArray(image, targets, count=1, colour=False)
    >>> [tuple(images.shape) for images, _ in validation_dataset([array], multiple=16)]
    [(1, 48, 64, 3)]
    """
    import tensorflow as tf

    padded = []
    for model_input, targets, *_ in arrays:
        height = -(-model_input.shape[0] // multiple) * multiple
        width = -(-model_input.shape[1] // multiple) * multiple
        padded.append((pad_to(model_input, height, width), pad_to(targets, height, width)))
    while padded and len(padded) % replicas:
        padded.append(padded[len(padded) % len(arrays)])

    channels = arrays[0].targets.shape[-1] if arrays else 2
    signature = (
        tf.TensorSpec((None, None, 3), tf.float32),
        tf.TensorSpec((None, None, channels), tf.float32),
    )
    dataset = tf.data.Dataset.from_generator(lambda: iter(padded), output_signature=signature)
    return dataset.padded_batch(replicas).cache().prefetch(tf.data.AUTOTUNE)
