"""Correction mode of the Segment page: the nucleus annotator and "Save as training image".

The annotator is a Streamlit custom component (``st.components.v2``) written by hand:
``frontend/annotator.html``, ``.css``, and ``labels.js`` (pure functions over label
arrays) joined with ``annotator.js`` (the canvas and one handler a tool) are read from
this folder and registered inline (no build step, nothing fetched from the network). Each finished
gesture arrives as the trigger value ``gesture``; its callback applies it, before the
page runs, to the image's :class:`~ui.annotator.gestures.Correction`, so the count, the
measurements and the downloads of that same run use the corrected labels.

Session-state keys: ``annotator_corrections``, ``{image key: Correction}`` of the last
few images (each with its edit history); ``segment_annotator``, the component.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import numpy as np
import streamlit as st

from nuclei_core.datasets.drafts import discard_draft, draft_key, load_draft, save_draft
from nuclei_core.datasets.user_names import check_dataset_name, check_image_stem
from nuclei_core.datasets.user_read import dataset_images, list_user_datasets
from nuclei_core.datasets.user_write import save_training_image
from nuclei_core.errors import NucleiError
from nuclei_core.segmentation.preprocess import IMAGE_KINDS
from ui import wording
from ui.annotator.gestures import Correction
from ui.signin import current_user

FRONTEND = Path(__file__).resolve().parent / "frontend"
STORE_KEY = "annotator_corrections"
COMPONENT_KEY = "segment_annotator"
KEEP_IMAGES = 3
NEW_DATASET = "New dataset…"
DRAFT_TEXT = (
    "Your corrections of this image from before were kept (they were never saved): go on, "
    "save them as a training image, or start again."
)

_annotator = st.components.v2.component(
    "nuclei_annotator",
    html=(FRONTEND / "annotator.html").read_text(encoding="utf-8"),
    css=(FRONTEND / "annotator.css").read_text(encoding="utf-8"),
    js="\n".join(
        (FRONTEND / name).read_text(encoding="utf-8") for name in ("labels.js", "annotator.js")
    ),
)


def corrections() -> dict:
    """``{image key: Correction}`` of this browser session, the latest last."""
    return st.session_state.setdefault(STORE_KEY, {})


def correction_for(image_key, labels: np.ndarray, rgb: np.ndarray, source) -> Correction:
    """The corrections of an image, started from ``labels`` the first time it is seen.

    ``source`` says what made ``labels`` (model, threshold ...); when it changes
    before any edit, the corrections start again from the new labels; after edits
    they are kept (see :func:`restart_buttons`).
    """
    store = corrections()
    found = store.get(image_key)
    if found is None:
        found = Correction.start(labels, rgb, source)
        draft = load_draft(current_user().data_root, draft_key(*image_key), labels.shape)
        if draft is not None:  # corrections of an earlier visit, never saved
            found.restart(draft, "your unsaved corrections of before")
            found.message = DRAFT_TEXT
    elif found.source != source and not found.history.can_undo:
        found = Correction.start(labels, rgb, source)
    store.pop(image_key, None)
    store[image_key] = found
    while len(store) > KEEP_IMAGES:
        store.pop(next(iter(store)))
    return found


def keep_draft(image_key, correction: Correction) -> None:
    """Keep the corrections on disk until they are saved (or remove the draft when nothing
    is left to undo): a reload or a lost connection loses none."""
    root, key = current_user().data_root, draft_key(*image_key)
    if correction.unsaved:
        save_draft(root, key, correction.labels)
    else:
        discard_draft(root, key)


def _on_gesture(image_key) -> None:
    """Callback of the ``gesture`` trigger: apply it to the image's corrections."""
    result = st.session_state.get(COMPONENT_KEY)
    correction = corrections().get(image_key)
    if result is not None and correction is not None:
        correction.handle(result.get("gesture"))
        keep_draft(image_key, correction)


def _state_reported() -> None:
    """Callback of the ``image_id`` and ``labels_have`` states: nothing to do, the next run
    reads them."""


def annotator(image_key, correction: Correction) -> None:
    """Show the annotator on ``correction`` (and an edit it just refused as a warning).

    The display image (megabytes for a large image) is sent only while the
    component's state ``image_id`` says it does not show it yet; after an edit only the
    box it changed is sent (``labels_have`` asks for the rest when the component missed
    something).
    """
    component = st.session_state.get(COMPONENT_KEY) or {}
    data = correction.component_data(
        with_image=component.get("image_id") != correction.image_id,
        report=component.get("labels_have"),
    )
    _annotator(
        key=COMPONENT_KEY,
        data=data,
        on_gesture_change=partial(_on_gesture, image_key),
        on_image_id_change=_state_reported,
        on_labels_have_change=_state_reported,
    )
    if correction.message:
        st.warning(correction.message)
        correction.message = None  # shown once, after the refused gesture


def restart_buttons(image_key, correction: Correction, labels: np.ndarray, source) -> None:
    """Buttons to start again from the model's nuclei (when ``labels`` came from a model)
    and to remove all nuclei; both are undoable steps."""
    left, right = st.columns(2)
    if source is not None:
        if correction.source != source:
            left.caption(
                "The threshold, size or model changed after you began correcting: your "
                "corrections are kept."
            )
        if left.button("Start again from the model's nuclei", key="annotator_restart"):
            correction.restart(labels, "start again from the model's nuclei")
            correction.source = source
            keep_draft(image_key, correction)
            st.rerun()
    if right.button("Remove all nuclei (annotate from scratch)", key="annotator_clear"):
        correction.restart(np.zeros_like(correction.labels), "remove all nuclei")
        keep_draft(image_key, correction)
        st.rerun()


def safe_stem(name: str) -> str:
    """A file name's stem with the characters a dataset refuses turned into ``_``.

    Examples
    --------
    >>> safe_stem("H&E tile (2).tif")
    'H_E_tile_2'
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem).strip("_.") or "image"


def _held_stem(dataset: str, given: str, user) -> str | None:
    """The stem ``given`` is saved under when the existing ``dataset`` holds an image of it."""
    if dataset == NEW_DATASET:
        return None
    try:
        stem = check_image_stem(given)
        held = {image.stem for image in dataset_images(dataset, user.datasets_root)}
    except NucleiError:
        return None  # a bad name or a dataset gone: the save says why
    return stem if stem in held else None


def save_form(
    image_key, correction: Correction, name: str, image: np.ndarray, kind: str, source_model
) -> None:
    """Show "Save as training image": dataset (existing or new), image name, kind; save (the
    draft of the corrections goes once they are saved)."""
    labels = correction.labels
    st.subheader("Save as training image")
    user = current_user()
    existing = [dataset.name for dataset in list_user_datasets(user.datasets_root)]
    left, middle, right, last = st.columns(4)
    chosen = left.selectbox("Dataset", [*existing, NEW_DATASET], key="annotator_dataset")
    dataset = chosen
    if chosen == NEW_DATASET:
        dataset = middle.text_input(
            "New dataset name",
            key="annotator_new_dataset",
            placeholder="e.g. HE_tiles",
            help="Letters, digits, blanks, '-', '_' and '.'.",
        )
    stem = right.text_input(
        "Image name",
        value=safe_stem(name),
        key=f"annotator_image_name_{name}",
        help="Saving under a name the dataset holds asks before replacing that image.",
    )
    kinds = list(IMAGE_KINDS)
    kind = last.selectbox(
        "Kind of image",
        kinds,
        index=kinds.index(kind) if kind in kinds else 0,
        key=f"annotator_kind_{name}",
        help="Detected from the image; change it if it is wrong.",
    )
    given = name if Path(name).stem == stem else stem  # keeps the file's name if it can
    held = _held_stem(chosen, given, user)
    replace = held is not None and st.checkbox(
        f"Replace the image {wording.plain(held)} that {wording.plain(chosen)} holds, and its "
        "nuclei",
        key=f"annotator_replace_{chosen}_{held}",
        help="The dataset holds an image of this name; type another name to keep both.",
    )
    if held is not None and not replace:
        st.caption(f"{wording.plain(chosen)} holds an image named {wording.plain(held)} already.")
    if st.button(
        "Save as training image",
        key="annotator_save",
        type="primary",
        disabled=held is not None and not replace,
    ):
        if not dataset:
            st.warning("Type a name for the new dataset.")
            return
        try:
            if chosen == NEW_DATASET and check_dataset_name(dataset) in existing:
                st.warning(
                    f"A dataset named {wording.plain(check_dataset_name(dataset))} exists "
                    "already: choose it in the list to add this image to it, or type another "
                    "name. Nothing was saved."
                )
                return
            saved = save_training_image(
                dataset, given, image, labels, kind, source_model, root=user.datasets_root
            )
        except NucleiError as error:
            st.warning(str(error).splitlines()[0])
            return
        correction.saved_id = correction.labels_id
        discard_draft(user.data_root, draft_key(*image_key))
        folder = saved.image_path.parent.parent  # its server folder: for the local user only
        where = f" (folder {wording.plain(str(folder))})" if user.name is None else ""
        st.success(
            f"Saved {wording.plain(saved.image_path.name)} with {saved.n_nuclei} nuclei into "
            f"the dataset {wording.plain(folder.name)}{where}."
        )
