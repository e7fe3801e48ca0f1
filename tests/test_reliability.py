"""Reliability and security (issue 5): bad input and hostile files never break it.

Every bad input of the issue goes through the core reader (``imread.read_image``,
``groundtruth.read_labels``), the command line (``python -m nuclei_core predict``) and the
Segment page's upload widgets (``AppTest``); ground truth that does not fit, dataset
folders with unpaired or broken files, training parameters out of range, random
bytes and arrays (hypothesis), hostile ``.keras`` files, the Streamlit server
settings and dataset paths typed into the app.  Faults (killed processes, disk
full, concurrent writers) are in ``test_reliability_faults.py``.

Each test ends with ``record(case, what the user sees)``: with
``NUCLEI_RELIABILITY_LOG`` set, ``python tests/reliability_report.py`` collects
those lines into the table of ``docs/RELIABILITY.md``.  Without it, ``record``
does nothing.
"""

from __future__ import annotations

import inspect
import io as stdio
import json
import os
import re
import struct
import subprocess
import sys
import tomllib
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from support import (
    APP,
    REPORT_ENV,
    ROOT,
    app_page,
    jpeg_bytes,
    png_bytes,
    png_claiming,
    record,
    sha256,
    tiff_bytes,
    zip_bytes,
)

from nuclei_core.datasets import folders as datasets
from nuclei_core.errors import (
    ConfigError,
    DatasetError,
    GroundTruthError,
    ImageReadError,
    InputError,
    ModelLoadError,
    NucleiError,
)
from nuclei_core.evaluation import metrics
from nuclei_core.io import groundtruth, imread
from nuclei_core.segmentation import preprocess

APP_TIMEOUT = 90  # seconds per AppTest script run on a loaded 2-core machine


# --------------------------------------------------------------------------- file makers


def nuclei_image(size=(64, 64), seed=0) -> np.ndarray:
    """uint8 grey image: a few bright discs on a dark noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: size[0], : size[1]]
    image = rng.normal(20, 4, size)
    for _ in range(4):
        cy, cx = rng.uniform(10, size[0] - 10), rng.uniform(10, size[1] - 10)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = 200
    return np.clip(image, 0, 255).astype(np.uint8)


def tiff_header_claiming(width: int, height: int) -> bytes:
    """A small valid TIFF whose width/length tags are rewritten to ``width`` x ``height``."""
    data = bytearray(tiff_bytes(np.zeros((8, 8), np.uint8)))
    assert data[:4] == b"II*\x00"
    offset = struct.unpack("<I", data[4:8])[0]
    (count,) = struct.unpack("<H", data[offset : offset + 2])
    for index in range(count):
        entry = offset + 2 + 12 * index
        tag, kind = struct.unpack("<HH", data[entry : entry + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength
            value = width if tag == 256 else height
            if kind == 3:  # SHORT
                data[entry + 8 : entry + 12] = struct.pack("<HH", value, 0)
            else:  # LONG
                data[entry + 8 : entry + 12] = struct.pack("<I", value)
    return bytes(data)


def hot_pixel_image() -> np.ndarray:
    """16-bit image: background 100, nuclei 1000, one hot pixel at 65535."""
    image = np.full((64, 64), 100, np.uint16)
    image[nuclei_image() > 100] = 1000
    image[5, 5] = 65535
    return image


def float_image(with_bad_values: bool = False) -> np.ndarray:
    image = nuclei_image().astype(np.float32) / 255.0
    if with_bad_values:
        image[0, 0], image[0, 1], image[0, 2] = np.nan, np.inf, -np.inf
    return image


def palette_png() -> bytes:
    buffer = stdio.BytesIO()
    rgb = Image.fromarray(np.dstack([nuclei_image()] * 3))
    rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(buffer, format="PNG")
    return buffer.getvalue()


def multipage_tiff() -> bytes:
    pages = np.stack([nuclei_image(seed=seed) for seed in range(3)])
    return tiff_bytes(pages, photometric="minisblack")


# Refused files: name -> (file name, bytes, the problem named in the one-line message).
REFUSED_IMAGES = {
    "image-empty": ("empty.png", lambda: b"", "file is empty"),
    "image-text-as-png": (
        "notes.png",
        lambda: b"Nuclei counts, plate 3\nwell A1: 52\n" * 20,
        "not a PNG, JPEG or TIFF image",
    ),
    "image-pdf-as-png": (
        "report.png",
        lambda: b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n",
        "not a PNG, JPEG or TIFF image",
    ),
    "image-truncated-png": (
        "cut.png",
        lambda: png_bytes(nuclei_image())[:200],
        "truncated or corrupt image",
    ),
    "image-truncated-jpeg": (
        "cut_jpeg.jpg",
        lambda: jpeg_bytes(Image.fromarray(nuclei_image()))[:400],
        "truncated or corrupt image",
    ),
    "image-truncated-tiff": (
        "cut_tiff.tif",
        lambda: tiff_bytes(nuclei_image())[:300],
        "truncated or corrupt TIFF",
    ),
    "image-bomb": ("bomb.png", lambda: png_claiming(60000, 60000), "over the limit"),
    "image-bomb-tiff": ("bomb2.tif", lambda: tiff_header_claiming(60000, 60000), "over the limit"),
    "image-all-nan": (
        "all_nan.tif",
        lambda: tiff_bytes(np.full((16, 16), np.nan, np.float32)),
        "no finite pixel values",
    ),
}

# Odd but valid files: name -> (file name, bytes, expected shape, warning expected or None).
ODD_IMAGES = {
    "image-1x1": ("dot.png", lambda: png_bytes(np.full((1, 1), 200, np.uint8)), (1, 1), None),
    "image-3x5000": (
        "strip.png",
        lambda: png_bytes(np.tile(nuclei_image()[:3, :50], (1, 100))),
        (3, 5000),
        None,
    ),
    "image-multipage-tiff": ("stack.tif", multipage_tiff, (64, 64), "multi-page TIFF"),
    "image-float-tiff": ("float.tif", lambda: tiff_bytes(float_image()), (64, 64), None),
    "image-16bit-hot-pixel": ("hot16.png", lambda: png_bytes(hot_pixel_image()), (64, 64), None),
    "image-cmyk-jpeg": (
        "cmyk.jpg",
        lambda: jpeg_bytes(Image.fromarray(np.dstack([nuclei_image()] * 3)).convert("CMYK")),
        (64, 64, 3),
        None,
    ),
    "image-palette-png": ("palette.png", lambda: palette_png(), (64, 64, 3), None),
    "image-nan-inf": ("nan.tif", lambda: tiff_bytes(float_image(True)), (64, 64), "NaN/inf"),
}


# --------------------------------------------------------------------------- core reader


@pytest.mark.parametrize("case", sorted(REFUSED_IMAGES))
def test_bad_image_is_refused_with_one_line_naming_file_and_problem(case, tmp_path):
    file_name, make, problem = REFUSED_IMAGES[case]
    path = tmp_path / file_name
    path.write_bytes(make())
    with pytest.raises(ImageReadError) as caught:
        imread.read_image(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message
    assert "\n" not in message
    # the same bytes as an upload (bytes + name) give the same message
    with pytest.raises(ImageReadError, match=re.escape(f"{file_name}: ")):
        imread.read_image(path.read_bytes(), name=file_name)
    record(case, message.replace(str(tmp_path) + os.sep, ""))


def _refuse_decoding(monkeypatch):
    """Make any pixel decoding fail loudly: the bomb must be refused from its header."""
    from PIL import ImageFile

    def no_decoding(*args, **kwargs):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(tifffile.TiffPage, "asarray", no_decoding)


@pytest.mark.parametrize("maker", [png_claiming, tiff_header_claiming])
def test_decompression_bomb_is_refused_from_the_header_before_decoding(maker, monkeypatch):
    data = maker(60000, 60000)
    _refuse_decoding(monkeypatch)
    with pytest.raises(ImageReadError, match=r"bomb: image is 60000 x 60000 = 3,600,000,000"):
        imread.read_image(data, name="bomb")
    case = "image-bomb" if maker is png_claiming else "image-bomb-tiff"
    record(case, "refused from the header; decoding never called")


def test_pixel_budget_is_configurable():
    image = png_bytes(np.zeros((20, 30), np.uint8))
    assert imread.read_image(image, max_pixels=600).shape == (20, 30)
    with pytest.raises(ImageReadError, match=r"20 = 600 pixels, over the limit of 599"):
        imread.read_image(image, name="x.png", max_pixels=599)
    # NUCLEI_MAX_PIXELS sets the default budget (read at each call)
    code = (
        "import sys; from nuclei_core import errors\nfrom nuclei_core.io import imread\n"
        "try:\n    imread.read_image(sys.stdin.buffer.read(), name='x.png')\n"
        "except errors.ImageReadError as error:\n    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=image,
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "NUCLEI_MAX_PIXELS": "500", "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=True,
    )
    assert "over the limit of 500" in done.stdout.decode()
    record("image-pixel-budget", done.stdout.decode().strip())


@pytest.mark.parametrize("case", sorted(ODD_IMAGES))
def test_odd_but_valid_image_is_read_and_normalised(case, tmp_path):
    file_name, make, shape, warning = ODD_IMAGES[case]
    path = tmp_path / file_name
    path.write_bytes(make())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = imread.read_image(path)
    notes = [str(item.message) for item in caught]
    assert image.shape == shape
    if warning:
        assert len(notes) == 1 and warning in notes[0] and str(path) in notes[0], notes
    else:
        assert not notes, notes
    model_input = preprocess.to_model_input(image)
    assert model_input.shape == shape[:2] + (3,) and model_input.dtype == np.float32
    assert np.isfinite(model_input).all()
    assert 0.0 <= model_input.min() and model_input.max() <= 1.0
    size = f"{image.shape[1]} x {image.shape[0]} {image.dtype}" + (
        " RGB" if image.ndim == 3 else ""
    )
    record(case, notes[0].replace(str(tmp_path) + os.sep, "") if notes else f"read as {size}")


def test_hot_pixel_does_not_flatten_a_16_bit_image():
    image = imread.read_image(png_bytes(hot_pixel_image()))
    model_input = preprocess.to_model_input(image)[..., 0]
    nuclei = hot_pixel_image() == 1000
    # percentile scaling: nuclei stay bright; min-max scaling would give them 0.014
    assert model_input[nuclei].mean() > 0.95
    assert model_input[~nuclei].mean() < 0.05
    seen = "nuclei scaled to about 1.0 despite the 65535 pixel (min-max scaling: 0.014)"
    record("image-16bit-hot-pixel", seen)


def test_cmyk_and_palette_images_become_rgb_with_their_colours():
    grey = nuclei_image()
    for data in (
        jpeg_bytes(Image.fromarray(np.dstack([grey] * 3)).convert("CMYK")),
        palette_png(),
    ):
        image = imread.read_image(data)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert np.abs(image.mean(axis=-1) - grey.astype(float)).mean() < 12
    record("image-cmyk-jpeg", "read as RGB with the original intensities")
    record("image-palette-png", "read as RGB with the original intensities")


def test_nan_and_inf_pixels_become_the_lowest_value_with_a_warning():
    with pytest.warns(UserWarning, match=r"nan\.tif: 3 NaN/inf pixels set to the lowest value"):
        image = imread.read_image(tiff_bytes(float_image(True)), name="nan.tif")
    assert np.isfinite(image).all() and image[0, 0] == image.min()
    # an array handed to the conversions directly is made finite too
    raw = float_image(True)
    for convert in (preprocess.to_model_input, preprocess.to_display_rgb, preprocess.normalise):
        converted = convert(raw)
        assert np.isfinite(converted.astype(float)).all()
    with pytest.raises(InputError, match="no finite pixel values"):
        preprocess.to_model_input(np.full((4, 4), np.nan))
    record("image-nan-inf", "nan.tif: 3 NaN/inf pixels set to the lowest value")


# --------------------------------------------------------------------------- command line


TF_STARTUP_LOG = re.compile(
    r"^([IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]|WARNING: All log "
    r"messages before absl::InitializeLog|To enable the following)"
)


def _quiet_env() -> dict:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


CLI_PROBLEMS = {"image-bomb-tiff": "shorter than its header says"}
"""Where the CLI words a problem otherwise: a TIFF over 4096 x 4096 goes to the tiled
slide reader, for which a header claiming 60000 x 60000 pixels is a file too short."""


def test_cli_predict_finishes_good_files_and_names_each_bad_one(tiny_model_file, tmp_path):
    folder, out = tmp_path / "images", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    (folder / "good.png").write_bytes(png_bytes(nuclei_image()))
    for _case, (file_name, make, _shape, _warning) in ODD_IMAGES.items():
        (folder / file_name).write_bytes(make())
    for _case, (file_name, make, _problem) in REFUSED_IMAGES.items():
        (folder / file_name).write_bytes(make())
    earlier = out / "earlier_mask.png"  # a result of an earlier run: must not be touched
    earlier.write_bytes(png_bytes(np.zeros((4, 4), np.uint8)))
    before = {earlier: sha256(earlier), tiny_model_file: sha256(tiny_model_file)}

    done = subprocess.run(
        [sys.executable, "-m", "nuclei_core", "predict", str(folder), "--out", str(out)]
        + ["--model", str(tiny_model_file)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_quiet_env(),
        timeout=300,
    )
    stdout, stderr = done.stdout, done.stderr
    assert done.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr
    good = ["good.png"] + [name for name, *_ in ODD_IMAGES.values()]
    for name in good:
        stem = Path(name).stem
        assert re.search(rf"^{re.escape(name)}: \d+ nuclei", stdout, re.M), stdout
        for suffix in ("_mask.png", "_labels.png", "_nuclei.csv"):
            assert (out / f"{stem}{suffix}").is_file()
    error_lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == len(REFUSED_IMAGES), stderr
    for case, (file_name, _make, problem) in REFUSED_IMAGES.items():
        line = next(line for line in error_lines if f"{folder / file_name}: " in line)
        assert CLI_PROBLEMS.get(case, problem) in line
        record(case, line.replace(str(folder) + os.sep, ""), channel="cli")
    summary = f"{len(REFUSED_IMAGES)} of {len(good) + len(REFUSED_IMAGES)} inputs failed:"
    assert summary in stderr
    warned = [line for line in stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 2 and all(str(folder) in line for line in warned), stderr
    # every other stderr line belongs to the summary: nothing from PIL or tifffile (only
    # TensorFlow's start-up log, which its C++ core prints before Python can silence it)
    others = set(stderr.splitlines()) - set(error_lines) - set(warned) - {summary}
    others = {line for line in others if not TF_STARTUP_LOG.match(line)}
    assert others <= {f"  {line[len('error: ') :]}" for line in error_lines}, others
    assert {path: sha256(path) for path in before} == before
    for case, (file_name, *_rest) in ODD_IMAGES.items():
        line = next(line for line in stdout.splitlines() if line.startswith(f"{file_name}: "))
        record(case, line, channel="cli")
    record("cli-folder", f"exit status 1; {summary}", channel="cli", kept=len(before))


# --------------------------------------------------------------------------- ground truth


def mask(size=(64, 64)) -> np.ndarray:
    return ((nuclei_image(size) > 100) * 255).astype(np.uint8)


def corrupt_member_zip() -> bytes:
    data = bytearray(zip_bytes({"a.png": png_bytes(mask()), "b.png": png_bytes(mask())}))
    data[60] ^= 0xFF  # inside the first member's data: its CRC no longer matches
    return bytes(data)


# name -> (file name, bytes, read_labels options, the problem named in the message)
BAD_GROUND_TRUTH = {
    "truth-wrong-size": (
        "small.png",
        lambda: png_bytes(mask((32, 48))),
        {},
        "differs from image size",
    ),
    "truth-not-binary": (
        "mask.png",
        lambda: png_bytes(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 7),
        {"kind": "binary"},
        "binary mask has 7 different values",
    ),
    "truth-empty": ("empty_mask.png", lambda: png_bytes(np.zeros((64, 64), np.uint8)), {}, "empty"),
    "truth-zip-non-image": (
        "masks.zip",
        lambda: zip_bytes({"1.png": png_bytes(mask()), "readme.txt": b"made by hand"}),
        {},
        "readme.txt: not a PNG, JPEG or TIFF image",
    ),
    "truth-zip-traversal": (
        "masks.zip",
        lambda: zip_bytes({"1.png": png_bytes(mask()), "../x.png": png_bytes(mask())}),
        {},
        "unsafe path '../x.png' in zip",
    ),
    "truth-zip-absolute": (
        "masks.zip",
        lambda: zip_bytes({"/etc/x.png": png_bytes(mask())}),
        {},
        "unsafe path '/etc/x.png' in zip",
    ),
    "truth-zip-corrupt": ("masks.zip", corrupt_member_zip, {}, "corrupt zip file"),
    "truth-zip-no-masks": ("masks.zip", lambda: zip_bytes({".hidden": b""}), {}, "no mask images"),
}


@pytest.mark.parametrize("case", sorted(BAD_GROUND_TRUTH))
def test_ground_truth_that_does_not_fit_is_refused(case):
    file_name, make, options, problem = BAD_GROUND_TRUTH[case]
    with pytest.raises(GroundTruthError) as caught:
        groundtruth.read_labels(make(), name=file_name, shape=(64, 64), **options)
    message = str(caught.value)
    assert message.startswith(file_name) and problem in message and "\n" not in message
    record(case, message)


def test_zip_member_is_never_written_to_disk(tmp_path, monkeypatch):
    """Zip members are read in memory: a traversal name cannot place a file anywhere."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inner").mkdir()
    monkeypatch.chdir(tmp_path / "inner")
    data = zip_bytes({"../x.png": png_bytes(mask())})
    with pytest.raises(GroundTruthError):
        groundtruth.read_labels(data, name="masks.zip")
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["inner"]
    record("truth-zip-traversal", "refused; nothing written anywhere")


# --------------------------------------------------------------------------- dataset folders


def write_flat(root: Path, stems, size=(64, 64)) -> None:
    for index, stem in enumerate(stems):
        height, width = size if not isinstance(size, list) else size[index]
        image = nuclei_image((height, width), seed=index)
        (root / "inputs").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        (root / "inputs" / f"{stem}.png").write_bytes(png_bytes(image))
        (root / "masks" / f"{stem}.png").write_bytes(
            png_bytes(((image > 100) * 255).astype(np.uint8))
        )


def test_dataset_lists_images_without_masks_and_masks_without_images(tmp_path):
    root = tmp_path / "data"
    write_flat(root, ["a", "b", "c"])
    (root / "inputs" / "lonely.png").write_bytes(png_bytes(nuclei_image()))
    (root / "masks" / "orphan_mask.png").write_bytes(png_bytes(mask()))
    dataset = datasets.discover_dataset(root)
    assert dataset.ids == ["a", "b", "c"]
    assert dataset.problems == (
        f"{root / 'inputs' / 'lonely.png'}: image without a mask",
        f"{root / 'masks' / 'orphan_mask.png'}: mask without an image",
    )
    for case, problem in zip(
        ["dataset-image-without-mask", "dataset-mask-without-image"], dataset.problems, strict=True
    ):
        record(case, problem.replace(str(root) + os.sep, ""))


def test_kaggle_dataset_lists_an_image_without_masks(tmp_path):
    root = tmp_path / "kaggle"
    for sample in ("s1", "s2"):
        (root / sample / "images").mkdir(parents=True)
        (root / sample / "images" / f"{sample}.png").write_bytes(png_bytes(nuclei_image()))
    (root / "s1" / "masks").mkdir()
    (root / "s1" / "masks" / "m1.png").write_bytes(png_bytes(mask()))
    dataset = datasets.discover_dataset(root)
    assert dataset.ids == ["s1"]
    assert dataset.problems == (
        f"{root / 's2' / 'images' / 's2.png'}: image without masks (no masks/ files)",
    )
    record("dataset-image-without-mask", dataset.problems[0].replace(str(root) + os.sep, ""))


def test_dataset_without_any_pair_is_refused(tmp_path):
    root = tmp_path / "data"
    (root / "inputs").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "inputs" / "a.png").write_bytes(png_bytes(nuclei_image()))
    with pytest.raises(DatasetError, match=r"no image/mask pairs found \(1 unpaired files\)"):
        datasets.discover_dataset(root)


def test_one_bad_file_among_good_ones_is_reported_and_skipped(tmp_path):
    from nuclei_core.evaluation import evaluate

    root = tmp_path / "data"
    write_flat(root, ["a", "b", "c", "d"])
    (root / "inputs" / "c.png").write_bytes(png_bytes(nuclei_image())[:150])  # truncated image
    (root / "masks" / "d.png").write_bytes(png_bytes(mask((40, 40))))  # mask of another size
    samples = list(datasets.discover_dataset(root).samples)
    arrays, problems = _load_training_data(samples, crop=32)
    assert len(arrays) == 2
    assert problems[0].startswith(f"{root / 'inputs' / 'c.png'}: truncated or corrupt image")
    assert problems[1].startswith(f"{root / 'masks' / 'd.png'}: mask size 40 x 40 differs")
    results, skipped = evaluate.evaluate_samples(lambda image: (image > 100).astype(int), samples)
    assert [result.id for result in results] == ["a", "b"] and skipped == problems
    record("dataset-one-bad-file", problems[0].replace(str(root) + os.sep, ""))


def test_cli_evaluate_lists_unpaired_and_skipped_files(tiny_model_file, tmp_path, capsys):
    from nuclei_core import cli

    root = tmp_path / "data"
    write_flat(root, ["a", "b", "c"])
    (root / "inputs" / "c.png").write_bytes(b"")  # an empty file among good ones
    (root / "inputs" / "lonely.png").write_bytes(png_bytes(nuclei_image()))
    (root / "masks" / "orphan.png").write_bytes(png_bytes(mask()))
    report = tmp_path / "report.json"
    status = cli.main(
        ["evaluate", "--data", str(root), "--split", "all", "--model", str(tiny_model_file)]
        + ["--json", str(report)]
    )
    captured = capsys.readouterr()
    assert status == 1 and "Traceback" not in captured.err
    lines = [line.replace(str(root) + os.sep, "") for line in captured.err.splitlines()]
    assert "unpaired: inputs/lonely.png: image without a mask" in lines
    assert "unpaired: masks/orphan.png: mask without an image" in lines
    assert "skipped: inputs/c.png: file is empty" in lines
    written = json.loads(report.read_text())
    assert [image["id"] for image in written["images"]] == ["a", "b"]
    assert len(written["unpaired"]) == 2 and len(written["skipped"]) == 1
    record("dataset-image-without-mask", "unpaired: inputs/lonely.png: image without a mask", "cli")
    record("dataset-mask-without-image", "unpaired: masks/orphan.png: mask without an image", "cli")
    record("dataset-one-bad-file", "skipped: inputs/c.png: file is empty", channel="cli")


def _load_training_data(samples, crop):
    from nuclei_core.training.data import load_training_data

    return load_training_data(samples, crop)


def test_mixed_image_sizes_train_in_fixed_size_crops(tmp_path):
    from nuclei_core.training.pipelines import training_dataset

    root = tmp_path / "data"
    sizes = [(64, 64), (40, 96), (100, 36), (20, 47)]
    write_flat(root, ["a", "b", "c", "d"], size=sizes)
    arrays, problems = _load_training_data(list(datasets.discover_dataset(root).samples), crop=32)
    assert not problems and len(arrays) == 4
    shapes = {array.model_input.shape[:2] for array in arrays}
    assert shapes == {(64, 64), (40, 96), (100, 36), (32, 47)}  # 20 rows padded to the crop
    data, _ = training_dataset(arrays, crop=32, batch_size=4, seed=0)
    images, targets = next(iter(data))
    assert tuple(images.shape) == (4, 32, 32, 3) and tuple(targets.shape) == (4, 32, 32, 2)
    record("dataset-mixed-sizes", "trained: every image padded to the crop and cropped")


# --------------------------------------------------------------------------- training parameters


def small_config(tmp_path, data, **changes):
    from nuclei_core.training import TrainConfig

    values = {
        "data": str(data),
        "out": str(tmp_path / "run"),
        "epochs": 1,
        "batch_size": 2,
        "crop": 32,
        "depth": 2,
        "base_filters": 4,
        "val_fraction": 0.3,
        "strategy": "none",
    }
    values.update(changes)
    return TrainConfig(**values)


@pytest.mark.parametrize(
    "case, changes, reason",
    [
        pytest.param(*row, id=row[0])
        for row in [
            ("train-epochs-0", {"epochs": 0}, "epochs must be at least 1, got 0"),
            ("train-batch-0", {"batch_size": 0}, "batch size must be at least 1, got 0"),
            ("train-learning-rate", {"learning_rate": 0.0}, "learning rate must be in (0, 1]"),
            ("train-crop-multiple", {"crop": 30}, "crop must be a positive multiple of 4, got 30"),
            (
                "train-val-fraction",
                {"val_fraction": 0.95},
                "validation fraction must be in (0, 0.9)",
            ),
            ("train-patience", {"patience": 0}, "patience must be at least 1, got 0"),
            (
                "train-batch-too-large",
                {"batch_size": 50},
                r"batch size 50 is larger than the \d training images",
            ),
            (
                "train-crop-too-large",
                {"crop": 256},
                "crop 256 is larger than every training image (largest side 64)",
            ),
        ]
    ],
)
def test_training_parameters_out_of_range_are_refused_before_any_work(
    case, changes, reason, tmp_path, monkeypatch
):
    from nuclei_core.training import run

    root = tmp_path / "data"
    write_flat(root, [f"img{index}" for index in range(10)])
    config = small_config(tmp_path, root, **changes)

    def no_work(*args, **kwargs):
        raise AssertionError("training work started")

    monkeypatch.setattr("nuclei_core.training.run.load_training_data", no_work)
    with pytest.raises(ConfigError) as caught:
        run.train(config)
    assert re.search(
        reason if reason.startswith("batch size 50") else re.escape(reason), str(caught.value)
    )
    assert not (tmp_path / "run").exists()
    record(case, str(caught.value))


def test_train_page_refuses_out_of_range_parameters_with_the_reason(tmp_path, monkeypatch):
    if not Path(APP).is_file():
        pytest.skip("app.py is not there")
    import psutil
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from nuclei_core.registry import Registry

    root = tmp_path / "dataset"
    write_flat(root, [f"img{index}" for index in range(10)])
    monkeypatch.setenv("NUCLEI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NUCLEI_DEFAULT_MODEL", str(tmp_path / "no-default.keras"))
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=APP_TIMEOUT)
    at.run()
    at.switch_page(app_page("train")).run()
    children = {child.pid for child in psutil.Process().children()}
    cases = {
        "train-batch-too-large": ({"train_batch_size": 256}, r"batch size 256 is larger than"),
        "train-crop-too-large": ({"train_crop": 1024}, r"crop 1024 is larger than every"),
    }
    for case, (values, reason) in cases.items():
        at.text_input(key="train_data").set_value(str(root))
        for key, value in {
            "train_depth": 2,
            "train_crop": 32,
            "train_batch_size": 2,
            **values,
        }.items():
            at.number_input(key=key).set_value(value)
        next(iter(at.get("form_submit_button"))).click().run()
        assert not at.exception, at.exception
        errors = _texts(at.error)
        assert len(errors) == 1 and re.search(reason, errors[0]), errors
        record(case, errors[0], channel="app")
    st.cache_resource.clear()
    assert Registry(tmp_path / "data" / "registry.sqlite3").list_runs() == []
    assert {child.pid for child in psutil.Process().children()} <= children


# --------------------------------------------------------------------------- property tests

ERROR_TYPES = (NucleiError,)
MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"II*\x00", b"MM\x00*", b"PK\x03\x04"]
MAGIC += [b"II+\x00\x08\x00\x00\x00", b"GIF89a", b"BM", b"%PDF-1.4"]


def _valid_files() -> list[bytes]:
    grey = nuclei_image((24, 30))
    rgb = np.dstack([grey, grey // 2, grey])
    return [
        png_bytes(grey),
        png_bytes(rgb),
        png_bytes(grey.astype(np.uint16) * 200),
        jpeg_bytes(Image.fromarray(grey)),
        jpeg_bytes(Image.fromarray(rgb).convert("CMYK")),
        tiff_bytes(grey),
        tiff_bytes(grey.astype(np.float32)),
        tiff_bytes(rgb, compression="zlib"),
        tiff_bytes(np.stack([grey, grey]), photometric="minisblack"),
        zip_bytes({"a.png": png_bytes(mask((24, 30))), "b.png": png_bytes(mask((24, 30)))}),
    ]


VALID_FILES = _valid_files()


def _call_readers(data: bytes) -> None:
    """Read ``data`` as image and as ground truth; only NucleiError may come out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for reader in (imread.read_image, groundtruth.read_labels):
            try:
                result = reader(data, name="fuzz.png", max_pixels=4096 * 4096)
            except ERROR_TYPES:
                continue
            if reader is imread.read_image:
                model_input = preprocess.to_model_input(result)
                assert np.isfinite(model_input).all()


PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY_SETTINGS
@given(prefix=st.sampled_from(MAGIC), body=st.binary(max_size=1024))
def test_random_bytes_give_only_project_errors(prefix, body):
    _call_readers(prefix + body)


@PROPERTY_SETTINGS
@given(
    index=st.integers(0, len(VALID_FILES) - 1),
    cut=st.one_of(st.none(), st.floats(0.0, 1.0)),
    flips=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), max_size=8
    ),
)
@example(index=len(VALID_FILES) - 1, cut=None, flips=[(0.1, 0)])  # zip member CRC error
@example(index=len(VALID_FILES) - 1, cut=0.6, flips=[])  # zip cut in its central directory
def test_damaged_image_files_give_only_project_errors(index, cut, flips):
    data = bytearray(VALID_FILES[index])
    for position, value in flips:
        data[int(position * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    _call_readers(bytes(data))


ARRAY_DTYPES = [
    np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64,
    np.float16, np.float32, np.float64, np.complex64, np.dtype("U2"), np.dtype("M8[s]"),
]  # fmt: skip
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)


@st.composite
def any_array(draw):
    """Arrays of many dtypes and shapes, NaN/inf/extremes included, or object arrays."""
    if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
        shape = draw(SHAPES)
        elements = st.one_of(st.none(), st.integers(-3, 3), st.text(max_size=2), st.floats())
        return draw(hnp.arrays(object, shape, elements=elements))
    dtype = draw(st.sampled_from(ARRAY_DTYPES))
    return draw(hnp.arrays(dtype, draw(SHAPES)))


@PROPERTY_SETTINGS
@given(array=any_array())
@example(array=np.zeros((0, 5), bool))
@example(array=np.full((3, 3), np.nan))
@example(array=np.array([[1e300, -1e300], [0.0, 1.0]]))
@example(array=np.array([[3e38, -3e38], [0.0, 1.0]], np.float32))
def test_random_arrays_give_only_project_errors(array):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for convert in (
            preprocess.to_model_input,
            preprocess.to_display_rgb,
            preprocess.image_kind,
        ):
            try:
                result = convert(array)
            except ERROR_TYPES:
                continue
            if isinstance(result, np.ndarray):
                assert np.isfinite(result.astype(np.float64)).all()
        for reader in (imread.read_image, groundtruth.read_labels):  # arrays are not files
            with pytest.raises(ERROR_TYPES):
                reader(array)
        # the same array written as a TIFF file, when tifffile can write it
        try:
            data = tiff_bytes(array)
        except Exception:
            return
        _call_readers(data)


METRIC_FUNCTIONS = [
    metrics.match_labels, metrics.dsb_score, metrics.count_error, metrics.pixel_accuracy,
    metrics.foreground_iou, metrics.dice, metrics.evaluate_labels, metrics.error_map,
    metrics.iou_matrix,
]  # fmt: skip


@PROPERTY_SETTINGS
@given(first=any_array(), second=any_array(), same=st.booleans())
def test_metrics_on_random_arrays_give_only_project_errors(first, second, same):
    pairs = [(first, first if same else second), (second, first)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for function in METRIC_FUNCTIONS:
            for true, pred in pairs:
                try:
                    function(true, pred)
                except ERROR_TYPES:
                    pass
        for value in (first, [first], [], None):
            try:
                metrics.summarize(value)
            except ERROR_TYPES:
                pass


def test_property_tests_cover_readers_and_metrics():
    """The four properties are hypothesis tests, every public metric over two label images is
    among those they call, and they call every reader of files."""
    from hypothesis import is_hypothesis_test

    from nuclei_core.evaluation import error_map, matching

    properties = [
        test_random_bytes_give_only_project_errors,
        test_damaged_image_files_give_only_project_errors,
        test_random_arrays_give_only_project_errors,
        test_metrics_on_random_arrays_give_only_project_errors,
    ]
    assert all(is_hypothesis_test(test) for test in properties)
    pairwise_metrics = {
        function
        for name, function in inspect.getmembers(metrics, inspect.isfunction)
        if function.__module__ in (metrics.__name__, matching.__name__, error_map.__name__)
        and not name.startswith("_")
        and list(inspect.signature(function).parameters)[:2] == ["true_labels", "pred_labels"]
    }
    assert pairwise_metrics, "no metric over two label images found"
    assert pairwise_metrics <= set(METRIC_FUNCTIONS), pairwise_metrics - set(METRIC_FUNCTIONS)
    readers_called = inspect.getsource(_call_readers)
    assert "read_image" in readers_called and "read_labels" in readers_called
    record("property-random-input", "only NucleiError subclasses: 4 hypothesis properties")


# --------------------------------------------------------------------------- hostile model files


@pytest.fixture(scope="module")
def lambda_model_file(tmp_path_factory):
    """A ``.keras`` file whose Lambda layer creates ``marker`` whenever it runs."""
    import keras

    folder = tmp_path_factory.mktemp("hostile")
    marker = folder / "code_ran"
    inputs = keras.Input((None, None, 3))
    hostile = keras.layers.Lambda(
        eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]"),  # the path in its code
        output_shape=lambda shape: shape,
        name="hostile",
    )(inputs)
    outputs = keras.layers.Conv2D(2, 1, activation="sigmoid")(hostile)
    path = folder / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink(missing_ok=True)  # building the model ran the lambda once
    return path, marker


def rewrite_archive(source: Path, target: Path, change=None, extra=None) -> Path:
    """Copy a .keras archive, passing config.json through ``change`` and adding ``extra``."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as copy:
        for info in archive.infolist():
            content = archive.read(info)
            if info.filename == "config.json" and change:
                content = change(content.decode()).encode()
            copy.writestr(info.filename, content)
        for name, content in (extra or {}).items():
            copy.writestr(name, content)
    return target


def test_lambda_layer_file_would_run_code_if_loaded_unsafely(lambda_model_file):
    """The premise of the next tests: this file really carries code that runs."""
    import keras

    path, marker = lambda_model_file
    model = keras.models.load_model(path, safe_mode=False, compile=False)
    model(np.zeros((1, 4, 4, 3), np.float32))
    assert marker.exists()
    marker.unlink()


def test_model_with_a_lambda_layer_is_refused_and_its_code_never_runs(lambda_model_file):
    from nuclei_core.network.model import load_model

    path, marker = lambda_model_file
    with pytest.raises(ModelLoadError, match=r"model contains a Lambda layer") as caught:
        load_model(path)
    assert not marker.exists()
    record("model-lambda", str(caught.value).replace(str(path.parent) + os.sep, ""))


def test_lambda_layer_hidden_by_a_json_escape_is_still_refused(lambda_model_file, tmp_path):
    from nuclei_core.network.model import load_model

    path, marker = lambda_model_file
    hidden = rewrite_archive(
        path,
        tmp_path / "escaped.keras",
        change=lambda text: text.replace('"Lambda"', '"\\u004cambda"'),
    )
    assert b'"Lambda"' not in zipfile.ZipFile(hidden).read("config.json")
    with pytest.raises(ModelLoadError, match=r"model contains a Lambda layer \(arbitrary code\)"):
        load_model(hidden)
    assert not marker.exists()
    seen = "escaped.keras: model contains a Lambda layer (arbitrary code); refused"
    record("model-lambda-escaped", seen)


def test_keras_safe_mode_refuses_the_lambda_even_without_our_archive_check(
    lambda_model_file, monkeypatch
):
    from nuclei_core.network import model as model_module

    path, marker = lambda_model_file
    monkeypatch.setattr(model_module, "_check_archive", lambda path: None)
    with pytest.raises(ModelLoadError, match="model does not load"):
        model_module.load_model(path)
    assert not marker.exists()
    record("model-safe-mode", "model does not load (Keras safe_mode=True refuses the lambda)")


def test_model_naming_a_foreign_module_is_refused(tiny_model_file, tmp_path):
    from nuclei_core.network.model import load_model

    def to_builtins(text: str) -> str:
        config = json.loads(text)
        config["config"]["layers"][1]["module"] = "builtins"
        return json.dumps(config)

    foreign = rewrite_archive(tiny_model_file, tmp_path / "foreign.keras", change=to_builtins)
    with pytest.raises(ModelLoadError, match=r"reference to module 'builtins'; refused") as caught:
        load_model(foreign)
    record("model-foreign-module", str(caught.value).replace(str(tmp_path) + os.sep, ""))


def _truncated(path: Path, target: Path, fraction: float) -> Path:
    data = path.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def _corrupt_config(path: Path, target: Path) -> Path:
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("config.json")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize(
    "case, make, problem",
    [
        pytest.param(*row, id=row[0])
        for row in [
            (
                "model-extra-files",
                lambda path, tmp: rewrite_archive(
                    path, tmp / "extra.keras", extra={"payload.py": b"import os"}
                ),
                "unexpected files in the model archive: ['payload.py']",
            ),
            (
                "model-not-zip",
                lambda path, tmp: (
                    (tmp / "text.keras").write_text("not a model") and tmp / "text.keras"
                ),
                "not a Keras model (.keras files are zip archives)",
            ),
            (
                "model-truncated-zip",
                lambda path, tmp: _truncated(path, tmp / "cut.keras", 0.5),
                "not a Keras model",
            ),
            (
                "model-corrupt-member",
                lambda path, tmp: _corrupt_config(path, tmp / "crc.keras"),
                "corrupt model archive",
            ),
        ]
    ],
)
def test_malformed_model_file_is_refused(case, make, problem, tiny_model_file, tmp_path):
    from nuclei_core.network.model import load_model

    path = make(tiny_model_file, tmp_path)
    with pytest.raises(ModelLoadError) as caught:
        load_model(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message
    record(case, message.replace(str(tmp_path) + os.sep, ""))


# --------------------------------------------------------------------------- server settings


def test_streamlit_server_is_local_with_upload_limit_and_xsrf_protection():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server = config["server"]
    assert server["address"] in ("127.0.0.1", "localhost")
    assert server["enableXsrfProtection"] is True
    assert 10 <= server["maxUploadSize"] <= 1024
    assert server.get("enableCORS", True) is True
    readme = (ROOT / "README.md").read_text()
    assert "--server.address" in readme  # how to serve a lab network on purpose
    record("server-localhost", f"server.address = {server['address']!r}")
    record("server-xsrf", "server.enableXsrfProtection = true")
    record("server-upload-limit", f"server.maxUploadSize = {server['maxUploadSize']} (MB)")


# --------------------------------------------------------------------------- dataset paths


def test_dataset_path_typed_into_the_app_is_resolved_and_checked(tmp_path, monkeypatch):
    from nuclei_core.evaluation.evaluate import check_dataset_folder

    base = tmp_path / "project"
    (base / "data" / "set").mkdir(parents=True)
    (base / "file.txt").write_text("x")
    (tmp_path / "link").symlink_to(base / "data" / "set")
    assert check_dataset_folder("data/set", base=base) == base / "data" / "set"
    assert check_dataset_folder(" data/other/../set ", base=base) == base / "data" / "set"
    assert check_dataset_folder(str(tmp_path / "link")) == base / "data" / "set"
    monkeypatch.setenv("HOME", str(base))
    assert check_dataset_folder("~/data/set") == base / "data" / "set"

    refused = {
        "path-empty": ("   ", "dataset folder: no folder given"),
        "path-missing": ("data/../nowhere", f"{base / 'nowhere'}: dataset folder does not exist"),
        "path-not-a-folder": ("file.txt", f"{base / 'file.txt'}: not a folder"),
    }
    for case, (text, message) in refused.items():
        with pytest.raises(DatasetError) as caught:
            check_dataset_folder(text, base=base)
        assert str(caught.value) == message
        record(case, message.replace(str(tmp_path) + os.sep, ""))

    # tests run as root, for whom every folder is readable: fake the permission check
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: False if "set" in str(path) else real_access(path, mode)
    )
    with pytest.raises(DatasetError, match=r"set: folder is not readable") as caught:
        check_dataset_folder("data/set", base=base)
    record("path-unreadable", str(caught.value).replace(str(tmp_path) + os.sep, ""))


# --------------------------------------------------------------------------- the app's uploads


@pytest.fixture
def segment_page(tmp_path, monkeypatch, tiny_model_file):
    """The Segment page with the tiny model active, in a fresh data folder."""
    if not Path(APP).is_file():
        pytest.skip("app.py is not there")
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from nuclei_core.registry import Registry

    data = tmp_path / "data"
    monkeypatch.setenv("NUCLEI_DATA_DIR", str(data))
    monkeypatch.setenv("NUCLEI_DEFAULT_MODEL", str(tmp_path / "no-default.keras"))
    monkeypatch.setenv("NUCLEI_SAMPLES_DIR", str(tmp_path / "no-samples"))
    st.cache_resource.clear()
    registry = Registry(data / "registry.sqlite3")
    run = registry.register_model_card({"name": "tiny"}, tiny_model_file, None)
    registry.set_active_model(run.id)
    at = AppTest.from_file(APP, default_timeout=APP_TIMEOUT)
    at.run()
    at.switch_page(app_page("segment")).run()
    assert not at.exception and not at.error
    yield at, registry
    st.cache_resource.clear()


def _texts(elements) -> list[str]:
    return [str(element.value) for element in elements]


def _upload(at, key: str, name: str, data: bytes) -> None:
    at.file_uploader(key=key).clear().upload(name, data, "application/octet-stream")
    at.run()
    assert not at.exception, (name, [item.message for item in at.exception])


@pytest.mark.slow
def test_segment_page_upload_names_each_bad_image_and_stays_usable(segment_page, tiny_model_file):
    at, registry = segment_page
    model_before = sha256(tiny_model_file)
    for case, (file_name, make, problem) in sorted(REFUSED_IMAGES.items()):
        _upload(at, "segment_upload", file_name, make())
        errors = _texts(at.error)
        assert len(errors) == 1 and errors[0].startswith(f"{file_name}: "), (case, errors)
        assert problem in errors[0] and "\n" not in errors[0]
        assert not any(metric.label == "Nuclei found" for metric in at.metric)
        record(case, errors[0], channel="app")
    for case, (file_name, make, _shape, warning) in sorted(ODD_IMAGES.items()):
        if case == THIN_IMAGE:  # see test_segment_page_shows_a_very_thin_image
            continue
        _upload(at, "segment_upload", file_name, make())
        assert not at.error, (case, _texts(at.error))
        assert any(metric.label == "Nuclei found" for metric in at.metric), case
        notes = _texts(at.warning)
        if warning:
            assert any(warning in note and file_name in note for note in notes), (case, notes)
        record(case, notes[0] if warning else "segmented normally", channel="app")
    assert sha256(tiny_model_file) == model_before
    assert registry.active_model().name == "tiny"
    seen = "every bad image: one st.error line; the page keeps working"
    record("app-upload-image", seen, channel="app", kept=1)


THIN_IMAGE = "image-3x5000"


def test_segment_page_shows_a_very_thin_image(segment_page):
    at, _registry = segment_page
    file_name, make, _shape, _warning = ODD_IMAGES[THIN_IMAGE]
    _upload(at, "segment_upload", file_name, make())
    assert not at.error and any(metric.label == "Nuclei found" for metric in at.metric)
    record(THIN_IMAGE, "segmented normally", channel="app")


def test_segment_page_ground_truth_upload_names_each_misfit(segment_page):
    at, _registry = segment_page
    _upload(at, "segment_upload", "cells.png", png_bytes(nuclei_image()))
    assert not at.error
    for case, (file_name, make, options, problem) in sorted(BAD_GROUND_TRUTH.items()):
        if options:  # the app reads ground truth in "auto" mode
            continue
        data = make()
        at.file_uploader(key="segment_truth").clear().upload(file_name, data, "image/png")
        at.run()
        assert not at.exception, at.exception
        errors = _texts(at.error)
        assert len(errors) == 1 and errors[0].startswith(file_name), (case, errors)
        assert problem in errors[0] and "\n" not in errors[0]
        assert any(metric.label == "Nuclei found" for metric in at.metric)
        record(case, errors[0], channel="app")
    at.file_uploader(key="segment_truth").clear().upload(
        "truth.png", png_bytes(mask()), "image/png"
    )
    at.run()
    assert not at.error and any(metric.label == "DSB score" for metric in at.metric)
    seen = "every misfit: one st.error line; scores after a good one"
    record("app-upload-truth", seen, channel="app")


# --------------------------------------------------------------------------- the report


def _report_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "reliability_report", ROOT / "tests" / "reliability_report.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("reliability_report", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_report_catalogue_matches_the_tests_and_the_document():
    """Every case has a test, every recorded case is catalogued, the document lists them."""
    report = _report_module()
    catalogued = [case.id for case in report.CATALOGUE]
    assert len(catalogued) == len(set(catalogued))
    sources = "".join((ROOT / name).read_text() for name in report.TEST_FILES)
    recorded = set(re.findall(r'record\(\s*"([a-z0-9-]+)"', sources))
    recorded |= set(REFUSED_IMAGES) | set(ODD_IMAGES) | set(BAD_GROUND_TRUTH)
    recorded |= {f"fault-atomic-{name}" for name in ("card", "csv", "png")}
    recorded |= {"fault-disk-full-model", "fault-read-only-model", "dataset-mask-without-image"}
    recorded |= {"path-empty", "path-missing", "path-not-a-folder"}
    recorded |= set(re.findall(r'\(\s*"(train-[a-z0-9-]+)"', sources))
    recorded |= set(re.findall(r'\(\s*"(model-[a-z0-9-]+)"', sources))
    assert recorded - set(catalogued) == set()
    untested = [
        case.id for case in report.CATALOGUE if case.id not in recorded and not case.elsewhere
    ]
    assert untested == []
    for case in report.CATALOGUE:
        for node in case.elsewhere:
            path, name = node.split("::")
            if (ROOT / path).is_file():
                assert f"def {name}(" in (ROOT / path).read_text(), node
    if os.environ.get(REPORT_ENV):
        return  # the report is being written from this very run
    document = (ROOT / "docs" / "RELIABILITY.md").read_text()
    for case in report.CATALOGUE:
        assert report._cell(case.what) in document, case.id
    assert "| **files lost** | **0** |" in document
