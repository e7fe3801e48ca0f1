"""nuclei_core: the engine of the nuclei segmentation dashboard.

Reading microscopy images and datasets (:mod:`nuclei_core.io`), the U-Net
(:mod:`nuclei_core.model`), training (:mod:`nuclei_core.train`), prediction
(:mod:`nuclei_core.predict`), nuclei instances and measurements
(:mod:`nuclei_core.instances`), metrics (:mod:`nuclei_core.metrics`) and the
run registry (:mod:`nuclei_core.registry`).  Nothing here imports Streamlit,
and importing the package does not import TensorFlow: the modules that need
it import it themselves.
"""

from nuclei_core.errors import NucleiError

__version__ = "1.0.0"

__all__ = ["NucleiError", "__version__"]
