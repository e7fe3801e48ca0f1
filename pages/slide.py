"""Segment a whole slide: a large TIFF the server reads, segmented tile by tile.

A slide of many gigabytes is not uploaded: the page takes the path of a TIFF, OME-TIFF or
BigTIFF on the server and runs :func:`nuclei_core.slides.segment.segment_slide` with the
session's model (bounded memory, whatever the size) in the background
(``ui.slide_job``): it waits for its turn among the server's jobs, goes on while the user
is on another page, and writes each run into a new folder of the user's
(``<user folder>/slides/<file name>-<hash>/<time>/``: label image as OME-Zarr, CSV,
overview PNG, and QuPath's GeoJSON when asked), so nothing earlier is touched.
Then: the count, a downsampled overview with the nuclei drawn, the table and downloads.
Session-state key: ``slide_job`` (see ``ui.slide_job``).
"""

import streamlit as st

from nuclei_core.segmentation.options import SegmentOptions, model_settings
from nuclei_core.slides.outputs import slide_output_folder
from ui import background, messages, navigation, pictures, signin, slide_job, state, wording
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

job = slide_job.current_job()
if st.button(
    "Segment the slide",
    type="primary",
    disabled=not path_text.strip() or (job is not None and job.running),
    key="slide_go",
):
    with messages.engine_errors():
        path = signin.server_path(path_text.strip())
        settings = model_settings(run.model_path)  # its card's, e.g. the minimum confidence
        options = SegmentOptions(threshold=threshold, min_size=min_size, **settings)
        out = slide_output_folder(path, signin.current_user().data_root)
        job = slide_job.start_job(model, path, out, options, geojson)

if job is None:
    st.caption("Name a slide file on the server, then segment it tile by tile.")
    st.stop()
if job.running:
    background.follow(job)
    st.stop()
if job.error:
    st.error(job.error)
if job.stopped:
    st.info("The slide was stopped; its unfinished outputs were removed.")
result = job.result
if result is None:
    st.stop()

height, width = result.shape
st.metric("Nuclei", f"{result.count:,}")
where = (
    f" Outputs in `{result.outputs['labels'].parent}`."
    if signin.current_user().name is None
    else ""
)
st.caption(
    f"{wording.plain(result.path.name)}: {height:,} x {width:,} pixels in {result.tiles} tiles, "
    f"{result.seconds['total']:.0f} s.{where}"
)
slide_job.download_buttons(result)
st.image(pictures.display_size(result.overview), caption="Overview with the nuclei outlined")
table = result.table()
st.dataframe(table, hide_index=True, column_config=wording.column_config(table.columns))
