"""The Dask engine of batch prediction, on a two-worker ``LocalCluster`` of this machine.

One cluster (two worker processes, one thread each) serves the module: the images
segmented on it must give the same files, byte for byte, as the single-process path,
each worker must load the model once whatever the number of images, and a bad file
must fail alone.  The CLI's ``--dask`` runs once end to end on its own cluster.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest
import tifffile
from PIL import Image

from nuclei_core import cli
from nuclei_core.batch import distributed
from nuclei_core.batch.collection import FileJob, predict_files
from nuclei_core.errors import NucleiError
from nuclei_core.segmentation.options import SegmentOptions

N_IMAGES = 6


@pytest.fixture(scope="module")
def client():
    """A client of a two-worker LocalCluster (processes, one thread each)."""
    with distributed.connect(distributed.LOCAL, workers=2) as client:
        yield client


@pytest.fixture
def images(tmp_path, make_sample):
    """``N_IMAGES`` small PNGs and one broken file in ``images/``."""
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(N_IMAGES):
        image, _ = make_sample((64, 80), n_nuclei=5, n_touching_pairs=1, seed=70 + index)
        Image.fromarray(image).save(folder / f"cells{index}.png")
    (folder / "broken.png").write_text("not an image")
    return folder


def test_importing_nuclei_core_does_not_import_dask():
    modules = (
        "nuclei_core, nuclei_core.cli, nuclei_core.batch.collection, nuclei_core.batch.distributed"
    )
    code = f"import sys, {modules}; print('dask' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout == "False\n", done.stderr


@pytest.mark.slow
def test_dask_gives_the_same_files_as_one_process_and_loads_the_model_once_per_worker(
    tmp_path, images, client, trained_run
):
    source = distributed.ModelSource(str(trained_run.result.model_path), "tensorflow", "float32")
    files = sorted(images.iterdir())
    alone = list(predict_files(source.load(), files, FileJob(tmp_path / "alone")))
    spread = list(distributed.predict_files(client, source, files, FileJob(tmp_path / "dask")))

    assert sorted(result.path.name for result in spread) == [path.name for path in files]
    by_name = {result.path.name: result for result in spread}
    for result in alone:
        other = by_name[result.path.name]
        assert (other.status, other.count, other.kind) == (result.status, result.count, result.kind)
    assert by_name["broken.png"].status == "failed"
    assert "broken.png" in by_name["broken.png"].message
    assert sum(result.count for result in alone) >= 4 * N_IMAGES  # real nuclei to compare

    written = sorted(path.name for path in (tmp_path / "alone").iterdir())
    assert written == sorted(path.name for path in (tmp_path / "dask").iterdir())
    assert len(written) == 3 * N_IMAGES
    for name in written:
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "alone" / name).read_bytes()

    loads = client.run(distributed.model_loads)
    assert len(loads) == 2 and max(loads.values()) == 1 and sum(loads.values()) >= 1
    good = [path for path in files if path.name != "broken.png"][:2]
    again = list(distributed.predict_files(client, source, good, FileJob(tmp_path / "more")))
    assert [result.status for result in again] == ["ok", "ok"]
    assert client.run(distributed.model_loads) == loads  # the workers kept their model
    runtimes = distributed.load_on_workers(client, source)
    assert list(runtimes.values()) == ["TensorFlow, float32"] * 2
    assert list(client.run(distributed.model_loads).values()) == [1, 1]


def test_a_task_that_raises_fails_alone_naming_its_file(tmp_path, images, client):
    source = distributed.ModelSource(str(tmp_path / "missing.keras"), "tensorflow", "float32")
    results = list(
        distributed.predict_files(client, source, [images / "cells0.png"], FileJob(tmp_path))
    )
    assert [result.status for result in results] == ["failed"]
    assert results[0].message.startswith(f"{images / 'cells0.png'}: ")


def test_a_scheduler_that_does_not_answer_is_named_in_one_line():
    with socket.socket() as handle:  # a port nobody listens on
        handle.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{handle.getsockname()[1]}"
    with pytest.raises(NucleiError, match=rf"^{re.escape(address)}: cannot reach the Dask"):
        with distributed.connect(address, timeout="1s"):
            pass


def test_a_scheduler_without_nuclei_core_is_refused_before_any_task(tmp_path):
    probe = [sys.executable, "-c", "import importlib.util as u; print(u.find_spec('nuclei_core'))"]
    clean = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    if subprocess.run(probe, cwd=tmp_path, env=clean, capture_output=True, text=True).stdout != (
        "None\n"
    ):
        pytest.skip("nuclei_core is installed: every scheduler here can import it")
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        port = handle.getsockname()[1]
    command = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", str(port)]
    command += ["--dashboard-address", ":0"]
    scheduler = subprocess.Popen(
        command, cwd=tmp_path, env=clean, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    address = f"tcp://127.0.0.1:{port}"
    try:
        with pytest.raises(
            NucleiError, match=rf"^{address}: the scheduler cannot import nuclei_core"
        ):
            with distributed.connect(address, timeout="30s"):
                pass
    finally:
        scheduler.kill()
        scheduler.wait()


@pytest.mark.slow
def test_predict_dask_on_the_command_line(tmp_path, images, trained_run, capsys):
    (images / "broken.png").unlink()
    model = str(trained_run.result.model_path)
    common = ["predict", "--model", model, str(images), "--backend", "tensorflow"]
    summary = tmp_path / "summary.csv"
    dask = ["--out", str(tmp_path / "dask"), "--dask", "--workers", "2", "--summary", str(summary)]
    code = cli.main([*common, *dask])
    out = capsys.readouterr().out
    assert code == 0, out
    model_line = r"^model: \S+ \(TensorFlow, float32; Dask, 2 workers on a local cluster\)$"
    assert re.search(model_line, out, re.M)
    image_line = r"^cells\d\.png: \d+ nuclei \(fluorescence, [\d.]+ s\)$"
    assert len(re.findall(image_line, out, re.M)) == N_IMAGES
    assert summary.read_text().count(",ok,") == N_IMAGES
    assert cli.main([*common, "--out", str(tmp_path / "alone")]) == 0
    for path in (tmp_path / "alone").iterdir():
        assert (tmp_path / "dask" / path.name).read_bytes() == path.read_bytes()


def test_dask_segments_a_tiled_input_as_a_whole_slide_like_one_process(
    tmp_path, make_sample, client, trained_run
):
    image, _ = make_sample((256, 320), n_nuclei=20, n_touching_pairs=2, seed=77)
    source_file = tmp_path / "slide.tif"
    tifffile.imwrite(source_file, image, tile=(128, 128))
    source = distributed.ModelSource(str(trained_run.result.model_path), "tensorflow", "float32")
    job = FileJob(tmp_path / "dask", tiled=True, options=SegmentOptions(tile_size=128))
    (spread,) = distributed.predict_files(client, source, [source_file], job)
    alone_job = FileJob(tmp_path / "alone", tiled=True, options=SegmentOptions(tile_size=128))
    (alone,) = predict_files(source.load(), [source_file], alone_job)

    assert spread.status == alone.status == "ok" and spread.kind == "slide"
    assert spread.count == alone.count >= 10
    assert "in 6 tiles" in spread.line() and "slide_labels.ome.zarr" in spread.line()
    written = sorted(path.name for path in (tmp_path / "dask").iterdir())
    assert "slide_nuclei.csv" in written and "slide_labels.ome.zarr" in written
    assert (tmp_path / "dask" / "slide_nuclei.csv").read_bytes() == (
        tmp_path / "alone" / "slide_nuclei.csv"
    ).read_bytes()
