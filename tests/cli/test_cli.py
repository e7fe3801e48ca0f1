"""End-to-end tests of the command line: ``python -m nuclei_core train | predict | evaluate``.

The long commands run as real subprocesses; the many bad-input cases run in-process
through :func:`nuclei_core.cli.main` (same code path, without a TensorFlow start-up
each). Predict and evaluate use the session's trained tiny model (``trained_run``).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage as ndi

from nuclei_core import cli
from nuclei_core.io import imread
from nuclei_core.network import runtime
from nuclei_core.network.model import load_model
from nuclei_core.segmentation.options import SegmentOptions
from nuclei_core.segmentation.segment import segment_image

REPO = Path(__file__).resolve().parents[2]
AUTO_RUNTIME = runtime.default_runtime()
"""What the CLI's model line says with the default --backend and --precision here."""
# TensorFlow's C++ start-up lines, printed before any logging setup can silence them.
NATIVE_LOG = re.compile(
    r"^([IWEF]\d{4} |WARNING: All log messages before absl|To enable the follow)"
)


def run_cli(*args, cwd, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "nuclei_core", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def own_lines(text: str) -> list[str]:
    """Non-empty lines of our own output (TensorFlow's native log lines dropped)."""
    return [line for line in text.splitlines() if line.strip() and not NATIVE_LOG.match(line)]


def png_bit_depth(path) -> int:
    return Path(path).read_bytes()[24]  # IHDR: 8-byte signature, length, type, w, h, depth


@pytest.fixture
def model_copy(trained_run, tmp_path):
    """The session's model and card, copied so that a test may change the card."""
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(trained_run.result.model_path, folder / "model.keras")
    shutil.copy(trained_run.result.card_path, folder / "model.json")
    return folder / "model.keras"


# ============================================================================== help


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ((), ["train", "predict", "evaluate"]),
        (
            ("train",),
            [
                "--data",
                "--arch",
                "--epochs",
                "--batch-size",
                "--lr",
                "--patience",
                "--crop",
                "--val-fraction",
                "--seed",
                "--out",
                "--resume",
                "--strategy",
            ],
        ),
        (("predict",), ["--model", "--out", "--threshold", "--min-size", "--tta"]),
        (("evaluate",), ["--model", "--data", "--split", "--json", "--update-card"]),
    ],
)
def test_help_for_every_command(tmp_path, command, options):
    process = run_cli(*command, "--help", cwd=tmp_path)
    assert process.returncode == 0, process.stderr
    assert process.stdout.startswith("usage: python -m nuclei_core")
    for option in options:
        assert option in process.stdout, option


# ============================================================================== train


@pytest.mark.slow
def test_train_end_to_end(tmp_path, flat_dataset_factory):
    from nuclei_core.network.model import load_model

    flat_dataset = flat_dataset_factory(tmp_path / "data", size=(32, 32), n_nuclei=2, radius=(4, 6))
    out = tmp_path / "run"
    process = run_cli(
        "train",
        "--data",
        flat_dataset,
        "--epochs",
        2,
        "--filters",
        4,
        "--depth",
        2,
        "--crop",
        32,
        "--batch-size",
        2,
        "--seed",
        3,
        "--strategy",
        "none",
        "--out",
        out,
        "--name",
        "cli-run",
        cwd=tmp_path,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    stdout = own_lines(process.stdout)
    for number, line in enumerate(stdout[:2], start=1):
        assert line.startswith(f"epoch {number}: "), line
        for key in ("loss", "accuracy", "iou", "dice", "val_loss", "val_iou"):
            assert re.search(rf"\b{key} \d+\.\d{{4}}\b", line), (key, line)
    assert re.match(
        rf"model: {re.escape(str(out / 'model.keras'))}  card: .*best epoch: [12]$", stdout[-1]
    )
    assert "Traceback" not in process.stderr
    model = load_model(out / "model.keras")
    assert model.output_shape == (None, None, None, 2)
    card = json.loads((out / "model.json").read_text())
    assert card["name"] == "cli-run" and card["epochs_run"] == 2
    assert card["model"]["base_filters"] == 4 and card["model"]["depth"] == 2
    assert card["params"]["batch_size"] == 2 and card["params"]["crop"] == 32
    assert card["command"].startswith("python -m nuclei_core train --data")


@pytest.mark.slow
def test_train_a_distance_model_from_a_two_channel_one(tmp_path, trained_run):
    from nuclei_core.network.model import load_model

    out = tmp_path / "distance"
    base = trained_run.result.model_path
    network = "--epochs 1 --filters 8 --depth 2 --crop 32 --batch-size 4 --strategy none"
    process = run_cli(
        "train", "--data", trained_run.data, *network.split(), "--distance",
        "--start-from", base, "--out", out, cwd=tmp_path,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-3000:]
    assert load_model(out / "model.keras").output_shape == (None, None, None, 3)
    card = json.loads((out / "model.json").read_text())
    assert card["model"]["distance"] is True and card["params"]["distance"] is True
    assert card["base_model"]["path"] == str(base)
    words = card["command"].split()
    assert "--distance" in words and words[words.index("--start-from") + 1] == str(base)
    # The card keeps the runs behind its base model, so peers can be given the same time.
    base_card = json.loads(trained_run.result.card_path.read_text())
    first, this_run = card["train_minutes_by_run"]
    assert first == round(base_card["train_seconds"] / 60, 1)
    assert this_run == round(card["train_seconds"] / 60, 1)
    assert card["commands"] == [*base_card["commands"], card["command"]]


# ============================================================================== predict


def test_predict_finishes_good_files_and_lists_the_bad_one(tmp_path, trained_run, make_sample):
    folder = tmp_path / "images"
    folder.mkdir()
    truths = {}
    for index, name in enumerate(["a.png", "b.tif"]):
        image, labels = make_sample((64, 96), n_nuclei=6, n_touching_pairs=0, seed=300 + index)
        truths[Path(name).stem] = labels.max()
        if name.endswith(".tif"):
            tifffile.imwrite(folder / name, image.astype(np.uint16) * 257)
        else:
            Image.fromarray(image).save(folder / name)
    (folder / "broken.png").write_text("not an image")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    single, labels = make_sample((64, 64), n_nuclei=4, n_touching_pairs=0, seed=310)
    Image.fromarray(single).save(tmp_path / "single.png")
    truths["single"] = labels.max()

    out = tmp_path / "out"
    model = trained_run.result.model_path
    process = run_cli(
        "predict", "--model", model, folder, tmp_path / "single.png", "--out", out, cwd=tmp_path
    )
    assert process.returncode != 0
    assert "Traceback" not in process.stderr
    stderr = own_lines(process.stderr)
    assert any("1 of 4 inputs failed" in line for line in stderr), stderr
    assert any("broken.png" in line and "not a PNG, JPEG or TIFF" in line for line in stderr)
    summaries = {}
    model_line, *image_lines = own_lines(process.stdout)
    assert re.fullmatch(rf"model: \S+model\.keras \({AUTO_RUNTIME}\)", model_line)
    for line in image_lines:
        match = re.fullmatch(
            r"(\S+): (\d+) nuclei \((fluorescence|brightfield|stained), [\d.]+ s\)", line
        )
        assert match, line
        summaries[Path(match[1]).stem] = int(match[2])
    assert summaries == truths  # every good image, with the right count

    for stem, count in truths.items():
        mask_path, labels_path = out / f"{stem}_mask.png", out / f"{stem}_labels.png"
        mask, labels = imread.read_image(mask_path), imread.read_image(labels_path)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}
        assert png_bit_depth(labels_path) == 16 and labels.dtype == np.uint16
        assert labels.max() == count and len(np.unique(labels)) == count + 1
        np.testing.assert_array_equal(mask > 0, labels > 0)
        with open(out / f"{stem}_nuclei.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [int(row["label"]) for row in rows] == list(range(1, count + 1))
        columns = {"area_px", "centroid_x_px", "centroid_y_px", "perimeter_px", "eccentricity"}
        assert columns <= set(rows[0])
        areas = np.bincount(labels.ravel())[1:]
        assert [float(row["area_px"]) for row in rows] == areas.tolist()
    assert not list(out.glob("broken*")) and not list(out.glob("notes*"))
    assert not list(out.glob(".*"))  # no temporary files


def test_predict_all_good_exits_zero(tmp_path, trained_run, make_sample, capsys):
    image, labels = make_sample((64, 64), n_nuclei=5, n_touching_pairs=0, seed=320)
    Image.fromarray(image).save(tmp_path / "cells.png")
    model = trained_run.result.model_path
    code = cli.main(
        [
            "predict",
            "--model",
            str(model),
            str(tmp_path / "cells.png"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    assert re.fullmatch(
        rf"model: \S+ \({AUTO_RUNTIME}\)\n"
        r"cells\.png: 5 nuclei \(fluorescence, [\d.]+ s\)\n",
        capsys.readouterr().out,
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "cells_labels.png",
        "cells_mask.png",
        "cells_nuclei.csv",
    ]


def test_predict_keeps_only_nuclei_as_sure_as_the_model_card_asks(
    tmp_path, model_copy, make_sample, capsys
):
    image, _ = make_sample((64, 96), n_nuclei=8, n_touching_pairs=0, seed=325)
    Image.fromarray(image).save(tmp_path / "cells.png")
    options = SegmentOptions(diameter=None)
    found = segment_image(load_model(model_copy), image, options)
    peaks = ndi.maximum(found.probabilities[..., 0], found.labels, np.arange(1, found.count + 1))
    assert len(set(peaks.round(6))) > 1, "the sample's nuclei must differ in certainty"
    level = float(np.median(peaks))  # keeps the surer half of the nuclei
    card = json.loads(model_copy.with_suffix(".json").read_text())
    card["postprocess"] = {"min_confidence": level}
    model_copy.with_suffix(".json").write_text(json.dumps(card))
    command = ["predict", "--model", str(model_copy), str(tmp_path / "cells.png")]
    command += ["--backend", "tensorflow", "--diameter", "none"]
    assert cli.main([*command, "--out", str(tmp_path / "out")]) == 0
    written = imread.read_image(tmp_path / "out" / "cells_labels.png")
    assert int(written.max()) == int(np.count_nonzero(peaks >= level)) < found.count
    card["postprocess"] = {"min_confidence": 1.5}
    model_copy.with_suffix(".json").write_text(json.dumps(card))
    assert cli.main([*command, "--out", str(tmp_path / "bad")]) != 0
    assert "postprocess.min_confidence" in capsys.readouterr().err


def two_channel_stack(make_sample, path):
    """A ZCYX ImageJ TIFF, 0.5 µm per pixel: nuclei in channel 1 of plane 1, noise elsewhere."""
    image, labels = make_sample((64, 64), n_nuclei=5, n_touching_pairs=0, seed=330)
    noise = np.random.default_rng(0).integers(0, 30, (3, 2, 64, 64), dtype=np.uint8)
    noise[1, 1] = image
    tifffile.imwrite(
        path, noise, imagej=True, resolution=(2.0, 2.0), metadata={"axes": "ZCYX", "unit": "um"}
    )
    return labels


def test_predict_picks_channel_and_plane_and_writes_every_format(
    tmp_path, trained_run, make_sample, capsys
):
    import roifile
    import shapely.geometry

    labels = two_channel_stack(make_sample, tmp_path / "stack.tif")
    out = tmp_path / "out"
    model = str(trained_run.result.model_path)
    common = ["predict", "--model", model, str(tmp_path / "stack.tif"), "--out", str(out)]
    formats = "mask,labels,csv,roi,geojson,tiff"
    code = cli.main([*common, "--channel", "1", "--plane", "1", "--formats", formats])
    assert code == 0, capsys.readouterr().err
    assert "stack.tif: 5 nuclei (fluorescence, 0.5 µm/pixel" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "stack_labels.png",
        "stack_labels.tif",
        "stack_mask.png",
        "stack_nuclei.csv",
        "stack_nuclei.geojson",
        "stack_rois.zip",
    ]
    with open(out / "stack_nuclei.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    areas = np.bincount(imread.read_image(out / "stack_labels.png").ravel())[1:]
    assert [float(row["area_um2"]) for row in rows] == (areas * 0.25).tolist()
    assert len(roifile.roiread(out / "stack_rois.zip")) == 5
    features = json.loads((out / "stack_nuclei.geojson").read_text())["features"]
    assert all(shapely.geometry.shape(f["geometry"]).is_valid for f in features)
    assert [f["properties"]["measurements"]["area_um2"] for f in features] == (
        areas * 0.25
    ).tolist()
    with tifffile.TiffFile(out / "stack_labels.tif") as tiff:
        assert tiff.pages[0].tags["XResolution"].value == (2, 1)
        assert tiff.asarray().max() == labels.max()

    # the maximum projection of channel 1 holds the nuclei too; every channel measured
    code = cli.main(
        [*common, "--channel", "1", "--plane", "max", "--channel-intensities", "--pixel-size", "2"]
    )
    assert code == 0
    assert "warning" not in capsys.readouterr().err
    with open(out / "stack_nuclei.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    areas = np.bincount(imread.read_image(out / "stack_labels.png").ravel())[1:]
    assert [float(row["area_um2"]) for row in rows] == (areas * 4.0).tolist()
    assert {"mean_intensity_ch0", "mean_intensity_ch1"} <= set(rows[0])
    assert all(float(r["mean_intensity_ch1"]) > float(r["mean_intensity_ch0"]) for r in rows)


def test_predict_says_which_channel_and_plane_it_used_by_default(
    tmp_path, trained_run, make_sample, capsys
):
    two_channel_stack(make_sample, tmp_path / "stack.tif")
    model = str(trained_run.result.model_path)
    code = cli.main(
        ["predict", "--model", model, str(tmp_path / "stack.tif"), "--out", str(tmp_path)]
    )
    assert code == 0
    error = capsys.readouterr().err
    hints = "3 planes, using plane 0 (choose with --plane); 2 channels, using channel 0"
    assert f"warning: {tmp_path / 'stack.tif'}: {hints} (choose with --channel)\n" in error


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--channel", "2"], "no channel 2 (the image has 2 channels: 0-1)"),
        (["--plane", "3"], "no plane 3 (the image has 3 planes: 0-2)"),
    ],
)
def test_predict_names_the_file_of_a_missing_channel_or_plane(
    tmp_path, trained_run, make_sample, capsys, options, message
):
    two_channel_stack(make_sample, tmp_path / "stack.tif")
    model = str(trained_run.result.model_path)
    code = cli.main(
        ["predict", "--model", model, str(tmp_path / "stack.tif"), "--out", str(tmp_path), *options]
    )
    assert code == 1
    assert f"error: {tmp_path / 'stack.tif'}: {message}\n" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--formats", "csv,pdf"], "error: formats: unknown format 'pdf'"),
        (["--plane", "top"], "error: --plane must be a plane index or 'max', got 'top'"),
        (["--pixel-size", "-1"], "error: --pixel-size must be a positive number"),
    ],
)
def test_predict_refuses_bad_options_in_one_line(tmp_path, capsys, options, message):
    code = cli.main(["predict", str(tmp_path), "--out", str(tmp_path / "out"), *options])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith(message) and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


# ============================================================================== evaluate


def test_evaluate_prints_writes_json_and_updates_the_card(
    tmp_path, model_copy, flat_dataset_factory
):
    data = tmp_path / "data"
    nuclei = {"n_nuclei": 6, "radius": (6, 10)}
    flat_dataset_factory(data / "train", n_images=2, prefix="tr", **nuclei)
    flat_dataset_factory(data / "test", n_images=3, prefix="te", seed=400, **nuclei)
    report_path = tmp_path / "report.json"
    card_before = json.loads(model_copy.with_suffix(".json").read_text())

    process = run_cli(
        "evaluate",
        "--model",
        model_copy,
        "--data",
        data,
        "--json",
        report_path,
        "--update-card",
        cwd=tmp_path,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    stdout = own_lines(process.stdout)
    overall = next(line for line in stdout if line.strip().startswith("all"))
    assert "(  3 images)" in overall
    for key in ("dsb_score", "f1", "foreground_iou", "dice", "pixel_accuracy"):
        assert re.search(rf"\b{key} [\d.]+", overall), key
    assert f"wrote {report_path}" in stdout
    assert any(line.startswith("updated ") for line in stdout)

    report = json.loads(report_path.read_text())
    assert report["split"] == "test" and report["skipped"] == []
    summary = report["summary"]["all"]
    assert summary["n_images"] == 3
    assert summary["mean_foreground_iou"] > 0.9 and summary["mean_f1"] > 0.8
    assert [image["id"] for image in report["images"]] == ["test/te00", "test/te01", "test/te02"]
    for image in report["images"]:
        assert {"dsb_score", "f1", "foreground_iou", "dice", "n_true", "n_pred"} <= set(image)
        assert image["n_true"] == 6

    card = json.loads(model_copy.with_suffix(".json").read_text())
    assert card["test_metrics"]["summary"] == report["summary"]
    assert card["test_metrics"]["split"] == "test"
    assert "images" not in card["test_metrics"]
    assert card["history"] == card_before["history"]  # the rest of the card is kept


# ============================================================================== bad input


def test_bad_input_gives_one_line_error_in_a_subprocess(tmp_path):
    (tmp_path / "cells.png").write_bytes(b"")
    process = run_cli(
        "predict",
        "--model",
        tmp_path / "missing.keras",
        tmp_path / "cells.png",
        "--out",
        tmp_path / "out",
        cwd=tmp_path,
    )
    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert own_lines(process.stderr) == [
        f"error: {tmp_path / 'missing.keras'}: no such model file "
        "(train one with: python -m nuclei_core train)"
    ]
    assert own_lines(process.stdout) == []


@pytest.fixture
def bad_inputs(tmp_path, flat_dataset, write_png):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text.keras").write_text("not a model")
    write_png(tmp_path / "cells.png", np.eye(32, dtype=np.uint8) * 255)
    return {"tmp": tmp_path, "data": flat_dataset}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--data", "{tmp}/nowhere", "--out", "{tmp}/run"], "does not exist"),
        (["train", "--data", "{data}", "--epochs", "0", "--out", "{tmp}/run"], "epochs must be"),
        (["train", "--data", "{data}", "--crop", "30", "--out", "{tmp}/run"], "multiple of"),
        (["train", "--data", "{tmp}/empty", "--out", "{tmp}/run"], "no image/mask pairs"),
        (
            ["predict", "--model", "{tmp}/text.keras", "{tmp}/cells.png", "--out", "{tmp}/o"],
            "not a Keras model",
        ),
        (
            [
                "predict",
                "--model",
                "{model}",
                "--threshold",
                "2",
                "{tmp}/cells.png",
                "--out",
                "{tmp}/o",
            ],
            "threshold",
        ),
        (["predict", "--model", "{model}", "{tmp}/empty", "--out", "{tmp}/o"], "no image files"),
        (["evaluate", "--model", "{model}", "--data", "{tmp}/empty"], "no image/mask pairs"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(bad_inputs, trained_run, capsys, argv, message):
    values = {**bad_inputs, "model": trained_run.result.model_path}
    code = cli.main([part.format(**values) for part in argv])
    captured = capsys.readouterr()
    assert code == 2
    lines = own_lines(captured.err)
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert message in lines[0]
    assert not (bad_inputs["tmp"] / "run").exists()


def test_argument_errors_show_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--data", "x", "--arch", "resnet"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'resnet'" in capsys.readouterr().err


def test_hash_password_prints_a_hash_that_checks_and_never_the_password():
    from nuclei_core.access.passwords import verify_password

    done = subprocess.run(
        [sys.executable, "-m", "nuclei_core", "hash-password"],
        input="a lab secret\n", capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip()
    assert printed.startswith("scrypt$") and "a lab secret" not in done.stdout + done.stderr
    assert verify_password("a lab secret", printed) and not verify_password("a lab secreT", printed)
    short = subprocess.run(
        [sys.executable, "-m", "nuclei_core", "hash-password"],
        input="short\n", capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert short.returncode == 2 and "at least 8 characters" in short.stderr and not short.stdout
