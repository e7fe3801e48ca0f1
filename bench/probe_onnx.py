"""Probe: images/s of ONNX Runtime against OpenVINO on the default model.

Usage (ONNX Runtime is not a requirement of the project)::

    pip install onnxruntime tf2onnx onnx
    python -m bench.probe_onnx --model models/default.keras

Exports the Keras model to ONNX with ``tf2onnx``, then runs a batch of 8 x 256 x
256 through ONNX Runtime (CPU, float32) and OpenVINO (float32 and bfloat16)
in turn, several rounds interleaved so that a busy machine slows each alike,
and prints each runtime's images/s (best and median round) and the largest
difference of ONNX Runtime's probabilities from OpenVINO float32's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from nuclei_core.locations import default_model_path


def onnx_session(model_path: Path, threads: int):
    """An ONNX Runtime session of the Keras model, exported with ``tf2onnx``."""
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    from nuclei_core.network.model import load_model

    keras_model = load_model(model_path)
    spec = (tf.TensorSpec((None, None, None, 3), tf.float32, name="image"),)

    @tf.function(input_signature=spec)
    def forward(images):
        return keras_model(images, training=False)

    path = Path(tempfile.mkdtemp()) / "model.onnx"
    tf2onnx.convert.from_function(forward, input_signature=spec, opset=17, output_path=str(path))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        session = onnx_session(Path(args.model), threads=os.cpu_count() or 1)
    except ImportError as error:
        print(f"{error.name} is missing: pip install onnxruntime tf2onnx onnx", file=sys.stderr)
        return 2
    from nuclei_core.network.runtime import load_openvino

    batch = np.random.default_rng(0).random((8, 256, 256, 3), dtype=np.float32)
    input_name = session.get_inputs()[0].name
    openvino_f32 = load_openvino(args.model, "float32")
    openvino_bf16 = load_openvino(args.model, "bfloat16")
    runs = {
        "ONNX Runtime float32": lambda: session.run(None, {input_name: batch})[0],
        "OpenVINO float32": lambda: openvino_f32.predict_batch(batch),
        "OpenVINO bfloat16": lambda: openvino_bf16.predict_batch(batch),
    }
    difference = np.abs(runs["ONNX Runtime float32"]() - runs["OpenVINO float32"]()).max()
    seconds = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - started)
    for name, times in seconds.items():
        best, median = len(batch) / min(times), len(batch) / statistics.median(times)
        print(f"{name}: {best:.1f} images/s best, {median:.1f} median of {args.rounds}")
    print(f"largest |ONNX Runtime - OpenVINO float32| probability: {difference:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
