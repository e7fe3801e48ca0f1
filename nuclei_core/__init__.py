"""nuclei_core: the engine of the nuclei segmentation dashboard.

The few names a notebook needs are here, imported on first use (importing the
package does not import TensorFlow)::

    import nuclei_core as nc

    model = nc.load_model("models/default.keras")          # the Keras model
    image = nc.read_image("sample_images/inputs/fluo_01.png")
    result = nc.segment_image(model, image)                # the image as it is
    result.count, result.table.head()
    # as the app and the CLI run it: the nucleus size estimated from each image
    result = nc.segment_image(model, image, nc.SegmentOptions.for_model("models/default.keras"))
    nc.evaluate_labels(true_labels, result.labels).dsb_score

Everything else lives in a module named after what it holds; ``docs/ARCHITECTURE.md``
has the table. Nothing here imports Streamlit.
"""

import importlib
import os

# TensorFlow's C++ start-up logs an error-level line on every machine without a GPU
# ("failed call to cuInit"); level 3 keeps the terminal for real problems. Set the
# variable yourself to see TensorFlow's logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The engine's networks are Keras on TensorFlow. bioimageio.core (the BioImage Model Zoo
# packages, nuclei_core.sharing) sets KERAS_BACKEND to its own default, "torch", unless it is
# set already, for this process and every process started from it.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from nuclei_core.errors import NucleiError  # noqa: E402

__version__ = "1.0.0"

_LAZY_NAMES = {
    "read_image": "nuclei_core.io.imread",
    "load_model": "nuclei_core.network.model",
    "load_inference_model": "nuclei_core.network.runtime",
    "segment_image": "nuclei_core.segmentation.segment",
    "SegmentOptions": "nuclei_core.segmentation.options",
    "evaluate_labels": "nuclei_core.evaluation.metrics",
    "evaluate_samples": "nuclei_core.evaluation.evaluate",
}

__all__ = ["NucleiError", "__version__", *_LAZY_NAMES]


def __getattr__(name: str):
    """Import a notebook name's module on first use (PEP 562)."""
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'nuclei_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
