"""Write a half-size view of a data set's split: 40x H&E tiles as a 20x scanner gives them.

Usage::

    python -m bench.tools.half_size --data ../shared/data/monuseg2018_train/train \\
        --split test --out bench/work/monuseg2018_20x

Every image of the split is shrunk by 2 with area averaging (``cv2.INTER_AREA``, what
a scanner's lower magnification does to the optics' image, near enough), its label image
by 2 with nearest-neighbour sampling (``skimage.transform.rescale``, ``order=0``);
nuclei that vanish (under 4 pixels left) are dropped from the truth, as no method could
find them. The result is a flat data set (``inputs/`` + 16-bit ``masks/``) whose every
image is its ``all`` split: score it with ``--split all``. The ids and the source's split
are kept, so a view of the test part never holds a training image.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from skimage.morphology import remove_small_objects
from skimage.segmentation import relabel_sequential
from skimage.transform import rescale

from nuclei_core.datasets.folders import discover_dataset, load_sample, select_split
from nuclei_core.io.export import encode_png, labels_to_uint16
from nuclei_core.storage import atomic_write_bytes, ensure_dir

SMALLEST_NUCLEUS_PX = 4
"""Nuclei with fewer pixels after shrinking are dropped from the truth."""


def half_size(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` and ``labels`` at half their size (area averaging; nearest-neighbour labels).

    Examples
    --------
    >>> image, labels = np.zeros((8, 10, 3), np.uint8), np.zeros((8, 10), np.int32)
    >>> labels[2:6, 2:6] = 1
    >>> small_image, small_labels = half_size(image, labels)
    >>> small_image.shape, small_labels.shape, int(small_labels.max())
    ((4, 5, 3), (4, 5), 1)
    """
    height, width = labels.shape
    size = (max(1, width // 2), max(1, height // 2))
    small_image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    small_labels = rescale(labels, 0.5, order=0, preserve_range=True, anti_aliasing=False).astype(
        np.int32
    )[: size[1], : size[0]]
    kept = remove_small_objects(small_labels, max_size=SMALLEST_NUCLEUS_PX - 1)
    return small_image, relabel_sequential(kept)[0].astype(np.int32)


def write_half_size(data, split: str, out) -> int:
    """Write the half-size view of ``split`` of the data set in ``data`` to ``out``; the count."""
    samples = select_split(discover_dataset(data), split)
    out = Path(out)
    for part in ("inputs", "masks"):
        ensure_dir(out / part)
    for sample in samples:
        image, labels = load_sample(sample)
        small_image, small_labels = half_size(image, labels)
        atomic_write_bytes(out / "inputs" / f"{sample.id}.png", encode_png(small_image))
        atomic_write_bytes(
            out / "masks" / f"{sample.id}.png", encode_png(labels_to_uint16(small_labels))
        )
    return len(samples)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tools.half_size", description=__doc__)
    parser.add_argument("--data", required=True, help="the data set folder")
    parser.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    parser.add_argument("--out", required=True, help="the folder of the half-size view")
    args = parser.parse_args(argv)
    count = write_half_size(args.data, args.split, args.out)
    print(f"wrote {count} half-size images of the {args.split} split to {args.out}")
    return 0 if count else 1


if __name__ == "__main__":
    sys.exit(main())
