"""The Streamlit side of the "Segment a folder" page: a batch in a background thread.

:class:`BatchJob` runs :func:`nuclei_core.batch.images.segment_batch` in a daemon thread
(a ``ui.background.BackgroundJob``, in turn with other sessions' batches and slides), so
the session's script is never blocked: other pages stay usable while it runs and the
batch goes on while the user is elsewhere.  ``ui.background.follow`` shows its progress in an
``st.fragment`` that reruns itself every second while the job runs and reruns the page
once when it ends.  Session-state key: ``batch_job``, the session's latest job.
"""

from __future__ import annotations

import threading

import streamlit as st

from nuclei_core.batch.archive import batch_zip
from nuclei_core.batch.images import BatchItem, BatchProgress, segment_batch
from nuclei_core.errors import one_line
from nuclei_core.segmentation.options import SegmentOptions
from ui.background import BackgroundJob, work_queue
from ui.progress import format_eta

JOB_KEY = "batch_job"


class BatchJob(BackgroundJob):
    """Segment images in a background thread; the page reads ``items`` and ``progress``.

    Parameters
    ----------
    model : keras.Model or runtime.OpenVinoModel
    sources : list of path or (str, bytes)
        What :func:`nuclei_core.batch.images.segment_batch` takes.
    options : SegmentOptions
    model_name : str
        Shown beside the results.
    pixel_size : float, optional
        Micrometres per pixel of every image (default: each file's own, if any).

    Examples
    --------
    >>> job = BatchJob(None, [("a.png", b"not an image")], SegmentOptions(), "none").start()
    >>> job.wait(30)
    True
    >>> [item.status for item in job.items], job.error
    (['failed'], None)
    """

    thread_name = "nuclei-batch"
    stop_label, stop_key, what = "Stop after this image", "batch_stop", "batch"

    def __init__(self, model, sources, options: SegmentOptions, model_name: str, pixel_size=None):
        super().__init__()
        self.model = model
        self.pixel_size = pixel_size
        self.sources = list(sources)
        self.names = source_names(self.sources)  # kept when the sources go
        self.options = options
        self.model_name = model_name
        self.total = len(self.sources)
        self.items: list[BatchItem] = []
        self.progress = BatchProgress(0, self.total, 0.0)
        self._zip: bytes | None = None
        self._zip_lock = threading.Lock()

    def work(self) -> None:
        batch = segment_batch(
            self.model,
            self.sources,
            self.options,
            self._on_progress,
            pixel_size=self.pixel_size,
        )
        try:
            for item in batch:
                self.items.append(item)
                if self.stop_requested:
                    self.stopped = len(self.items) < self.total
                    break
        finally:
            batch.close()

    def error_text(self, error: BaseException) -> str:
        return f"The batch stopped at image {len(self.items) + 1}: {one_line(error)}"

    def finish(self) -> None:
        self.sources = []  # uploaded bytes are no longer needed

    def _on_progress(self, progress: BatchProgress) -> None:
        self.progress = progress

    def fraction(self) -> float:
        return self.progress.fraction

    def progress_text(self) -> str:
        return progress_text(self.progress)

    def zip_bytes(self) -> bytes:
        """The zip of every output (:func:`nuclei_core.batch.archive.batch_zip`), built once."""
        with self._zip_lock:
            if self._zip is None:
                self._zip = batch_zip(self.items)
            return self._zip


def progress_text(progress: BatchProgress) -> str:
    """The progress bar's text: images done and the time left.

    Examples
    --------
    >>> progress_text(BatchProgress(done=2, total=8, elapsed=40.0))
    'Image 2 of 8 done · about 2 min left'
    >>> progress_text(BatchProgress(done=0, total=8, elapsed=0.0))
    'Segmenting 8 images…'
    >>> progress_text(BatchProgress(done=0, total=1, elapsed=0.0))
    'Segmenting 1 image…'
    """
    if not progress.done:
        return f"Segmenting {progress.total} image{'' if progress.total == 1 else 's'}…"
    return (
        f"Image {progress.done} of {progress.total} done · {format_eta(progress.eta_seconds)} left"
    )


def outcome_text(job: BatchJob) -> str:
    """One line on a finished job: how many images were segmented, failed, left out.

    Examples
    --------
    >>> job = BatchJob(None, [], SegmentOptions(), "tiny")
    >>> job.items = [BatchItem("a.png", "a"), BatchItem("b.png", "b", status="failed")]
    >>> job.total, job.seconds, job.stopped = 3, 4.2, True
    >>> outcome_text(job)
    '3 images with tiny: 1 segmented, 1 failed, 1 not done (stopped) in 4 s'
    """
    ok = sum(item.ok for item in job.items)
    parts = [f"{ok} segmented", f"{len(job.items) - ok} failed"]
    if len(job.items) < job.total:
        parts.append(
            f"{job.total - len(job.items)} not done" + (" (stopped)" if job.stopped else "")
        )
    images = f"{job.total} image{'s' if job.total != 1 else ''}"
    return f"{images} with {job.model_name}: {', '.join(parts)} in {job.seconds:.0f} s"


def summary_column_config() -> dict:
    """How the summary table shows its columns: rounded numbers, a wide message column."""
    return {
        "count": st.column_config.NumberColumn("nuclei", format="%d"),
        "mean_area": st.column_config.NumberColumn("mean area", format="%.1f"),
        "area_unit": st.column_config.TextColumn("area unit"),
        "mean_intensity": st.column_config.NumberColumn("mean intensity", format="%.1f"),
        "pixel_size_um": st.column_config.NumberColumn("µm per pixel", format="%.4g"),
        "diameter_px": st.column_config.NumberColumn(
            "nucleus diameter (px)", format="%.3g", help="given or estimated; empty: as it is"
        ),
        "seconds": st.column_config.NumberColumn("seconds", format="%.2f"),
        "message": st.column_config.TextColumn("reason or warning", width="large"),
    }


def show_failures(job: BatchJob, most: int = 10) -> None:
    """One warning listing the files that failed, each with its reason (the first ``most``)."""
    reasons = [item.message for item in job.items if not item.ok]
    if not reasons:
        return
    lines = [f"- {reason}" for reason in reasons[:most]]
    if len(reasons) > most:
        lines.append(f"- … and {len(reasons) - most} more (see the table)")
    files = f"{len(reasons)} file{'s' if len(reasons) != 1 else ''}"
    st.warning(
        f"{files} could not be segmented; the rest of the batch went on:\n" + "\n".join(lines)
    )


def current_job() -> BatchJob | None:
    """The session's latest batch job, if any."""
    return st.session_state.get(JOB_KEY)


def source_names(sources) -> list[str]:
    """What a batch segments, by name: upload names or server paths.

    Examples
    --------
    >>> from pathlib import Path
    >>> source_names([("a.png", b"..."), Path("/data/b.tif")])
    ['a.png', '/data/b.tif']
    """
    return [source[0] if isinstance(source, tuple) else str(source) for source in sources]


def start_job(model, sources, options: SegmentOptions, model_name: str, pixel_size=None):
    """Stop the session's running job, if any, and start a new one (see :class:`BatchJob`)."""
    previous = current_job()
    if previous is not None:
        previous.stop()
    job = BatchJob(model, sources, options, model_name, pixel_size).start(work_queue())
    st.session_state[JOB_KEY] = job
    return job
