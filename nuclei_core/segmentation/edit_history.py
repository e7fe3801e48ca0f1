"""Undo and redo of the hand edits of one label image: :class:`EditHistory`.

The edits themselves are the pure functions of :mod:`nuclei_core.segmentation.edits`; the
history takes the label image each returns (:meth:`EditHistory.apply`) and keeps only the
pixels each step changed, so that it can step back and forth.

Examples
--------
>>> from nuclei_core.segmentation.edits import delete_nuclei
>>> labels = np.array([[1, 1, 0, 2, 2]], np.uint16)
>>> history = EditHistory(labels)
>>> history.apply(delete_nuclei(history.labels, [1]), "delete nucleus 1")
array([[0, 0, 0, 1, 1]], dtype=uint16)
>>> history.undo()
array([[1, 1, 0, 2, 2]], dtype=uint16)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from nuclei_core.checks import check_int, check_label_image, check_name, check_same_shape
from nuclei_core.errors import InputError
from nuclei_core.segmentation.edit_primitives import label_counts

__all__ = ["EditHistory"]


@dataclass(frozen=True)
class _Step:
    """One edit: where pixels changed (flat indices) and their values before and after."""

    description: str
    index: np.ndarray
    before: np.ndarray
    after: np.ndarray

    @classmethod
    def between(cls, old: np.ndarray, new: np.ndarray, description: str) -> _Step:
        index = np.flatnonzero(old != new)
        return cls(description, index, old.ravel()[index], new.ravel()[index])


def _frozen(labels: np.ndarray) -> np.ndarray:
    """``labels`` made read-only (the history's arrays are never changed in place)."""
    labels.flags.writeable = False
    return labels


def _patched(labels: np.ndarray, index: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A read-only copy of ``labels`` with ``values`` at the flat ``index``."""
    out = labels.copy()
    np.put(out, index, values)
    return _frozen(out)


def _nucleus_count(labels: np.ndarray) -> int:
    """Number of distinct nuclei."""
    if labels.max() > labels.size:
        return int(np.count_nonzero(np.unique(labels)))
    return int(np.count_nonzero(label_counts(labels)[1:]))


class EditHistory:
    """The edits of one label image, for undo and redo.

    Each step keeps only the pixels it changed (their flat positions, values before and
    after), so a 2048 x 2048 image with 1,000 nuclei and 200 steps of edits stays small.
    :attr:`labels` is read-only; edit functions return new arrays for :meth:`apply`.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        The label image before any edit (copied).
    max_steps : int, default 200
        Most steps kept for undo; the oldest is dropped beyond.

    Examples
    --------
    >>> from nuclei_core.segmentation.edits import merge_nuclei
    >>> history = EditHistory(np.array([[1, 0, 2]]), max_steps=10)
    >>> history.apply(merge_nuclei(history.labels, [1, 2]), "merge 1 and 2")
    array([[1, 1, 1]])
    >>> history.count, history.steps, history.can_undo, history.can_redo
    (1, ['merge 1 and 2'], True, False)
    >>> history.undo()
    array([[1, 0, 2]])
    >>> history.redo()
    array([[1, 1, 1]])
    """

    def __init__(self, labels: np.ndarray, max_steps: int = 200) -> None:
        check_label_image(labels, "labels")
        self._done: deque[_Step] = deque(maxlen=check_int(max_steps, "max_steps", minimum=1))
        self._undone: list[_Step] = []
        self._set(_frozen(labels.copy()))

    def _set(self, labels: np.ndarray) -> np.ndarray:
        self._labels = labels
        self._count = _nucleus_count(labels)
        return labels

    @property
    def labels(self) -> np.ndarray:
        """The current label image (read-only)."""
        return self._labels

    @property
    def count(self) -> int:
        """Number of nuclei in :attr:`labels`."""
        return self._count

    @property
    def steps(self) -> list[str]:
        """Descriptions of the steps that can be undone, oldest first."""
        return [step.description for step in self._done]

    @property
    def can_undo(self) -> bool:
        """Whether there is a step to undo."""
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone step to redo."""
        return bool(self._undone)

    def apply(self, new_labels: np.ndarray, description: str) -> np.ndarray:
        """Make ``new_labels`` (copied) current, as a step that can be undone.

        A new step drops the steps undone before it; one that changes nothing adds no step.
        """
        check_label_image(new_labels, "new_labels")
        check_same_shape(new_labels, "new_labels", self._labels.shape)
        if new_labels.dtype != self._labels.dtype:
            raise InputError(
                f"new_labels has dtype {new_labels.dtype}, the history {self._labels.dtype}"
            )
        step = _Step.between(self._labels, new_labels, check_name(description, "description"))
        if step.index.size == 0:
            return self._labels
        self._done.append(step)
        self._undone.clear()
        return self._set(_frozen(new_labels.copy()))

    def undo(self) -> np.ndarray:
        """Go back one step and return the labels then; nothing to undo: the labels as they are."""
        if not self._done:
            return self._labels
        step = self._done.pop()
        self._undone.append(step)
        return self._set(_patched(self._labels, step.index, step.before))

    def redo(self) -> np.ndarray:
        """Do the last undone step again; nothing to redo: the labels as they are."""
        if not self._undone:
            return self._labels
        step = self._undone.pop()
        self._done.append(step)
        return self._set(_patched(self._labels, step.index, step.after))
