"""Segment page: find, count and measure the nuclei of one uploaded or sample image.

Threshold and minimum size rerun only a fragment, the cheap part (instances from the cached
probabilities, ``st.session_state["segment_probabilities"]``); a new image, model
or the test-time-flips switch runs the network again.  A multi-channel or multi-page
image gets a channel and a plane (or maximum projection) picker; the pixel size
(read from the file, or typed) puts the measurements in µm.  Downloads: mask, label
PNG and TIFF, CSV, Fiji ROI set, QuPath GeoJSON, overlay.  Optional ground truth adds
scores and an error overlay.  "Correct the nuclei" swaps the overlay for the annotator
(``ui.annotator``): the count, measurements and downloads then use the corrected labels,
which can be saved into a user dataset; without a model one annotates from scratch.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import streamlit as st

from nuclei_core.datasets.folders import flat_mask
from nuclei_core.evaluation.evaluate import compare_labels, sample_images
from nuclei_core.io import export, render
from nuclei_core.io.channels import channel_images, read_stack, select_image
from nuclei_core.io.uploads import image_digest, read_ground_truth
from nuclei_core.segmentation.measure import measure_nuclei
from nuclei_core.segmentation.options import SegmentOptions
from nuclei_core.segmentation.preprocess import image_kind, to_display_rgb
from nuclei_core.segmentation.segment import nuclei_from_probabilities
from ui import (
    annotator,
    background,
    diameter,
    downloads,
    images,
    messages,
    navigation,
    pictures,
    state,
    uploads,
)
from ui.threshold import confidence_note, instance_inputs, threshold_note
from ui.wording import plain, score_items

DOWNLOAD_LABELS = {
    "mask": "Mask (PNG)",
    "labels": "Labels (16-bit PNG)",
    "csv": "Measurements (CSV)",
    "roi": "Fiji ROI set (zip)",
    "geojson": "QuPath detections (GeoJSON)",
    "tiff": "Labels (TIFF)",
    "overlay": "Overlay (PNG)",
}
DOWNLOAD_FORMATS = {**export.FORMATS, "overlay": ("_overlay.png", "image/png")}

navigation.ensure_app_shell(__file__)
st.title("Segment an image")
registry = state.registry()
run, model, model_key = state.require_model(registry)
if model is None:
    st.caption("Without a model you can still draw the nuclei of an image yourself.")

samples = sample_images()
source = "Upload an image"
if samples:
    source = st.radio(
        "Image", ["Upload an image", "Use a sample image"], horizontal=True, key="segment_source"
    )
data = name = sample_truth = None
if source == "Upload an image":
    upload = st.file_uploader(
        f"Microscopy image (PNG, JPEG or TIFF, up to {uploads.SEGMENT_SIDE} x "
        f"{uploads.SEGMENT_SIDE} pixels; larger images on the folder or slide page)",
        type=uploads.IMAGE_TYPES,
        key="segment_upload",
    )
    if upload is not None:
        data, name = upload.getvalue(), upload.name
else:
    chosen = st.selectbox(
        "Sample image", samples, format_func=lambda path: path.name, key="segment_sample"
    )
    data, name = chosen.read_bytes(), chosen.name
    sample_truth = flat_mask(chosen)

tta, sizes = False, {}
tta_column, diameter_column, pixel_column = st.columns(3)
if model is not None:
    tta = tta_column.checkbox(
        "Test-time flips",
        key="segment_tta",
        help="Average the prediction over 4 flipped copies: slower, slightly more accurate.",
    )
    sizes = diameter.model_options(run, where=diameter_column)

if data is None:
    st.caption("Upload an image, or pick one of the bundled samples, to find its nuclei.")
    st.stop()


@st.fragment
def nuclei_view(image, probabilities, measures, options, found):
    """Everything the threshold and minimum size change, rerun alone when they move; ``found``
    are the nuclei the size estimate found (used as they are at the default threshold and
    size)."""
    threshold, min_size = 0.5, 15
    if model is not None:
        left, middle = st.columns(2)
        threshold, min_size = instance_inputs("segment", left, middle)
        left.caption(threshold_note(probabilities))
        if options.min_confidence:
            left.caption(confidence_note(options.min_confidence))
    options = replace(options, threshold=threshold, min_size=min_size)
    with messages.engine_errors():
        show_nuclei(image, probabilities, measures, options, found)


def show_nuclei(image, probabilities, measures, options, found=None):
    """Count, pictures or annotator, measurements, downloads and the ground-truth comparison."""
    rgb = to_display_rgb(image)
    if model is not None:
        labels, table = nuclei_from_probabilities(
            probabilities, image, options, found=found, **measures
        )
    correcting = st.toggle(
        "Correct the nuclei",
        value=model is None,
        key="segment_correct",
        help="Delete, add, split, merge or paint nuclei; save the result for fine-tuning.",
    )
    if model is None and not correcting:
        return
    if correcting:
        made_by = None if model is None else (model_key, options)
        start = labels if model is not None else np.zeros(image.shape[:2], np.int32)
        correction = annotator.correction_for(image_key, start, rgb, made_by)
        labels = correction.labels
        table = measure_nuclei(labels, intensity_image=image, **measures)
    count = int(labels.max())
    drawn = render.overlay(rgb, labels)

    st.metric("Nuclei corrected" if correcting else "Nuclei found", count)
    st.caption(
        f"{plain(name)}: {image.shape[1]} x {image.shape[0]} pixels, {image_kind(image)} image, "
        + (f"model {plain(run.name)}" if run is not None else "no model")
    )
    if model is not None:
        st.caption(
            diameter.diameter_caption(sizes["diameter"], options.diameter, sizes["model_diameter"])
        )
    if correcting:
        annotator.annotator(image_key, correction)
        annotator.restart_buttons(image_key, correction, start, made_by)
        annotator.save_form(
            image_key, correction, name, image, image_kind(image), None if run is None else run.name
        )
    else:
        pictures.show_pictures(
            [
                (rgb, "Image", "Input image"),
                (drawn, f"{count} nuclei (filled, with outlines)", "Nuclei overlay"),
                (
                    render.probability_rgb(probabilities),
                    "Nucleus probability (dark 0, yellow 1)",
                    "Probability map",
                ),
            ]
        )

    st.subheader("Measurements")
    st.dataframe(table, hide_index=True)

    stem = Path(name).stem
    formats, notes = export.fitting_formats(labels, export.FORMATS)
    for note in notes:
        st.caption(note)
    files = export.encode_outputs(labels, table, formats, measures["pixel_size"])
    files["overlay"] = export.encode_png(drawn)
    downloads.download_buttons(
        [
            downloads.DownloadFile(DOWNLOAD_LABELS[kind], f"{stem}{suffix}", mime, files[kind])
            for kind, (suffix, mime) in DOWNLOAD_FORMATS.items()
            if kind in files
        ],
        key="segment_downloads",
    )

    st.subheader("Compare with ground truth (optional)")
    truth_data = truth_name = None
    if sample_truth is not None and st.checkbox(
        "Use the sample's ground truth", value=True, key="segment_use_sample_truth"
    ):
        truth_data, truth_name = sample_truth.read_bytes(), sample_truth.name
    else:
        truth = st.file_uploader(
            "Ground truth: binary mask, label image, or zip of one mask per nucleus",
            type=uploads.GROUND_TRUTH_TYPES,
            key="segment_truth",
        )
        if truth is not None:
            truth_data, truth_name = truth.getvalue(), truth.name
    if truth_data is not None:
        compare_with_truth(truth_data, truth_name, image, rgb, labels, drawn)


def compare_with_truth(truth_data, truth_name, image, rgb, labels, drawn):
    """Scores against the ground truth and the truth / prediction / error pictures."""
    true_labels, notes = read_ground_truth(truth_data, truth_name, image.shape)
    messages.show_warnings(notes)
    scores, errors = compare_labels(true_labels, labels)
    for column, (label, text) in zip(st.columns(6), score_items(scores), strict=True):
        column.metric(label, text)
    st.caption(
        f"{scores.n_true} true nuclei, {scores.n_pred} found; F1 and DSB match nuclei "
        "at IoU > 0.5 (DSB averages IoU thresholds 0.5 to 0.95)."
    )
    truth_rgb = render.overlay(rgb, true_labels)
    error_rgb = render.error_overlay(rgb, errors)
    view = st.radio("View", ["Side by side", "Slider"], horizontal=True, key="segment_compare_view")
    if view == "Side by side":
        pictures.show_pictures(
            [(truth_rgb, "Ground truth"), (drawn, "Prediction"), (error_rgb, "Errors")]
        )
    else:
        split = st.slider("Ground truth ◀ ▶ prediction", 0.0, 1.0, 0.5, 0.01, key="segment_split")
        pictures.show_pictures(
            [
                (
                    render.split_view(truth_rgb, drawn, split),
                    "Left of the line: ground truth; right: prediction",
                ),
                (error_rgb, "Errors"),
            ],
            widths=[2, 1],
        )
    pictures.show_error_legend()


with messages.engine_errors():
    stack = read_stack(data, name=name, max_pixels=uploads.SEGMENT_MAX_PIXELS)
    messages.show_warnings(stack.notes)
    digest = image_digest(data)
    channel, plane, every_channel = images.channel_and_plane(stack)
    pixel_size = images.pixel_size_input(stack, digest, where=pixel_column)
    image = select_image(stack, channel, plane)
    measures = {"pixel_size": pixel_size, "channel_images": None}
    if every_channel:
        measures["channel_images"] = channel_images(stack, plane)
    options = SegmentOptions(tta=tta, **sizes)
    probabilities = found = None
    if model is not None:
        key = (digest, channel, plane, model_key, tta, options.diameter)
        probabilities, options, found = state.probabilities(key, model, image, options)
    image_key = (digest, channel, plane)
    nuclei_view(image, probabilities, measures, options, found)
background.release_memory()  # what this run's arrays held goes back to the system
