"""Browse page: score every image of a dataset folder, find the failures, inspect one image.

Scores are computed once per (model, folder, split) and shared by all sessions
(``ui.state.folder_results``); the chosen image is ``st.session_state["browse_selected"]``.
"""

import streamlit as st

from nuclei_core import evaluate, export
from nuclei_core.locations import PROJECT_ROOT, sample_folder
from ui import labels, messages, navigation, pictures, state

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
    "(optionally under train/ and test/). Relative paths start at the project folder.",
)
split = st.selectbox(
    "Images",
    ["all", "test", "val", "train"],
    key="browse_split",
    format_func=lambda name: "all images" if name == "all" else f"{name} split",
)


def _pick(sample_id: str) -> None:
    st.session_state["browse_selected"] = sample_id


with messages.engine_errors():
    folder = evaluate.check_dataset_folder(folder_text)
    key = (model_key, str(folder), split)
    result = state.folder_results().get(key)
    if result is None:
        automatic = folder == default_folder.resolve()
        if not (automatic or st.button("Segment and score these images", key="browse_start")):
            st.caption(f"Press the button to segment every image of {folder} with {run.name}.")
            st.stop()
        bar = st.progress(0.0, text="Segmenting…")
        result = evaluate.evaluate_folder(
            model,
            folder,
            split,
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
        st.error(f"{result.folder}: no image could be scored")
        st.stop()

    summary = evaluate.summarize_by_kind(result.results)["all"]
    st.caption(f"{summary['n_images']} images of {result.folder} scored with {run.name}")
    items = labels.mean_score_items(summary)
    for column, (label, text) in zip(st.columns(len(items)), items, strict=True):
        column.metric(label, text)
    with st.expander("Scores per image type and per image"):
        st.dataframe(evaluate.kind_summary_frame(result.results), hide_index=True)
        table = evaluate.results_frame(result.results)
        st.dataframe(table, hide_index=True)
        st.download_button(
            "Download scores (CSV)",
            export.table_csv(table),
            file_name="scores.csv",
            mime="text/csv",
            on_click="ignore",
            key="browse_download",
        )

    kinds = sorted({item.kind for item in result.results})
    controls = st.columns(3)
    order = controls[0].radio(
        "Order", ["Worst first", "Best first"], horizontal=True, key="browse_order"
    )
    chosen_kinds = controls[1].multiselect("Image types", kinds, default=kinds, key="browse_kinds")
    shown = controls[2].number_input("Images shown", 4, 400, 24, 4, key="browse_shown")
    ordered = evaluate.order_results(
        result.results, worst_first=order == "Worst first", kinds=chosen_kinds
    )

    for index, item in enumerate(ordered[: int(shown)]):
        if index % 4 == 0:
            gallery = st.columns(4)
        with gallery[index % 4]:
            st.image(
                result.thumbnails[item.id],
                caption=f"{item.id} · DSB {item.scores.dsb_score:.2f} · "
                f"{item.scores.n_pred}/{item.scores.n_true} nuclei",
                width="stretch",
            )
            st.button("Inspect", key=f"browse_pick_{item.id}", on_click=_pick, args=(item.id,))

    st.subheader("Ground truth vs prediction")
    ids = [item.id for item in ordered] or [item.id for item in result.results]
    if st.session_state.get("browse_selected") not in ids:
        st.session_state["browse_selected"] = ids[0]
    selected = st.selectbox("Image", ids, key="browse_selected")
    item = result.result(selected)
    views = evaluate.sample_views(result.samples[selected], item)
    pictures.show_pictures(
        [
            (views["truth"], "Ground truth"),
            (views["prediction"], "Prediction"),
            (views["errors"], "Errors"),
        ]
    )
    pictures.show_error_legend()
    scores = item.scores
    st.caption(
        f"{item.kind} image · DSB {scores.dsb_score:.3f} · F1 {scores.f1:.3f} · "
        f"Dice {scores.dice:.3f} · {scores.n_pred} found, {scores.n_true} true nuclei"
    )
