"""Corrections not saved yet, kept on disk so that a reload or a lost connection loses none.

While someone corrects the nuclei of an image, every edit writes the labels as a draft,
``<folder>/drafts/<key>.npz`` (the folder is the user's own, the key names the image:
:func:`draft_key`), atomically. Opening the same image again starts from its draft;
saving it as a training image, or discarding the corrections, removes it. At most
:data:`KEEP_DRAFTS` drafts are kept per folder, the oldest going first.

Examples
--------
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> labels = np.zeros((4, 4), np.int32); labels[1:3, 1:3] = 7
>>> key = draft_key("image digest", 0, 0)
>>> save_draft(folder, key, labels)
>>> int(load_draft(folder, key, (4, 4)).max())
7
>>> discard_draft(folder, key); load_draft(folder, key, (4, 4)) is None
True
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from nuclei_core.storage import atomic_path, ensure_dir

__all__ = ["KEEP_DRAFTS", "discard_draft", "draft_key", "load_draft", "save_draft"]

KEEP_DRAFTS = 20
DRAFTS_FOLDER_NAME = "drafts"


def draft_key(*parts) -> str:
    """A file-name-safe key for an image (its digest, channel, plane ...).

    Examples
    --------
    >>> draft_key("abc", 0, 1) == draft_key("abc", 0, 1) != draft_key("abc", 1, 0)
    True
    >>> len(draft_key("../../etc/passwd"))
    32
    """
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _path(folder: str | os.PathLike, key: str) -> Path:
    if not (isinstance(key, str) and len(key) == 32 and key.isalnum()):
        raise ValueError(f"key must be a draft_key, got {key!r}")
    return Path(folder) / DRAFTS_FOLDER_NAME / f"{key}.npz"


def save_draft(folder: str | os.PathLike, key: str, labels: np.ndarray) -> None:
    """Keep ``labels`` as the draft of image ``key`` (replacing its earlier draft)."""
    path = _path(folder, key)
    ensure_dir(path.parent)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, labels=np.asarray(labels, np.int32))
    drafts = sorted(path.parent.glob("*.npz"), key=lambda each: each.stat().st_mtime_ns)
    for old in drafts[:-KEEP_DRAFTS]:
        old.unlink(missing_ok=True)


def load_draft(folder: str | os.PathLike, key: str, shape: tuple[int, int]) -> np.ndarray | None:
    """The draft of image ``key``, or None where there is none (or it does not fit ``shape``
    or cannot be read: a draft is never worth an error)."""
    path = _path(folder, key)
    try:
        with np.load(path, allow_pickle=False) as stored:
            labels = stored["labels"]
    except (OSError, KeyError, ValueError):
        return None
    if labels.shape != tuple(shape) or labels.dtype != np.int32:
        return None
    return labels


def discard_draft(folder: str | os.PathLike, key: str) -> None:
    """Remove the draft of image ``key`` (nothing happens where there is none)."""
    _path(folder, key).unlink(missing_ok=True)
