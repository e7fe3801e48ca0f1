"""The Train page's "Your corrected images": user datasets as thumbnails, and the fine-tune form.

The images come from ``nuclei_core.datasets.user_read`` (saved on the Segment page);
thumbnails are cached per file and modification time. Fine-tuning starts the
same background job as training from the session's model, or queues it while another
runs (``ui.training_start``). Session-state keys: ``finetune_*`` (the form, kept while a job
runs), ``train_last_run_id`` (the run started from this session), ``user_removed_image``
(``(dataset, stem)`` removed last, for its Undo).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from nuclei_core.access.users import User
from nuclei_core.datasets import user_read, user_write
from nuclei_core.errors import NucleiError
from nuclei_core.registry import Registry
from nuclei_core.registry.catalogue import has_model_file
from ui import messages, state, training_start
from ui.pictures import square_picture
from ui.wording import format_date, plain

COLUMNS = 5
"""Thumbnails in a row."""
THUMBNAIL_SIDE = 160
"""The side of each thumbnail's square, in pixels."""
NO_DATASET_TEXT = (
    "No corrected images yet: segment an image on the **Segment** page, correct the "
    "nuclei and save it as a training image; it appears here."
)


@st.cache_data(max_entries=500, show_spinner=False)
def _thumbnail(path: str, mtime_ns: int):
    return square_picture(user_read.thumbnail(path, THUMBNAIL_SIDE), THUMBNAIL_SIDE)


def source_name(source_model: str | None, model_names: dict[str, str]) -> str:
    """The model that made an image's starting point, as the user knows it.

    Examples
    --------
    >>> source_name("/data/runs/7/model.keras", {"/data/runs/7/model.keras": "tuned"})
    'tuned'
    >>> source_name("/elsewhere/unet.keras", {}), source_name(None, {})
    ('unet.keras', 'drawn from scratch')
    """
    if not source_model:
        return "drawn from scratch"
    return model_names.get(source_model) or Path(source_model).name or source_model


def image_caption(image, model_names: dict[str, str]) -> str:
    """The caption under an image's thumbnail: stem, kind, nuclei, the starting point's model.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> image = SimpleNamespace(stem="tile_1", kind="stained", n_nuclei=1, source_model=None)
    >>> image_caption(image, {})
    'tile_1 · stained · 1 nucleus · drawn from scratch'
    """
    count = f"{image.n_nuclei} nucle{'us' if image.n_nuclei == 1 else 'i'}"
    parts = [image.stem, image.kind or "kind unknown", count]
    return " · ".join(parts + [source_name(image.source_model, model_names)])


def _remove(dataset: str, stem: str, root) -> None:
    """The Remove button's callback: take the image out, offer its undo after the rerun."""
    try:
        user_write.remove_training_image(dataset, stem, root)
    except NucleiError as error:
        messages.flash(str(error), "error")
    else:
        st.session_state["user_removed_image"] = (dataset, stem)


def _undo_remove(root) -> None:
    """The Undo button's callback: put the image removed last back."""
    dataset, stem = st.session_state.pop("user_removed_image")
    try:
        user_write.restore_training_image(dataset, stem, root)
    except NucleiError as error:
        messages.flash(str(error), "error")
    else:
        messages.flash(f"Put {stem} back into {dataset}.")


def show_undo(user: User) -> None:
    """Say which image was removed last, with its Undo button (until another action)."""
    removed = st.session_state.get("user_removed_image")
    if removed is None:
        return
    dataset, stem = removed
    text, button = st.columns([4, 1], vertical_alignment="center")
    text.success(f"Removed {plain(stem)} from {plain(dataset)}.")
    button.button("Undo", key="user_undo_remove", on_click=_undo_remove, args=(user.datasets_root,))


def show_dataset(dataset, model_names: dict[str, str], user: User) -> None:
    """One dataset: its name and size, then its images as a grid of thumbnails, each with a
    Remove that asks first.

    The server folder is shown to the one user of a loopback app only."""
    st.subheader(dataset.name)
    images = user_read.dataset_images(dataset.name, user.datasets_root)
    where = f" · folder {plain(str(dataset.folder))}" if user.name is None else ""
    st.caption(
        f"{len(images)} image{'s' if len(images) != 1 else ''} · updated "
        f"{format_date(dataset.updated_at)}{where}"
    )
    if not images:
        st.info("This dataset holds no image.")
        return
    for start in range(0, len(images), COLUMNS):
        columns = st.columns(COLUMNS)
        for column, image in zip(columns, images[start : start + COLUMNS], strict=False):
            caption = image_caption(image, model_names)
            try:
                modified = image.image_path.stat().st_mtime_ns
            except OSError:  # removed from another session since the listing
                continue
            with messages.engine_errors(column):
                picture = _thumbnail(str(image.image_path), modified)
                column.image(picture, caption=caption, output_format="PNG")
            with column.popover("Remove", width="stretch"):
                st.write(f"Take {plain(image.stem)} and its corrected nuclei out of the dataset?")
                st.button(
                    f"Remove {image.stem}",
                    key=f"user_remove_{dataset.name}_{image.stem}",
                    type="primary",
                    on_click=_remove,
                    args=(dataset.name, image.stem, user.datasets_root),
                    help="Fine-tuning no longer uses it; Undo puts it back.",
                )


def show_user_datasets(registry: Registry, user: User) -> list:
    """Every dataset of ``user`` with its thumbnails (or a note that there is none); returns
    them."""
    datasets = user_read.list_user_datasets(user.datasets_root)
    if not datasets:
        show_undo(user)
        st.info(NO_DATASET_TEXT)
        return []
    show_undo(user)
    model_names = {run.model_path: run.name for run in registry.list_runs() if run.model_path}
    for dataset in datasets:
        with messages.engine_errors():
            show_dataset(dataset, model_names, user)
    return datasets


def finetune_form(registry: Registry, datasets: list, user: User, busy: bool = False) -> None:
    """The form "Fine-tune the active model": dataset, minutes, run name, Start (Queue while
    another job runs, ``busy``)."""
    base = state.session_model(registry)
    st.subheader("Fine-tune the active model")
    st.caption(
        f"Starts from **{base.name}** (this session's model) and trains it on the chosen "
        "dataset for the given minutes, in the background like training."
        if base is not None
        else "No model is active: pick or add one first."
    )
    names = {dataset.name: dataset for dataset in datasets}
    if st.session_state.get("finetune_dataset", next(iter(names))) not in names:  # removed since
        for key in ("finetune_dataset", "kept_finetune_dataset"):
            st.session_state.pop(key, None)
    with st.form("finetune_form"):
        chosen = state.kept(
            st.selectbox, "Dataset", key="finetune_dataset", default=next(iter(names)),
            options=list(names),
        )  # fmt: skip
        first, second = st.columns(2)
        minutes = state.kept(
            first.number_input, "Minutes", key="finetune_minutes", default=10,
            min_value=1, max_value=240, help="Fine-tuning ends after this time; the best "
            "epoch so far is kept.",
        )  # fmt: skip
        name = state.kept(second.text_input, "Run name (optional)", key="finetune_name", default="")
        submitted = st.form_submit_button(
            "Queue fine-tuning (starts when the running job ends)" if busy else "Start fine-tuning",
            type="primary",
        )
    if submitted:
        start_finetune(registry, base, names.get(chosen), minutes, name, user)


def start_finetune(registry: Registry, base, dataset, minutes, name: str, user: User) -> None:
    """Check the base model and the dataset, then start the fine-tuning job and rerun."""
    if base is None or not has_model_file(base):
        st.error("No active model to fine-tune: pick a model in the sidebar or add one below.")
        return
    if dataset is None or not user_read.dataset_images(dataset.name, user.datasets_root):
        st.error(
            f"The dataset {plain(getattr(dataset, 'name', ''))} holds no image to fine-tune on."
        )
        return
    with messages.engine_errors():
        from nuclei_core.training import finetune_config

        config = finetune_config(
            base_model=base.model_path,
            data=str(dataset.folder),
            out="",  # jobs.start_training puts every run in its own folder
            minutes=float(minutes),
            name=name.strip() or None,
        )
        training_start.start_or_queue(config, registry, user)
