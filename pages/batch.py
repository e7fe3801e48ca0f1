"""Segment a folder: many uploaded images, or a folder the server can read, in one batch.

The batch runs in a background thread (``ui.batch.BatchJob``), so the other pages stay
usable; a fragment shows its progress.  Then: a summary table (one row per image, a
bad file's row with its reason), counts per image, thumbnails with outlines and one
zip of every output.  Session-state key: ``batch_job`` (see ``ui.batch``).
"""

import streamlit as st

from nuclei_core.batch.images import folder_images, summary_frame
from nuclei_core.segmentation.options import SegmentOptions
from ui import background, batch, diameter, messages, navigation, signin, state, uploads, wording
from ui.threshold import instance_inputs

navigation.ensure_app_shell(__file__)
st.title("Segment a folder")
registry = state.registry()
run, model, model_key = state.require_model(registry)
if model is None:
    st.stop()

source = st.radio(
    "Images", ["Upload images", "A folder on the server"], horizontal=True, key="batch_source"
)
sources = []
if source == "Upload images":
    files = st.file_uploader(
        "Microscopy images (PNG, JPEG or TIFF)",
        type=uploads.IMAGE_TYPES,
        accept_multiple_files=True,
        key="batch_upload",
    )
    sources = [(file.name, file.getvalue()) for file in files or []]
else:
    folder_text = st.text_input(
        "Folder",
        key="batch_folder",
        help="Every PNG, JPEG and TIFF image directly in this folder (not its sub-folders). "
        "On your own machine relative paths start at the project folder. "
        + wording.SERVER_PATHS_HELP,
    )
    if folder_text.strip():
        with messages.engine_errors():
            sources = folder_images(signin.server_path(folder_text))

left, middle, size, scale, right = st.columns(5)
threshold, min_size = instance_inputs("batch", left, middle)
sizes = diameter.model_options(run, where=size, key="batch_diameter")
pixel_size = scale.number_input(
    "Pixel size (µm per pixel)",
    min_value=0.0001,
    max_value=20.0,
    value=None,
    format="%.4f",
    placeholder="from each file, else pixels",
    key="batch_pixel_size",
    help="Sizes in µm and µm² with a pixel size. Left empty, each TIFF's own pixel size is "
    "used where the file records one; other images are measured in pixels.",
)
tta = right.checkbox(
    "Test-time flips",
    key="batch_tta",
    help="Average the prediction over 4 flipped copies: slower, slightly more accurate.",
)

job = batch.current_job()
busy = job is not None and job.running
images_word = "image" if len(sources) == 1 else "images"
if st.button(
    f"Segment {len(sources)} {images_word} with {wording.plain(run.name)}",
    type="primary",
    disabled=not sources or busy,
    key="batch_start",
):
    options = SegmentOptions(threshold=threshold, min_size=min_size, tta=tta, **sizes)
    job = batch.start_job(model, sources, options, run.name, pixel_size)
if job is None:
    st.caption("Upload images or name a folder, then segment them all at once.")
    st.stop()

if sources and not job.running and batch.source_names(sources) != job.names:
    st.caption(  # the last batch's results and failures were of other images
        f"Press the button to segment these {len(sources)} {images_word}; the results of the "
        "last batch, of other images, are not shown."
    )
    st.stop()
background.follow(job)
if job.running:
    st.stop()
if job.error:
    st.error(job.error)

st.subheader("Summary")
st.caption(batch.outcome_text(job))
batch.show_failures(job)
summary = summary_frame(job.items)
st.dataframe(summary, hide_index=True, column_config=batch.summary_column_config())
st.download_button(
    "Download every output (zip)",
    job.zip_bytes(),
    file_name="nuclei_batch.zip",
    mime="application/zip",
    on_click="ignore",
    key="batch_download",
    help="Per image: mask PNG, 16-bit label PNG, measurements CSV; "
    "all nuclei in nuclei.csv (with the image name), the summary in summary.csv.",
)

segmented = [item for item in job.items if item.ok]
if segmented:
    st.subheader("Nuclei per image")
    st.bar_chart(summary[summary["status"] == "ok"], x="image", y="count", horizontal=True)
    st.subheader("Outlines")
    most = max(4, len(segmented))
    shown = int(st.number_input("Thumbnails shown", 4, most, min(24, most), 4, key="batch_shown"))
    if shown < len(segmented):
        st.caption(f"{shown} of {len(segmented)} shown; every output is in the zip.")
    for index, item in enumerate(segmented[:shown]):
        if index % 4 == 0:
            gallery = st.columns(4)
        gallery[index % 4].image(
            item.thumbnail, caption=f"{item.name} · {item.count} nuclei", width="stretch"
        )
