"""Encoding results for download or disk: PNG, 16-bit label PNG, label TIFF, CSV bytes.

Arrays in, bytes or arrays out; nothing here writes a file (``storage`` does).
"""

from __future__ import annotations

import numpy as np

from nuclei_core.errors import ImageReadError, InputError, InputTypeError

__all__ = [
    "encode_png",
    "labels_png16",
    "labels_tiff",
    "labels_to_uint16",
    "mask_png",
    "table_csv",
]


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a ``uint8``/``uint16`` greyscale or ``uint8`` RGB array.

    Label images with up to 65,535 nuclei fit a 16-bit PNG.

    Examples
    --------
    >>> encode_png(np.zeros((2, 2), np.uint16))[:4]
    b'\\x89PNG'
    """
    import cv2

    array = np.asarray(array)
    if array.dtype not in (np.uint8, np.uint16):
        raise InputTypeError(f"PNG data must be uint8 or uint16, got {array.dtype}")
    if array.ndim == 3:
        array = array[..., ::-1]  # OpenCV writes BGR
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise ImageReadError(f"cannot encode an array of shape {array.shape} as PNG")
    return encoded.tobytes()


def labels_to_uint16(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    """Label image as ``uint16`` for a 16-bit PNG; refuses more than 65,535 nuclei.

    Examples
    --------
    >>> labels_to_uint16(np.array([[0, 2]], np.int32)).dtype
    dtype('uint16')
    """
    labels = np.asarray(labels)
    if labels.size and int(labels.max()) > np.iinfo(np.uint16).max:
        raise InputError(f"{name}: {int(labels.max())} nuclei do not fit a 16-bit image")
    return labels.astype(np.uint16)


def mask_png(labels: np.ndarray) -> bytes:
    """Binary mask PNG of a label image: nuclei 255, background 0.

    Examples
    --------
    >>> mask_png(np.array([[0, 3]]))[:4]
    b'\\x89PNG'
    """
    return encode_png(((np.asarray(labels) > 0) * 255).astype(np.uint8))


def labels_png16(labels: np.ndarray) -> bytes:
    """16-bit label PNG (0 = background, 1..N = nuclei); refuses more than 65,535 nuclei.

    Examples
    --------
    >>> labels_png16(np.array([[0, 3]]))[:4]
    b'\\x89PNG'
    """
    return encode_png(labels_to_uint16(labels))


def labels_tiff(labels: np.ndarray) -> bytes:
    """Label image as a compressed TIFF (16-bit, 32-bit above 65,535 nuclei).

    Examples
    --------
    >>> import io, tifffile
    >>> labels = np.zeros((4, 4), np.int32); labels[1:3, 1:3] = 70_000
    >>> tifffile.imread(io.BytesIO(labels_tiff(labels))).dtype
    dtype('uint32')
    """
    import io

    import tifffile

    labels = np.asarray(labels)
    dtype = np.uint16 if (not labels.size or labels.max() <= 65535) else np.uint32
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, labels.astype(dtype), compression="zlib")
    return buffer.getvalue()


def table_csv(table) -> bytes:
    """A table (``pandas.DataFrame``) as UTF-8 CSV bytes, without the index.

    Examples
    --------
    >>> import pandas as pd
    >>> table_csv(pd.DataFrame({"label": [1], "area": [49]}))
    b'label,area\\n1,49\\n'
    """
    return table.to_csv(index=False).encode("utf-8")
