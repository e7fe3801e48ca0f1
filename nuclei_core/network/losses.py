"""Training loss and per-epoch metrics for the network's two or three output channels.

Channel 0 of targets and predictions is the foreground (nucleus) mask,
channel 1 the nucleus boundary, and an optional channel 2 the normalised
distance map (a fraction, a soft target). The loss is binary cross-entropy plus
soft Dice on the first two channels, and the distance map's cross-entropy over
the nuclei's pixels; the metrics (pixel accuracy, foreground IoU,
Dice at probability 0.5) judge channel 0 only, the semantic mask users see.
All are registered with Keras so ``.keras`` files load with ``safe_mode=True``.
"""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "nuclei_core"


def _soft_dice(y_true, y_pred, smooth: float = 1.0):
    intersection = ops.sum(y_true * y_pred)
    return (2.0 * intersection + smooth) / (ops.sum(y_true) + ops.sum(y_pred) + smooth)


@keras.saving.register_keras_serializable(package=PACKAGE)
class NucleiLoss(keras.losses.Loss):
    """BCE and ``1 - Dice`` of foreground and boundary (boundary Dice weighted), and the distance.

    With a third channel (the normalised distance map, a fraction) the loss adds
    ``distance_weight`` times its BCE averaged over the true nuclei's pixels only,
    so that the few foreground pixels, where the map's peaks are, drive it.

    Examples
    --------
    >>> import numpy as np
    >>> target = np.zeros((1, 4, 4, 2), "float32"); target[0, 1:3, 1:3, 0] = 1
    >>> float(NucleiLoss()(target, target * 0.98 + 0.01)) < 0.1
    True
    """

    def __init__(
        self,
        boundary_weight: float = 0.5,
        distance_weight: float = 1.0,
        name: str = "nuclei_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.boundary_weight = boundary_weight
        self.distance_weight = distance_weight

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        y_pred = ops.clip(y_pred, 1e-6, 1.0 - 1e-6)
        bce = keras.losses.binary_crossentropy(y_true[..., :2], y_pred[..., :2])  # channel mean
        fg_true, fg_pred = y_true[..., 0], y_pred[..., 0]
        bd_true, bd_pred = y_true[..., 1], y_pred[..., 1]
        dice_loss = (1.0 - _soft_dice(fg_true, fg_pred)) + self.boundary_weight * (
            1.0 - _soft_dice(bd_true, bd_pred)
        )
        loss = ops.mean(bce, axis=(1, 2)) + dice_loss
        if y_pred.shape[-1] == 3:
            distance_bce = keras.losses.binary_crossentropy(y_true[..., 2:], y_pred[..., 2:])
            inside = ops.sum(distance_bce * fg_true, axis=(1, 2))
            loss += self.distance_weight * inside / (ops.sum(fg_true, axis=(1, 2)) + 1.0)
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "boundary_weight": self.boundary_weight,
            "distance_weight": self.distance_weight,
        }


class _ForegroundConfusion(keras.metrics.Metric):
    """Accumulates the foreground confusion matrix at probability 0.5."""

    def __init__(self, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        self.counts = self.add_variable(shape=(4,), initializer="zeros", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = ops.cast(y_true[..., 0] > 0.5, "float32")
        guess = ops.cast(y_pred[..., 0] > 0.5, "float32")
        tp = ops.sum(truth * guess)
        fp = ops.sum((1.0 - truth) * guess)
        fn = ops.sum(truth * (1.0 - guess))
        tn = ops.sum((1.0 - truth) * (1.0 - guess))
        self.counts.assign_add(ops.stack([tp, fp, fn, tn]))

    def reset_state(self):
        self.counts.assign(ops.zeros((4,)))


@keras.saving.register_keras_serializable(package=PACKAGE)
class PixelAccuracy(_ForegroundConfusion):
    """Share of pixels whose foreground/background call is right."""

    def __init__(self, name: str = "accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        return (self.counts[0] + self.counts[3]) / ops.maximum(ops.sum(self.counts), 1.0)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ForegroundIoU(_ForegroundConfusion):
    """Intersection over union of predicted and true foreground."""

    def __init__(self, name: str = "iou", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        tp, fp, fn = self.counts[0], self.counts[1], self.counts[2]
        return tp / ops.maximum(tp + fp + fn, 1.0)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ForegroundDice(_ForegroundConfusion):
    """Dice coefficient (F1 of pixels) of predicted and true foreground."""

    def __init__(self, name: str = "dice", **kwargs):
        super().__init__(name=name, **kwargs)

    def result(self):
        tp, fp, fn = self.counts[0], self.counts[1], self.counts[2]
        return 2.0 * tp / ops.maximum(2.0 * tp + fp + fn, 1.0)


def training_metrics() -> list[keras.metrics.Metric]:
    """The metrics logged every epoch: ``accuracy``, ``iou``, ``dice``."""
    return [PixelAccuracy(), ForegroundIoU(), ForegroundDice()]
