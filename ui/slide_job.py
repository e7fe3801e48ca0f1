"""The Streamlit side of the "Segment a whole slide" page: a slide in a background thread.

:class:`SlideJob` runs :func:`nuclei_core.slides.segment.segment_slide` as a
``ui.background.BackgroundJob``: it waits for its turn among the server's batches and
slides, goes on while its user is on another page, and writes into a folder of its own
(:func:`nuclei_core.slides.outputs.slide_output_folder`), so earlier results stay as they
were; a stopped or failed run removes only its own unfinished folder. ``ui.background.follow``
shows the progress; :func:`download_buttons` the outputs. Session-state key:
``slide_job``, the session's latest job.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import streamlit as st

from nuclei_core.slides.outputs import zip_folder
from nuclei_core.slides.segment import SlideResult, segment_slide
from ui.background import BackgroundJob, work_queue
from ui.progress import format_eta

JOB_KEY = "slide_job"


class _Stopped(Exception):
    """Raised from the progress callback: the user asked the slide to stop."""


class SlideJob(BackgroundJob):
    """Segment one slide into ``out`` (a new folder); ``result`` once it is done.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "notes.txt").write_text("not a slide")
    >>> job = SlideJob(None, folder / "notes.txt", folder / "run", None, False).start()
    >>> job.wait(30), job.error[:26], (folder / "run").exists()
    (True, 'notes.txt: not a TIFF file', False)
    """

    thread_name = "nuclei-slide"
    stop_label, stop_key, what = "Stop", "slide_stop", "slide"

    def __init__(self, model, path, out, options, geojson: bool) -> None:
        super().__init__()
        self.model, self.path, self.out = model, Path(path), Path(out)
        self.options, self.geojson = options, geojson
        self.done, self.total = 0, 0
        self.result: SlideResult | None = None

    def work(self) -> None:
        try:
            self.result = segment_slide(
                self.model,
                self.path,
                self.out,
                self.options,
                progress=self._on_progress,
                geojson=self.geojson,
            )
        except _Stopped:
            self.stopped = True
        finally:
            if self.result is None:  # stopped or failed: its own unfinished folder goes
                shutil.rmtree(self.out, ignore_errors=True)

    def error_text(self, error: BaseException) -> str:
        text = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
        return text.replace(f"{self.path.parent}/", "")  # the file's name, not its folder

    def _on_progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self.stop_requested:
            raise _Stopped

    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    def progress_text(self) -> str:
        """The progress bar's text: tiles done and the time left."""
        if not self.done:
            return "Reading the slide"
        left_s = (time.monotonic() - self.started) / self.done * (self.total - self.done)
        return f"{self.done} of {self.total} tiles, {format_eta(left_s)} left"


def current_job() -> SlideJob | None:
    """The session's latest slide job, if any."""
    return st.session_state.get(JOB_KEY)


def start_job(model, path, out, options, geojson: bool) -> SlideJob:
    """Stop the session's running slide, if any, and start a new one in the server's queue."""
    previous = current_job()
    if previous is not None:
        previous.stop()
    job = SlideJob(model, path, out, options, geojson).start(work_queue())
    st.session_state[JOB_KEY] = job
    return job


DOWNLOADS = {
    "labels": ("Label image (OME-Zarr, zipped)", "application/zip"),
    "csv": ("Measurements (CSV)", "text/csv"),
    "geojson": ("QuPath detections (GeoJSON)", "application/geo+json"),
    "overview": ("Overview (PNG)", "image/png"),
}


def _reader(path: Path):
    """The bytes of ``path`` when the button is clicked (a zip for the label folder)."""

    def read():
        return (zip_folder(path) if path.is_dir() else path).read_bytes()

    return read


def download_buttons(result: SlideResult) -> None:
    """One download button per output of the run; files are read when clicked."""
    columns = st.columns(len(result.outputs))
    for column, (kind, path) in zip(columns, result.outputs.items(), strict=True):
        label, mime = DOWNLOADS[kind]
        column.download_button(
            label,
            _reader(path),
            file_name=path.name + (".zip" if path.is_dir() else ""),
            mime=mime,
            on_click="ignore",
            key=f"slide_download_{kind}",
        )
