"""The peers as functions ``image -> labels``: the classical methods and StarDist's child process.

* two classical methods without learning: Otsu + watershed, and the hematoxylin
  channel + Otsu + watershed for H&E (Otsu on greyscale images);
* StarDist 2D, trained here (``python -m bench.stardist_peer``), run in a child process
  of its own (:class:`StarDistProcess`): it needs Keras 2 where this process runs Keras 3.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.tools.paths import STARDIST_MODEL
from nuclei_core.locations import PROJECT_ROOT
from nuclei_core.segmentation.classical import hematoxylin_labels, otsu_labels
from nuclei_core.segmentation.preprocess import is_colour, to_model_input

# --------------------------------------------------------------------------- classical methods


def otsu_baseline(image):
    """Otsu threshold + distance-transform watershed on the normalised image (no learning).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((40, 40), np.uint8)
    >>> image[5:15, 5:15] = image[25:35, 20:32] = 200
    >>> int(otsu_baseline(image).max())
    2
    """
    return otsu_labels(to_model_input(image))


def classical_he_method(image) -> str:
    """Which classical method the H&E row applies to ``image``: ``"hematoxylin"`` or ``"otsu"``.

    :func:`nuclei_core.segmentation.classical.hematoxylin_labels` needs a colour image (it
    separates the stains), so greyscale images, and RGB files whose three channels
    are equal, fall back to :func:`otsu_baseline`.

    Examples
    --------
    >>> import numpy as np
    >>> grey = np.zeros((8, 8, 3), np.uint8)
    >>> pink = np.dstack([np.full((8, 8), 230), np.eye(8) * 90, np.full((8, 8), 200)])
    >>> classical_he_method(grey), classical_he_method(pink.astype(np.uint8))
    ('otsu', 'hematoxylin')
    """
    return "hematoxylin" if is_colour(image) else "otsu"


def classical_he(image):
    """Hematoxylin channel + Otsu + watershed on colour images; :func:`otsu_baseline` on grey.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((40, 40), np.uint8)
    >>> image[5:15, 5:15] = 200
    >>> int(classical_he(image).max())
    1
    """
    if classical_he_method(image) == "hematoxylin":
        return hematoxylin_labels(image)
    return otsu_baseline(image)


CLASSICAL_METHODS = {
    "classical": (
        "classical: Otsu + watershed",
        otsu_baseline,
        "`nuclei_core.segmentation.classical.otsu_labels(nuclei_core.segmentation.preprocess.to_model_input(image))`",
    ),
    "classical_he": (
        "classical H&E: hematoxylin + Otsu + watershed",
        classical_he,
        "`nuclei_core.segmentation.classical.hematoxylin_labels(image)` on colour images "
        "(hematoxylin channel "
        "by rgb2hed, Otsu, distance watershed); it refuses greyscale images, which get the "
        "Otsu row's method instead",
    ),
}
"""``name: (label, function image -> labels, how it works)`` of the methods without learning.

How it works, as every peer's ``how``, is markdown: code and commands in backticks.
"""


# --------------------------------------------------------------------------- StarDist


class StarDistProcess:
    """StarDist 2D as a function ``image -> labels``, run by ``bench.stardist_peer serve``.

    StarDist needs Keras 2 (``tf-keras``) where this process runs Keras 3, so the
    model lives in a child process; each image goes there and back as a ``.npy``
    file. The child warms up before the first image, so a call's time is the
    model input, StarDist's network and non-maximum suppression, and two small
    file round trips.
    """

    def __init__(self, model_dir=STARDIST_MODEL):
        self.folder = tempfile.TemporaryDirectory(prefix="stardist-")
        self.child = subprocess.Popen(
            [sys.executable, "-m", "bench.stardist_peer", "serve", "--model", str(model_dir)],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._answer("ready")

    def _answer(self, expected: str) -> None:
        for line in self.child.stdout:
            if line.rstrip("\n") == expected:
                return
        raise RuntimeError(f"StarDist's child process ended (exit code {self.child.wait()})")

    def __call__(self, image):
        source = Path(self.folder.name) / "image.npy"
        target = Path(self.folder.name) / "labels.npy"
        np.save(source, image)
        self.child.stdin.write(f"{source}\t{target}\n")
        self.child.stdin.flush()
        self._answer(f"done {target}")
        return np.load(target)

    def close(self) -> None:
        """End the child process and remove its files."""
        self.child.stdin.close()
        self.child.wait(timeout=60)
        self.folder.cleanup()
