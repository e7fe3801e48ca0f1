"""Synthetic nuclei images and datasets written by the tests themselves (no ``../shared``
data): bright discs, some touching, on a dark noisy background, and the settings of the
tiny U-Net that ``trained_run`` overfits on them.

``make_nuclei(...)`` returns ``(image, labels)``; ``make_flat_dataset(root, ...)`` writes
``inputs/`` + ``masks/`` (16-bit label PNGs); ``make_kaggle_dataset(root, ...)`` writes
``<id>/images/<id>.png`` + ``<id>/masks/*.png`` (one binary mask per nucleus).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_nuclei(
    size=(64, 64),
    n_nuclei: int = 5,
    radius=(6, 10),
    n_touching_pairs: int = 1,
    seed: int = 0,
    bright_background: bool = False,
    noise: float = 6.0,
):
    """Random bright discs on a dark noisy background.

    Returns ``(image, labels)``: ``uint8 (H, W)`` and ``int32 (H, W)`` (0 = background,
    1..N = nuclei). ``n_touching_pairs`` pairs of discs overlap by about one pixel, so
    they touch along a short edge; the other discs keep a gap of at least two pixels.
    With ``bright_background`` the intensities are inverted (dark nuclei on a bright
    background, as in brightfield images).
    """
    rng = np.random.default_rng(seed)
    height, width = size
    yy, xx = np.mgrid[:height, :width]
    labels = np.zeros((height, width), np.int32)
    discs: list[tuple[float, float, int]] = []

    def free(cy, cx, r, gap=2.0, ignore=()):
        if not (r + 1 <= cy <= height - r - 2 and r + 1 <= cx <= width - r - 2):
            return False
        return all(
            np.hypot(cy - y, cx - x) >= r + rr + gap
            for index, (y, x, rr) in enumerate(discs)
            if index not in ignore
        )

    def paint(cy, cx, r):
        discs.append((cy, cx, r))
        inside = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r**2) & (labels == 0)
        labels[inside] = len(discs)

    for _ in range(n_touching_pairs):
        for _attempt in range(200):
            r1, r2 = (int(v) for v in rng.integers(radius[0], radius[1] + 1, size=2))
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            angle = rng.uniform(0, 2 * np.pi)
            distance = r1 + r2 - 1
            cy2, cx2 = cy + distance * np.sin(angle), cx + distance * np.cos(angle)
            if free(cy, cx, r1) and free(cy2, cx2, r2):
                paint(cy, cx, r1)
                paint(cy2, cx2, r2)
                break
    for _ in range(n_nuclei - 2 * n_touching_pairs):
        for _attempt in range(200):
            r = int(rng.integers(radius[0], radius[1] + 1))
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            if free(cy, cx, r):
                paint(cy, cx, r)
                break

    image = rng.normal(20.0, noise, size)
    for index in range(1, len(discs) + 1):
        inside = labels == index
        image[inside] = rng.uniform(140, 230) + rng.normal(0.0, noise, int(inside.sum()))
    image = np.clip(image, 0, 255)
    if bright_background:
        image = 255 - image
    return image.astype(np.uint8), labels


def save_png(path, array) -> Path:
    """Write a uint8/uint16 grey or uint8 RGB(A) array as PNG with Pillow."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG")
    return path


def make_flat_dataset(
    root,
    n_images: int = 6,
    size=(64, 64),
    seed: int = 0,
    n_nuclei: int = 5,
    radius=(6, 10),
    mask_suffix: str = "",
    prefix: str = "img",
) -> Path:
    """``root/inputs/<stem>.png`` (8-bit grey) + ``root/masks/<stem><suffix>.png`` (16-bit)."""
    root = Path(root)
    for index in range(n_images):
        image, labels = make_nuclei(size, n_nuclei=n_nuclei, radius=radius, seed=seed + index)
        stem = f"{prefix}{index:02d}"
        save_png(root / "inputs" / f"{stem}.png", image)
        save_png(root / "masks" / f"{stem}{mask_suffix}.png", labels.astype(np.uint16))
    return root


def make_kaggle_dataset(root, n_images: int = 4, size=(64, 64), seed: int = 100) -> Path:
    """``root/<id>/images/<id>.png`` (RGBA, as in DSB 2018) + one binary mask per nucleus."""
    root = Path(root)
    for index in range(n_images):
        image, labels = make_nuclei(size, seed=seed + index)
        sample_id = f"{index:02d}abcdef{seed + index}"
        rgba = np.dstack([image, image, image, np.full(image.shape, 255, np.uint8)])
        save_png(root / sample_id / "images" / f"{sample_id}.png", rgba)
        for label in range(1, int(labels.max()) + 1):
            mask = (labels == label).astype(np.uint8) * 255
            save_png(root / sample_id / "masks" / f"mask{label:03d}.png", mask)
    return root


TRAINED_SIZE = (64, 64)
TRAINED_IMAGES = 24
TRAINED_NUCLEI = {"n_nuclei": 6, "radius": (6, 10)}
TRAINED_CONFIG = {
    # 15 epochs, not 10: at 10 the result depended on the CPU's instruction set
    # (oneDNN picks other kernels, the lr 1e-2 trajectory diverges) and one CI
    # machine ended at a worst-image IoU of 0.865; at 15 the worst image scored
    # 0.988 or more in 14 runs (4 seeds, ONEDNN_MAX_CPU_ISA from SSE41 to AVX512).
    "epochs": 15,
    "batch_size": 4,
    "learning_rate": 1e-2,
    "patience": 10,
    "crop": 32,
    "val_fraction": 0.2,
    "depth": 2,
    "base_filters": 8,
    "dropout": 0.0,
    "seed": 0,
    "strategy": "none",
    # float32 on every machine: in mixed bfloat16 (the default on CPUs with AMX) the
    # training fell short of the 0.9 IoU the overfitting test asks, once in about ten
    # runs; bfloat16 training has its own test in test_train.py.
    "precision": "float32",
}
