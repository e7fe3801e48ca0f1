"""What segmenting a slide writes: where, the CSV rows, the GeoJSON stream and the overview.

:func:`slide_outputs` names the files :func:`nuclei_core.slides.segment.segment_slide`
writes (the app puts each run in a new :func:`slide_output_folder` and offers the label
image as one :func:`zip_folder`); :func:`write_rows` appends
one tile's measurements to the CSV file, :func:`feature_stream` streams its QuPath
detections into a GeoJSON FeatureCollection, and :class:`Overview` keeps the downsampled
picture of the slide with its nuclei drawn, filled in window by window.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "Overview",
    "encode_picture",
    "feature_stream",
    "slide_output_folder",
    "slide_outputs",
    "write_rows",
    "zip_folder",
]

OVERVIEW_SIDE = 2048
"""The longest side of the overview picture."""


def slide_output_folder(path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """A new folder for one run on a slide (not created here):
    ``<root>/slides/<file stem>-<hash of its full path>/<UTC date and time>``.

    Two slides of the same name in different folders get different folders, and every
    run its own, so a new run never touches an earlier run's results. ``root`` is the
    data folder by default (a signed-in user's own folder in the app,
    :func:`nuclei_core.access.users.user_folder`).

    Examples
    --------
    >>> from nuclei_core.locations import data_folder
    >>> first = slide_output_folder("/scans/a/case 7.tif")
    >>> first.parent.parent == data_folder() / "slides", first.parent.name[:7]
    (True, 'case 7-')
    >>> slide_output_folder("/scans/b/case 7.tif").parent != first.parent
    True
    """
    import hashlib
    from datetime import UTC, datetime

    from nuclei_core.locations import data_folder

    source = Path(path).expanduser().absolute()
    digest = hashlib.sha256(str(source).encode()).hexdigest()[:8]
    slide = Path(root or data_folder()) / "slides" / f"{source.stem}-{digest}"
    moment = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S")
    folder, number = slide / moment, 1
    while folder.exists():  # two runs within a second
        number += 1
        folder = slide / f"{moment}-{number}"
    return folder


def zip_folder(folder: str | os.PathLike) -> Path:
    """``<folder>.zip`` beside a folder (an OME-Zarr label image), written once, atomically;
    stored without compression (Zarr chunks are compressed already). Its path.

    Examples
    --------
    >>> import tempfile, zipfile
    >>> store = Path(tempfile.mkdtemp()) / "scan_labels.ome.zarr"
    >>> (store / "0").mkdir(parents=True); _ = (store / "0" / "c").write_bytes(b"chunk")
    >>> zipfile.ZipFile(zip_folder(store)).namelist()
    ['scan_labels.ome.zarr/0/c']
    """
    import zipfile

    from nuclei_core.storage import atomic_path

    folder = Path(folder)
    target = folder.with_name(folder.name + ".zip")
    if target.is_file():
        return target
    with atomic_path(target) as temporary, zipfile.ZipFile(temporary, "w") as archive:
        for member in sorted(folder.rglob("*")):
            if member.is_file():
                archive.write(member, member.relative_to(folder.parent).as_posix())
    return target


def slide_outputs(out: str | os.PathLike, stem: str, geojson: bool = False) -> dict[str, Path]:
    """The files :func:`~nuclei_core.slides.segment.segment_slide` writes for an image named
    ``stem`` into ``out``.

    The overview comes last: it is written once every other output is complete.

    Examples
    --------
    >>> list(slide_outputs("out", "scan", geojson=True))
    ['labels', 'csv', 'geojson', 'overview']
    >>> slide_outputs("out", "scan")["labels"].as_posix()
    'out/scan_labels.ome.zarr'
    """
    folder = Path(out)
    outputs = {
        "labels": folder / f"{stem}_labels.ome.zarr",
        "csv": folder / f"{stem}_nuclei.csv",
        "geojson": folder / f"{stem}_nuclei.geojson",
        "overview": folder / f"{stem}_overview.png",
    }
    if not geojson:
        del outputs["geojson"]
    return outputs


@contextlib.contextmanager
def feature_stream(path: Path | None):
    """Yield ``write(features)``, which appends GeoJSON features to a FeatureCollection
    at ``path``, written atomically when the block ends well; None writes nothing.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "nuclei.geojson"
    >>> with feature_stream(target) as write:
    ...     write([{"type": "Feature"}]); write([{"type": "Feature"}])
    >>> len(json.loads(target.read_text())["features"])
    2
    """
    from nuclei_core.storage import atomic_path

    if path is None:
        yield lambda features: None
        return
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        handle.write('{"type":"FeatureCollection","features":[')
        written = 0

        def write(features):
            nonlocal written
            for feature in features:
                handle.write(("," if written else "") + json.dumps(feature, separators=(",", ":")))
                written += 1

        yield write
        handle.write("]}")


class Overview:
    """A downsampled copy of the slide and of its labels, filled in window by window.

    Examples
    --------
    >>> overview = Overview((4000, 3000), colour=False, dtype=np.uint8)
    >>> overview.step, overview.image.shape
    (2, (2000, 1500))
    >>> overview.add(np.full((10, 10), 9, np.uint8), np.ones((10, 10), np.int32), 3, 0)
    >>> int(overview.image[2:7, 0].min()), int(overview.labels[7, 0])
    (9, 0)
    """

    def __init__(self, shape: tuple[int, int], colour: bool, dtype):
        self.step = max(1, -(-max(shape) // OVERVIEW_SIDE))
        size = (-(-shape[0] // self.step), -(-shape[1] // self.step))
        self.image = np.zeros(size + ((3,) if colour else ()), dtype)
        self.labels = np.zeros(size, np.int32)

    def _place(self, target: np.ndarray, region: np.ndarray, top: int, left: int) -> None:
        first_row, first_column = -top % self.step, -left % self.step
        sampled = region[first_row :: self.step, first_column :: self.step]
        row, column = (top + first_row) // self.step, (left + first_column) // self.step
        target[row : row + sampled.shape[0], column : column + sampled.shape[1]] = sampled

    def add(self, image: np.ndarray, labels: np.ndarray, top: int, left: int) -> None:
        """Place a window's pixels and labels, whose first pixel is ``(top, left)``."""
        self._place(self.image, image, top, left)
        self._place(self.labels, labels, top, left)

    def picture(self) -> np.ndarray:
        """The overview with the nuclei drawn: ``uint8 (h, w, 3)``."""
        from nuclei_core.io.render import overlay
        from nuclei_core.segmentation.preprocess import to_display_rgb

        return overlay(to_display_rgb(self.image), self.labels, alpha=0.25)


def write_rows(writer, table: pd.DataFrame, top: int, left: int, pixel_size) -> None:
    """Append one tile's measurements, positions moved from the window to the slide."""
    table["centroid_y_px"] += top
    table["centroid_x_px"] += left
    if pixel_size:
        table["centroid_y_um"] += top * pixel_size
        table["centroid_x_um"] += left * pixel_size
    writer.writerows(table.itertuples(index=False, name=None))


def encode_picture(picture: np.ndarray) -> bytes:
    """The overview as PNG bytes (written by Pillow)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()
