"""Browse page: score every image of a dataset folder, find the failures, inspect one image.

Scores are computed once per (model, folder, split) and shared by all sessions
(``ui.state.folder_results``). "Inspect" opens the image's ground truth, prediction
and errors in a dialog over the gallery; the chosen image is
``st.session_state["browse_selected"]``. The bundled samples are all test images,
so their folder is scored whole, without a split to choose.
"""

import streamlit as st

from nuclei_core.evaluation import evaluate
from nuclei_core.io import export
from nuclei_core.locations import PROJECT_ROOT, sample_folder
from nuclei_core.segmentation.options import SegmentOptions
from ui import background, messages, navigation, pictures, signin, state, wording

navigation.ensure_app_shell(__file__)
st.title("Browse a test set")
registry = state.registry()
run, model, model_key = state.require_model(registry)
if model is None:
    st.stop()

default_folder = sample_folder()
default_text = (
    "sample_images" if default_folder == PROJECT_ROOT / "sample_images" else str(default_folder)
)
folder_text = st.text_input(
    "Dataset folder",
    value=default_text,
    key="browse_folder",
    help="Either layout: <id>/images/ + <id>/masks/ (Kaggle, BBBC038) or inputs/ + masks/ "
    "(optionally under train/ and test/). On your own machine relative paths start at the "
    "project folder. " + wording.SERVER_PATHS_HELP,
)


def _inspect(sample_id: str) -> None:
    st.session_state["browse_selected"] = sample_id
    st.session_state["browse_open"] = True


def _inspect_found() -> None:
    if st.session_state.get("browse_find"):
        _inspect(st.session_state["browse_find"])


@st.dialog("Ground truth vs prediction", width="large")
def show_detail(result, sample_id: str) -> None:
    """One image's ground truth, prediction, error map and scores, over the gallery."""
    item = result.result(sample_id)
    views = evaluate.sample_views(result.samples[sample_id], item)
    st.caption(
        f"{sample_id} · {item.kind} image · {item.scores.n_pred} nuclei found, "
        f"{item.scores.n_true} true"
    )
    pictures.show_pictures(
        [
            (views["truth"], "Ground truth"),
            (views["prediction"], "Prediction"),
            (views["errors"], "Errors"),
        ]
    )
    pictures.show_error_legend()
    items = wording.score_items(item.scores)
    for column, (label, text) in zip(st.columns(len(items)), items, strict=True):
        column.metric(label, text, help=wording.help_text(label))


with messages.engine_errors():
    folder = evaluate.check_dataset_folder(signin.server_path(folder_text))
    automatic = folder == default_folder.resolve()
    if automatic:
        split = "all"
        st.caption(wording.SAMPLES_NOTE)
    else:
        split = st.selectbox(
            "Images",
            list(wording.SPLIT_CHOICES),
            key="browse_split",
            format_func=wording.SPLIT_CHOICES.get,
            help=wording.SPLIT_HELP,
        )
    key = (model_key, str(folder), split)
    result = state.folder_results().get(key)
    if result is None:
        if not (automatic or st.button("Segment and score these images", key="browse_start")):
            st.caption(
                f"Press the button to segment every image of {wording.plain(folder)} with "
                f"{wording.plain(run.name)}."
            )
            st.stop()
        bar = st.progress(0.0, text="Segmenting…")
        with background.turn(bar):
            result = evaluate.evaluate_folder(
                model,
                folder,
                split,
                SegmentOptions.for_model(run.model_path),  # as the Segment page runs it
                progress=lambda done, total: bar.progress(
                    done / total, text=f"Segmenting image {done} of {total}"
                ),
            )
        bar.empty()
        state.remember_folder_result(key, result)

    if result.problems:
        with st.expander(f"{len(result.problems)} files were skipped"):
            st.text("\n".join(result.problems))
    if not result.results:
        st.error(f"{wording.plain(result.folder)}: no image could be scored")
        st.stop()

    summary = evaluate.summarize_by_kind(result.results)["all"]
    st.caption(
        f"{summary['n_images']} images of {wording.plain(result.folder)} scored with "
        f"{wording.plain(run.name)}"
    )
    items = wording.mean_score_items(summary)
    for column, (label, text) in zip(st.columns(len(items)), items, strict=True):
        column.metric(label, text, help=wording.help_text(label))
    with st.expander("Scores per image type and per image"):
        kinds_table = evaluate.kind_summary_frame(result.results)
        st.dataframe(
            kinds_table, hide_index=True, column_config=wording.column_config(kinds_table.columns)
        )
        table = evaluate.results_frame(result.results)
        st.dataframe(table, hide_index=True, column_config=wording.column_config(table.columns))
        st.download_button(
            "Download scores (CSV)",
            export.table_csv(table),
            file_name="scores.csv",
            mime="text/csv",
            on_click="ignore",
            key="browse_download",
        )

    kinds = sorted({item.kind for item in result.results})
    controls = st.columns([2, 3, 2, 3])
    order = controls[0].radio(
        "Order", ["Worst first", "Best first"], horizontal=True, key="browse_order"
    )
    chosen_kinds = controls[1].pills(
        "Image types", kinds, selection_mode="multi", default=kinds, key="browse_kinds"
    )
    shown = controls[2].number_input("Images shown", 4, 400, 24, 4, key="browse_shown")
    controls[3].selectbox(
        "Inspect an image by name",
        [item.id for item in result.results],
        index=None,
        placeholder="Choose an image",
        key="browse_find",
        on_change=_inspect_found,
    )
    if not chosen_kinds:
        st.info("Choose at least one image type.")
        st.stop()
    ordered = evaluate.order_results(
        result.results, worst_first=order == "Worst first", kinds=chosen_kinds
    )
    visible = ordered[: int(shown)]
    st.caption(wording.gallery_note(len(visible), len(ordered), order == "Worst first"))

    for index, item in enumerate(visible):
        if index % 4 == 0:
            gallery = st.columns(4)
        with gallery[index % 4]:
            st.image(
                pictures.square_picture(result.thumbnails[item.id]),
                caption=f"{item.id} · DSB {item.scores.dsb_score:.2f} · "
                f"{item.scores.n_pred} found / {item.scores.n_true} true",
                width="stretch",
            )
            st.button("Inspect", key=f"browse_pick_{item.id}", on_click=_inspect, args=(item.id,))

    if st.session_state.pop("browse_open", False):
        selected = st.session_state.get("browse_selected")
        if selected in result.samples:
            show_detail(result, selected)
