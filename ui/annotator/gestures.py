"""The annotator's Python side without Streamlit: gestures to edits, labels to the browser.

The browser component (``frontend/annotator.js``) sends each finished gesture as one
dict ``{"tool": ..., "points": [[row, col], ...], "radius": r, "seq": n}`` in image
pixel coordinates; :func:`apply_gesture` turns it into one call of
:mod:`nuclei_core.segmentation.edits` and :class:`Correction` keeps the :class:`EditHistory` of one
image (undo and redo go through it). :func:`labels_data_url` sends a label image to the
browser losslessly as an RGB PNG (red = low byte, green = high byte of the id), so the
component knows the nucleus under every pixel. After an edit only the boxes it changed
go (:func:`changed_boxes`, a ``patch`` of :meth:`Correction.component_data`); the
whole label image goes the first time, and again when the browser says it missed one.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

import numpy as np

from nuclei_core.checks import as_rgb_uint8, check_choice, check_dict, check_label_image
from nuclei_core.errors import EditError, InputError, NucleiError
from nuclei_core.io.export import encode_png, labels_to_uint16
from nuclei_core.io.render import NUCLEUS_PALETTE
from nuclei_core.segmentation import edits
from nuclei_core.segmentation.edit_history import EditHistory

EDIT_TOOLS = ("delete", "outline", "split", "merge", "paint", "erase")
"""Tools whose gesture changes the labels (``points`` in ``[row, col]``)."""
HISTORY_TOOLS = ("undo", "redo")
"""Tools that step through the history (no points)."""
MIN_POINTS = {"delete": 1, "outline": 3, "split": 2, "merge": 1, "paint": 1, "erase": 1}
KEEP_SENT = 4
"""Label images last sent to the browser that a patch may start from."""
PATCH_TILE = 256
"""The side of the squares a patch's boxes are found in (:func:`changed_boxes`)."""
WHOLE_SHARE = 0.5
"""A change covering more than this share of the image goes as the whole label image."""


def changed_boxes(
    before: np.ndarray, after: np.ndarray, tile: int = PATCH_TILE
) -> list[tuple[int, int, int, int]]:
    """The boxes ``(row, col, end row, end col)`` (ends excluded) of the pixels where two
    label images differ: in each ``tile`` x ``tile`` square of the image that has any,
    the smallest box holding them (an edit that renumbers a far nucleus gives two small
    boxes, not one across the image); ``[]`` when the images are the same.

    Examples
    --------
    >>> before = np.zeros((6, 8), np.int32)
    >>> after = before.copy(); after[1:3, 4:7] = 5; after[5, 0] = 2
    >>> changed_boxes(before, after, tile=4), changed_boxes(after, after)
    ([(1, 4, 3, 7), (5, 0, 6, 1)], [])
    """
    different = before != after
    boxes = []
    for top in range(0, different.shape[0], tile):
        band = different[top : top + tile]
        columns = band.any(axis=0)
        for left in range(0, columns.size, tile):
            cols = np.flatnonzero(columns[left : left + tile])
            if not cols.size:
                continue
            rows = np.flatnonzero(band[:, left : left + tile].any(axis=1))
            first_row, end_row = top + int(rows[0]), top + int(rows[-1]) + 1
            boxes.append((first_row, left + int(cols[0]), end_row, left + int(cols[-1]) + 1))
    return boxes


def png_data_url(png: bytes) -> str:
    """A ``data:`` URL of PNG bytes.

    Examples
    --------
    >>> png_data_url(b"\\x89PNG")
    'data:image/png;base64,iVBORw=='
    """
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def labels_rgb(labels: np.ndarray) -> np.ndarray:
    """A label image as ``uint8 (H, W, 3)``: red = low byte, green = high byte, blue = 0.

    Refuses more than 65,535 nuclei.

    Examples
    --------
    >>> labels_rgb(np.array([[0, 1, 258]]))[0].tolist()
    [[0, 0, 0], [1, 0, 0], [2, 1, 0]]
    """
    ids = labels_to_uint16(check_label_image(labels))
    rgb = np.zeros((*ids.shape, 3), np.uint8)
    rgb[..., 0] = ids & 0xFF
    rgb[..., 1] = ids >> 8
    return rgb


def labels_data_url(labels: np.ndarray) -> str:
    """The PNG data URL the component decodes into label ids (see :func:`labels_rgb`).

    Examples
    --------
    >>> labels_data_url(np.zeros((4, 4), np.int32))[:22]
    'data:image/png;base64,'
    """
    return png_data_url(encode_png(labels_rgb(labels)))


def image_data_url(rgb: np.ndarray) -> str:
    """The display image (``uint8`` RGB or grey) as a PNG data URL.

    Examples
    --------
    >>> image_data_url(np.zeros((4, 4, 3), np.uint8))[:22]
    'data:image/png;base64,'
    """
    return png_data_url(encode_png(as_rgb_uint8(rgb, "rgb")))


def labels_id(labels: np.ndarray) -> str:
    """A short fingerprint of a label image: the component redraws when it changes.

    Examples
    --------
    >>> labels_id(np.zeros((2, 2), np.int32)) == labels_id(np.zeros((2, 2), np.int32))
    True
    """
    labels = np.ascontiguousarray(labels)
    digest = hashlib.blake2b(memoryview(labels).cast("B"), digest_size=8)  # no copy
    digest.update(repr((labels.shape, labels.dtype.str)).encode())
    return digest.hexdigest()


def gesture_points(gesture: dict, tool: str) -> np.ndarray:
    """The gesture's points as a float array ``(N, 2)`` of (row, col), at least as many as
    ``tool`` needs.

    Examples
    --------
    >>> gesture_points({"points": [[1, 2], [3.5, 4]]}, "split").tolist()
    [[1.0, 2.0], [3.5, 4.0]]
    >>> gesture_points({"points": [[1, 2]]}, "split")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: gesture points: split needs at least 2 points, got 1
    """
    try:
        points = np.asarray(gesture.get("points", []), dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError) as error:
        raise InputError(f"gesture points: not a list of [row, col] pairs ({error})") from None
    if not np.isfinite(points).all():
        raise InputError("gesture points: not finite")
    needed = MIN_POINTS[tool]
    if len(points) < needed:
        raise InputError(
            f"gesture points: {tool} needs at least {needed} points, got {len(points)}"
        )
    return points


def _ids_under(labels: np.ndarray, points: np.ndarray) -> list[int]:
    ids = (edits.label_at(labels, point) for point in points)
    return list(dict.fromkeys(i for i in ids if i))


def apply_gesture(labels: np.ndarray, gesture: dict) -> tuple[np.ndarray, str]:
    """Apply one editing gesture to a label image: ``(new labels, description)``.

    ``delete`` removes the nuclei under its points; ``outline`` adds a nucleus;
    ``split`` cuts one along its line; ``merge`` joins the nuclei under its points;
    ``paint`` brushes (``radius``) onto the nucleus under the first point, or a new one
    on background; ``erase`` brushes away the nucleus under the first point (any
    nucleus when the stroke starts on background).

    Raises
    ------
    EditError
        The edit is not possible (no nucleus under a click, a split that cuts nothing ...).
    InputError
        The gesture is malformed.

    Examples
    --------
    >>> labels = np.zeros((8, 8), np.int32); labels[1:4, 1:4] = 1
    >>> new, what = apply_gesture(labels, {"tool": "delete", "points": [[2, 2]]})
    >>> int(new.max()), what
    (0, 'delete 1 nucleus')
    """
    gesture = check_dict(gesture, "gesture")
    tool = check_choice(gesture.get("tool"), "gesture tool", EDIT_TOOLS)
    points = gesture_points(gesture, tool)
    if tool in ("delete", "merge"):
        ids = _ids_under(labels, points)
        if tool == "delete":
            if not ids:
                raise EditError("delete: no nucleus under the click")
            plural = "nucleus" if len(ids) == 1 else "nuclei"
            return edits.delete_nuclei(labels, ids), f"delete {len(ids)} {plural}"
        if len(ids) < 2:
            raise EditError("merge: select two or more nuclei first")
        return edits.merge_nuclei(labels, ids), f"merge {len(ids)} nuclei"
    if tool == "outline":
        return edits.add_nucleus(labels, points), "add a nucleus"
    if tool == "split":
        return edits.split_nucleus(labels, points), "split a nucleus"
    radius = int(round(float(gesture.get("radius", 1))))
    start = edits.label_at(labels, points[0])
    if tool == "paint":
        return edits.paint(labels, points, radius, start), "paint"
    return edits.erase(labels, points, radius, label_id=start or None), "erase"


@dataclass
class Correction:
    """The corrections of one image: its
    :class:`~nuclei_core.segmentation.edit_history.EditHistory`, the display image's data URL,
    what made the starting labels (``source``) and the last gesture handled (``seq``, echoed
    to the component).

    Examples
    --------
    >>> labels = np.zeros((8, 8), np.int32)
    >>> correction = Correction.start(labels, np.zeros((8, 8, 3), np.uint8), source="none")
    >>> correction.handle({"tool": "outline", "points": [[1, 1], [1, 5], [5, 5]], "seq": 1})
    >>> correction.history.count, correction.seq
    (1, 1)
    >>> correction.handle({"tool": "undo", "seq": 2}), correction.history.count
    (None, 0)
    """

    history: EditHistory
    image_url: str
    image_id: str
    source: object = None
    seq: int = 0
    message: str | None = None
    saved_id: str | None = None  # labels_id of the labels last saved as a training image
    sent: dict = field(default_factory=dict, repr=False)  # labels_id -> labels, last sent
    sent_id: str | None = None  # labels_id of the labels the browser was sent last
    report: object = None  # the browser's last "labels_have" report handled
    _known_id: tuple = field(default=(None, None), repr=False)  # (labels, their labels_id)

    @classmethod
    def start(cls, labels: np.ndarray, rgb: np.ndarray, source: object = None) -> Correction:
        """Corrections of an image starting from ``labels`` (made by ``source``)."""
        url = image_data_url(rgb)
        return cls(
            history=EditHistory(check_label_image(labels)),
            image_url=url,
            image_id=hashlib.blake2b(url.encode(), digest_size=8).hexdigest(),
            source=source,
        )

    @property
    def labels(self) -> np.ndarray:
        """The corrected label image now."""
        return self.history.labels

    def handle(self, gesture: dict | None) -> str | None:
        """Apply a gesture (or undo / redo); return the one-line reason when it cannot be
        applied (the labels are then unchanged), else ``None``."""
        if gesture is None:
            return None
        seq = gesture.get("seq") if isinstance(gesture, dict) else None
        if isinstance(seq, int) and seq > self.seq:
            self.seq = seq
        try:
            tool = gesture.get("tool") if isinstance(gesture, dict) else None
            if tool == "undo":
                if self.history.can_undo:
                    self.history.undo()
            elif tool == "redo":
                if self.history.can_redo:
                    self.history.redo()
            else:
                labels, description = apply_gesture(self.history.labels, gesture)
                self.history.apply(labels, description)
        except NucleiError as error:
            self.message = str(error).splitlines()[0]
            return self.message
        self.message = None
        return None

    def restart(self, labels: np.ndarray, description: str) -> None:
        """Replace all nuclei by ``labels`` as one undoable step (start again, clear all)."""
        self.history.apply(check_label_image(labels), description)
        self.message = None

    @property
    def labels_id(self) -> str:
        """:func:`labels_id` of the labels now, worked out once for each labels array (the
        history's arrays are never changed in place)."""
        labels = self.history.labels
        if self._known_id[0] is not labels:
            self._known_id = (labels, labels_id(labels))
        return self._known_id[1]

    @property
    def unsaved(self) -> bool:
        """Whether there are edits not saved as a training image yet."""
        return self.history.can_undo and self.labels_id != self.saved_id

    def component_data(self, with_image: bool = True, report: dict | None = None) -> dict:
        """What the browser component is sent (see ``frontend/annotator.js``).

        The image is left out (``None``) when the component says it has it already
        (``with_image=False``). The labels go whole the first time; afterwards as a
        ``patch`` (the boxes an edit changed, over the labels sent last, ``base_id``), or not
        at all when unchanged. ``report`` is the component's ``labels_have`` state,
        ``{"have": labels_id or None, "n": ...}``, which it sets when it missed labels
        (mounted afresh, or a run's data never reached it): a new one is answered from
        the labels it has.
        """
        labels = self.history.labels
        height, width = labels.shape
        current = self.labels_id
        base = self.sent_id
        if isinstance(report, dict) and report != self.report:
            self.report, base = report, report.get("have")
        whole = patch = None
        if base != current:
            patch = self._patch(base, labels)
            whole = labels_data_url(labels) if patch is None else None
        self.sent_id = current
        self.sent.pop(current, None)
        self.sent[current] = labels
        while len(self.sent) > KEEP_SENT:
            self.sent.pop(next(iter(self.sent)))
        return {
            "image": self.image_url if with_image else None,
            "image_id": self.image_id,
            "labels": whole,
            "patch": patch,
            "labels_id": current,
            "width": int(width),
            "height": int(height),
            "count": int(self.history.count),
            "can_undo": bool(self.history.can_undo),
            "can_redo": bool(self.history.can_redo),
            "unsaved": self.unsaved,
            "seq": int(self.seq),
            "palette": [list(colour) for colour in NUCLEUS_PALETTE],
        }

    def _patch(self, base: str | None, labels: np.ndarray) -> dict | None:
        """The boxes of ``labels`` that differ from the labels sent as ``base`` (``None``:
        the browser has no labels sent here, or the change covers most of the image)."""
        before = self.sent.get(base)
        if before is None or before.shape != labels.shape:
            return None
        boxes = changed_boxes(before, labels)
        area = sum((end_row - row) * (end_col - col) for row, col, end_row, end_col in boxes)
        if not boxes or area > WHOLE_SHARE * labels.size:
            return None
        return {
            "base_id": base,
            "boxes": [
                {
                    "row": row,
                    "col": col,
                    "height": end_row - row,
                    "width": end_col - col,
                    "labels": labels_data_url(labels[row:end_row, col:end_col]),
                }
                for row, col, end_row, end_col in boxes
            ],
        }
