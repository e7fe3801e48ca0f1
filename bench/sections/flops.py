"""FLOPs and FLOP/s: a model's work per image, the machine's peak, the share a model achieves.

* each model's FLOPs per image, counted from the convolutions and matrix products of
  its traced graph (:func:`conv_flops`);
* the machine's float32 peak, a large TensorFlow matmul (:func:`matmul_peak`);
* the FLOP/s a model achieves at its measured images/s, as a share of that peak
  (:func:`achieved_flops`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def _shape(tensor) -> list[int]:
    return [int(value) for value in tensor.shape]


def op_flops(op) -> int:
    """FLOPs of one graph operation: convolutions and matrix products, else 0.

    ``2 * kh * kw * cin * cout * H * W`` for a convolution (``H, W`` its output
    size; the input size for a transpose convolution; ``cout = cin * multiplier``
    for a depthwise one) and ``2 * m * k * n`` for a matrix product.
    """
    if op.type == "Conv2D":
        kernel_h, kernel_w, channels_in, channels_out = _shape(op.inputs[1])
        _, height, width, _ = _shape(op.outputs[0])
    elif op.type == "Conv2DBackpropInput":  # transpose convolution
        kernel_h, kernel_w, channels_out, channels_in = _shape(op.inputs[1])
        _, height, width, _ = _shape(op.inputs[2])
    elif op.type == "DepthwiseConv2dNative":
        kernel_h, kernel_w, channels_in, multiplier = _shape(op.inputs[1])
        _, height, width, _ = _shape(op.outputs[0])
        channels_out = multiplier
    elif op.type in ("MatMul", "BatchMatMulV2"):
        left, right = _shape(op.inputs[0]), _shape(op.inputs[1])
        return 2 * int(np.prod(left)) * right[-1]
    else:
        return 0
    return 2 * kernel_h * kernel_w * channels_in * channels_out * height * width


def conv_flops(model, size: int = 256) -> dict:
    """FLOPs of one forward pass on a ``size`` x ``size`` image, from the convolutions.

    Traces the Keras model (or the ``.keras`` file ``model`` names) once for a fixed
    input shape and adds up :func:`op_flops` over the graph. Element-wise work (batch
    norm, activations, additions) is not counted.
    """
    import tensorflow as tf

    if isinstance(model, str | Path):
        from nuclei_core.network.model import load_model

        model = load_model(model)

    function = tf.function(lambda batch: model(batch, training=False))
    graph = function.get_concrete_function(tf.TensorSpec((1, size, size, 3), tf.float32)).graph
    totals: dict[str, int] = {}
    for op in graph.get_operations():
        flops = op_flops(op)
        if flops:
            totals[op.type] = totals.get(op.type, 0) + flops
    return {"size": size, "flops": int(sum(totals.values())), "by_op": totals}


def matmul_peak(size: int = 4096, repeats: int = 5) -> dict:
    """Best float32 ``size x size @ size x size`` matmul throughput (the machine's peak)."""
    import tensorflow as tf

    left = tf.random.stateless_normal((size, size), seed=(1, 2))
    right = tf.random.stateless_normal((size, size), seed=(3, 4))
    product = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)))
    product(left, right).numpy()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        product(left, right).numpy()
        times.append(time.perf_counter() - started)
    best = min(times)
    return {
        "n": size,
        "seconds": [round(seconds, 4) for seconds in times],
        "best_seconds": round(best, 4),
        "gflops_per_s": round(2 * size**3 / best / 1e9, 1),
    }


def achieved_flops(flops: dict, throughput: dict, peak_gflops: float | None) -> dict:
    """Each model's achieved GFLOP/s at 256 x 256 and its share of the machine's peak.

    Examples
    --------
    >>> achieved = achieved_flops({"default": {"flops": 2e9}},
    ...                           {"default": {"images_per_s": 25.0}}, 100.0)
    >>> achieved["default"]["gflops_per_s"], achieved["default"]["fraction_of_peak"]
    (50.0, 0.5)
    """
    achieved = {}
    for name, entry in throughput.items():
        per_image = flops.get(name, {}).get("flops")
        rate = entry.get("images_per_s")
        if per_image and rate and peak_gflops:
            achieved[name] = {
                "gflops_per_image": per_image / 1e9,
                "images_per_s": rate,
                "gflops_per_s": per_image * rate / 1e9,
                "fraction_of_peak": per_image * rate / 1e9 / peak_gflops,
            }
    return achieved
