"""Batch prediction of image files: shards, resume, one file's outputs, the summary.

The engine functions of :mod:`nuclei_core.batch.collection` are tested directly; ``--shard``,
``--resume`` and ``--summary`` through :func:`nuclei_core.cli.main` (in-process, with
the untrained tiny model: these tests are about which files are done, not nuclei).
"""

from __future__ import annotations

import csv
import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nuclei_core import cli
from nuclei_core.batch.collection import (
    FileJob,
    FileResult,
    is_finished,
    output_paths,
    predict_file,
    split_finished,
    summary_frame,
    write_summary,
)
from nuclei_core.batch.shards import Shard, check_distinct_names, parse_shard, select_shard
from nuclei_core.errors import InputError

# ============================================================================== shards


@pytest.mark.parametrize(("text", "shard"), [("0/1", Shard(0, 1)), (" 3 / 4 ", Shard(3, 4))])
def test_parse_shard_reads_index_and_count(text, shard):
    assert parse_shard(text) == shard


@pytest.mark.parametrize("text", ["3/2", "2/2", "0/0", "a/b", "1", "-1/2", "1/2/3", "", "1.0/2"])
def test_parse_shard_refuses_anything_but_i_of_n_in_one_line(text):
    with pytest.raises(InputError, match=r"^--shard must be I/N with 0 <= I < N") as caught:
        parse_shard(text)
    assert repr(text) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_shards_partition_the_inputs_exactly(count):
    files = [Path(f"plate{plate}/well_{well:03d}.tif") for plate in (1, 2) for well in range(150)]
    parts = [select_shard(files, Shard(index, count)) for index in range(count)]
    assert sorted(itertools.chain(*parts)) == sorted(files)  # every file, none twice
    for first, second in itertools.combinations(parts, 2):
        assert not set(first) & set(second)
    expected = len(files) / count
    assert all(abs(len(part) - expected) <= 4 * np.sqrt(expected) + 1 for part in parts)
    assert select_shard(files, None) == files


def test_a_file_belongs_to_the_same_shard_however_the_inputs_are_given():
    files = [Path(f"images/cell_{index:02d}.png") for index in range(40)]
    shard = Shard(1, 3)
    chosen = {path.name for path in select_shard(files, shard)}
    respelled = [Path("/mnt/cluster/data") / path.name for path in reversed(files)]
    assert {path.name for path in select_shard(respelled, shard)} == chosen
    assert {path.name for path in select_shard(files[:10], shard)} == chosen & {
        path.name for path in files[:10]
    }  # a shorter list: each file keeps its shard


def test_inputs_that_would_write_the_same_outputs_are_refused():
    assert check_distinct_names(["a/x.png", "a/y.png"]) == [Path("a/x.png"), Path("a/y.png")]
    with pytest.raises(InputError, match=r"^a/x\.png and b/X\.tif: both would write X_\*"):
        check_distinct_names(["a/x.png", "b/X.tif"])


# ============================================================================== resume


def test_an_image_is_finished_when_every_output_is_there_and_not_empty(tmp_path):
    job = FileJob(tmp_path, ("mask", "labels", "csv"))
    names = [path.name for path in output_paths("in/cells.png", job)]
    assert names == ["cells_mask.png", "cells_labels.png", "cells_nuclei.csv"]
    assert not is_finished("in/cells.png", job)
    for name in names[:2]:
        (tmp_path / name).write_bytes(b"data")
    assert not is_finished("in/cells.png", job)  # cut off before its CSV
    (tmp_path / names[2]).write_bytes(b"")
    assert not is_finished("in/cells.png", job)  # an empty file is not an output
    (tmp_path / names[2]).write_bytes(b"label\n")
    assert is_finished("in/cells.png", job)
    assert not is_finished("in/cells.png", FileJob(tmp_path, ("mask", "roi")))  # more asked
    assert split_finished(["in/cells.png", "in/other.png"], job) == (
        [Path("in/other.png")],
        [Path("in/cells.png")],
    )


# ============================================================================== one file


def test_predict_file_writes_the_outputs_and_reports_a_bad_file(tmp_path, tiny_model, make_sample):
    image, _ = make_sample((64, 64), seed=5)
    Image.fromarray(image).save(tmp_path / "cells.png")
    (tmp_path / "broken.png").write_text("not an image")
    job = FileJob(tmp_path / "out", ("mask", "csv", "geojson"))
    result = predict_file(tiny_model, tmp_path / "cells.png", job)
    assert result.status == "ok" and result.kind == "fluorescence" and result.seconds > 0
    assert sorted(path.name for path in job.out.iterdir()) == [
        "cells_mask.png",
        "cells_nuclei.csv",
        "cells_nuclei.geojson",
    ]
    assert is_finished(tmp_path / "cells.png", job)
    broken = predict_file(tiny_model, tmp_path / "broken.png", job)
    assert broken.status == "failed" and "broken.png" in broken.message
    assert not list(job.out.glob("broken*"))


def test_summary_has_one_row_per_image_sorted(tmp_path):
    results = [
        FileResult(
            Path("b.png"), count=4, kind="stained", pixel_size=0.5, seconds=1.23456, diameter=12.345
        ),
        FileResult(Path("a.png"), "failed", message="a.png: file is empty"),
        FileResult(Path("c.png"), "skipped"),
    ]
    frame = summary_frame(results)
    assert frame["image"].tolist() == ["a.png", "b.png", "c.png"]
    assert frame["count"].tolist()[1] == 4 and frame["count"].isna().tolist() == [1, 0, 1]
    with open(write_summary(tmp_path / "summary.csv", results), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[1] == {
        "image": "b.png",
        "status": "ok",
        "count": "4",
        "kind": "stained",
        "pixel_size_um": "0.5",
        "diameter_px": "12.35",
        "seconds": "1.235",
        "message": "",
    }
    assert rows[0]["message"] == "a.png: file is empty" and rows[2]["status"] == "skipped"


# ============================================================================== the CLI


@pytest.fixture
def images(tmp_path, make_sample):
    """Six small PNGs in ``images/``."""
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(6):
        image, _ = make_sample((48, 48), n_nuclei=3, n_touching_pairs=0, seed=40 + index)
        Image.fromarray(image).save(folder / f"img{index}.png")
    return folder


def predict(capsys, model, *args) -> tuple[int, list[str], str]:
    """Run ``predict`` in-process: exit code, the per-image lines printed, stderr."""
    code = cli.main(["predict", "--model", str(model), *map(str, args)])
    out, err = capsys.readouterr()
    done = [line.split(":")[0] for line in out.splitlines() if " nuclei (" in line]
    return code, done, err


def test_predict_shards_cover_the_folder_without_overlap(tmp_path, images, tiny_model_file, capsys):
    out = tmp_path / "out"
    done = []
    for index in range(3):
        code, names, _ = predict(
            capsys, tiny_model_file, images, "--out", out, "--shard", f"{index}/3"
        )
        assert code == 0
        assert names == [p.name for p in select_shard(sorted(images.iterdir()), Shard(index, 3))]
        done.append(names)
    assert sorted(itertools.chain(*done)) == sorted(path.name for path in images.iterdir())
    assert len({path.name for path in out.iterdir()}) == 3 * 6  # mask, labels, CSV of each


def test_predict_resume_skips_finished_images_and_redoes_half_written_ones(
    tmp_path, images, tiny_model_file, capsys
):
    out = tmp_path / "out"
    code, first, _ = predict(capsys, tiny_model_file, images, "--out", out)
    assert code == 0 and len(first) == 6
    (out / "img1_nuclei.csv").unlink()  # img1 was cut off before its CSV
    (out / "img4_mask.png").write_bytes(b"")  # img4's mask is empty
    kept = {path.name: path.stat().st_mtime_ns for path in out.glob("img[0235]_*")}
    summary = tmp_path / "summary.csv"
    code, again, _ = predict(
        capsys, tiny_model_file, images, "--out", out, "--resume", "--summary", summary
    )
    assert code == 0 and again == ["img1.png", "img4.png"]
    assert {path.name: path.stat().st_mtime_ns for path in out.glob("img[0235]_*")} == kept
    assert all(is_finished(path, FileJob(out)) for path in images.iterdir())
    with open(summary, newline="") as handle:
        statuses = {Path(row["image"]).name: row["status"] for row in csv.DictReader(handle)}
    assert statuses == {f"img{index}.png": "skipped" for index in (0, 2, 3, 5)} | {
        "img1.png": "ok",
        "img4.png": "ok",
    }
    code, last, _ = predict(capsys, tiny_model_file, images, "--out", out, "--resume")
    assert code == 0 and last == []  # nothing left: the model is not even loaded


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--shard", "3/2"], "--shard must be I/N with 0 <= I < N (e.g. 0/4 ... 3/4), got '3/2'"),
        (["--shard", "0/0"], "--shard must be I/N with 0 <= I < N (e.g. 0/4 ... 3/4), got '0/0'"),
        (["--shard", "a/b"], "--shard must be I/N with 0 <= I < N (e.g. 0/4 ... 3/4), got 'a/b'"),
        (["--workers", "2"], "--workers sets the size of a local Dask cluster: add --dask"),
        (["--dask", "tcp://h:8786", "--workers", "2"], "add --dask (without an address)"),
        (["--dask", "--workers", "0"], "--workers must be at least 1, got 0"),
        (["--dask", "nowhere"], "--dask takes 'local' or a scheduler address such as"),
    ],
)
def test_predict_refuses_bad_cluster_options_in_one_line(
    tmp_path, images, capsys, options, message
):
    code = cli.main(["predict", str(images), "--out", str(tmp_path / "out"), *options])
    err = capsys.readouterr().err
    assert code == 2
    assert re.fullmatch(rf"error: .*{re.escape(message)}.*\n", err), err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
