"""Segment a whole slide: a large TIFF the server reads, segmented tile by tile.

A slide of many gigabytes is not uploaded: the page takes the path of a TIFF, OME-TIFF or
BigTIFF on the server and runs :func:`nuclei_core.slides.segment.segment_slide` with the
session's model (bounded memory, whatever the size); the outputs go to
``<data folder>/slides/<file name>/`` (label image as OME-Zarr, CSV, overview PNG, and
QuPath's GeoJSON when asked).
Then: the count, a downsampled overview with the nuclei drawn, and the table.
Session-state key: ``slide_result`` (the last :class:`~nuclei_core.slides.segment.SlideResult`).
"""

import time

import streamlit as st

from nuclei_core.segmentation.options import SegmentOptions, model_settings
from nuclei_core.slides.outputs import slide_output_folder
from nuclei_core.slides.segment import segment_slide
from ui import messages, navigation, pictures, progress, signin, state, wording
from ui.threshold import instance_inputs

navigation.ensure_app_shell(__file__)
st.title("Segment a whole slide")
registry = state.registry()
run, model, model_key = state.require_model(registry)
if model is None:
    st.stop()

path_text = st.text_input(
    "Slide file on the server",
    key="slide_path",
    help="A TIFF, OME-TIFF or BigTIFF (grey or RGB; level 0 of a pyramid) the server can read. "
    "On your own machine relative paths start at the project folder. " + wording.SERVER_PATHS_HELP,
)
left, middle, right = st.columns(3)
threshold, min_size = instance_inputs("slide", left, middle)
geojson = right.checkbox(
    "Also write QuPath detections (GeoJSON)",
    key="slide_geojson",
    help="Every nucleus as a detection with its measurements, for QuPath's File > Import objects.",
)

if st.button("Segment the slide", type="primary", disabled=not path_text.strip(), key="slide_go"):
    bar, started = st.progress(0.0, text="Reading the slide"), time.monotonic()

    def show_progress(done, total):
        left_s = (time.monotonic() - started) / done * (total - done)
        bar.progress(
            done / total, text=f"{done} of {total} tiles, {progress.format_eta(left_s)} left"
        )

    with messages.engine_errors():
        path = signin.server_path(path_text.strip())
        settings = model_settings(run.model_path)  # its card's, e.g. the minimum confidence
        options = SegmentOptions(threshold=threshold, min_size=min_size, **settings)
        st.session_state["slide_result"] = segment_slide(
            model,
            path,
            slide_output_folder(path),
            options,
            progress=show_progress,
            geojson=geojson,
        )
    bar.empty()

result = st.session_state.get("slide_result")
if result is None:
    st.caption("Name a slide file on the server, then segment it tile by tile.")
    st.stop()

height, width = result.shape
st.metric("Nuclei", f"{result.count:,}")
st.caption(
    f"{result.path.name}: {height:,} x {width:,} pixels in {result.tiles} tiles, "
    f"{result.seconds['total']:.0f} s. Outputs in `{result.outputs['labels'].parent}`."
)
st.image(pictures.display_size(result.overview), caption="Overview with the nuclei outlined")
table = result.table()
st.dataframe(table, hide_index=True, column_config=wording.column_config(table.columns))
