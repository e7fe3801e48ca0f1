"""Segment page widgets for what an image file holds: channel, plane and pixel size.

The channel and plane pickers appear only for images that have several channels
(not the colours of an RGB image) or several planes.  The pixel size field starts
at the value the file records, each time another file is shown, and says where its
value came from.  Session-state keys: ``segment_channel``, ``segment_plane``,
``segment_every_channel``, ``segment_pixel_size`` and ``segment_pixel_size_file``
(the file whose recorded value the field was last set to).
"""

from __future__ import annotations

import streamlit as st

from nuclei_core.io.channels import MAX_PROJECTION, ImageStack, list_channels, list_planes

__all__ = ["channel_and_plane", "pixel_size_input", "pixel_size_text"]


def channel_and_plane(stack: ImageStack) -> tuple[int | None, object, bool]:
    """``(channel, plane, every_channel)`` chosen; ``(None, None, False)`` for a plain image."""
    channel = plane = None
    every_channel = False
    if not (stack.is_multichannel or stack.n_planes > 1):
        return channel, plane, every_channel
    left, middle, right = st.columns(3)
    if stack.is_multichannel:
        names = list_channels(stack)
        channel = left.selectbox(
            "Nuclear channel",
            range(len(names)),
            format_func=names.__getitem__,
            key="segment_channel",
            help="The channel that shows the nuclei (DAPI, Hoechst ...); 0 is the first.",
        )
        every_channel = right.checkbox(
            "Measure every channel",
            key="segment_every_channel",
            help="Adds the mean intensity of each channel to the table, one column per channel.",
        )
    if stack.n_planes > 1:
        names = list_planes(stack)
        plane = middle.selectbox(
            f"Plane ({len(names)} in the file)",
            [*range(len(names)), MAX_PROJECTION],
            format_func=lambda value: (
                "Maximum projection" if value == MAX_PROJECTION else names[value]
            ),
            key="segment_plane",
            help="Which plane of the z-stack or time series to segment, or the brightest of all.",
        )
    return channel, plane, every_channel


def pixel_size_text(value: float, recorded: float | None, source: str) -> str:
    """One line on where the pixel size comes from.

    Examples
    --------
    >>> pixel_size_text(0.5, 0.5, "OME-TIFF metadata")
    'Read from the file (OME-TIFF metadata): sizes in µm.'
    >>> pixel_size_text(0.0, None, "")
    'The file records no pixel size: sizes in pixels. Enter one for µm.'
    """
    if value <= 0:
        if recorded:
            return f"Sizes in pixels (the file records {recorded:g} µm per pixel)."
        return "The file records no pixel size: sizes in pixels. Enter one for µm."
    if recorded and abs(value - recorded) <= 1e-9 * recorded:
        return f"Read from the file ({source}): sizes in µm."
    if recorded:
        return f"Set by you (the file records {recorded:g} µm per pixel): sizes in µm."
    return "Set by you: sizes in µm."


def pixel_size_input(stack: ImageStack, file_key: str, where=None) -> float | None:
    """Micrometres per pixel to measure in, or None for pixels; starts at the file's value."""
    recorded = stack.pixel_size.um
    if st.session_state.get("segment_pixel_size_file") != file_key:
        st.session_state["segment_pixel_size_file"] = file_key
        st.session_state["segment_pixel_size"] = float(recorded or 0.0)
    where = where or st
    value = where.number_input(
        "Pixel size (µm per pixel)",
        min_value=0.0,
        max_value=1000.0,
        step=0.01,
        format="%.4f",
        key="segment_pixel_size",
        help="0 = unknown: measurements in pixels. Otherwise areas in µm², lengths in µm.",
    )
    where.caption(pixel_size_text(value, recorded, stack.pixel_size.source))
    return float(value) if value > 0 else None
