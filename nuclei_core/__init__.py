"""nuclei_core: the engine of the nuclei segmentation dashboard.

Reading microscopy images and datasets (:mod:`nuclei_core.io`), the U-Net
(:mod:`nuclei_core.model`), training (:mod:`nuclei_core.train`), prediction
(:mod:`nuclei_core.predict`), nuclei instances and measurements
(:mod:`nuclei_core.instances`), metrics (:mod:`nuclei_core.metrics`) and the
run registry (:mod:`nuclei_core.registry`).  Nothing here imports Streamlit,
and importing the package does not import TensorFlow: the modules that need
it import it themselves.
"""

import os

# TensorFlow's C++ start-up logs an error-level line on every machine without a GPU
# ("failed call to cuInit"); level 3 keeps the terminal for real problems. Set the
# variable yourself to see TensorFlow's logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from nuclei_core.errors import NucleiError  # noqa: E402

__version__ = "1.0.0"

__all__ = ["NucleiError", "__version__"]
