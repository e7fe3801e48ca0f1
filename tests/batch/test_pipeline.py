"""Several images in flight: ``ordered_map`` keeps the order and the bound, and a folder run
with two images in flight writes what one at a time writes."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nuclei_core.batch.collection import FileJob, predict_files
from nuclei_core.batch.pipeline import ordered_map
from nuclei_core.errors import InputError


class Gauge:
    """Counts the calls running at once, and the most there ever were."""

    def __init__(self):
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def __call__(self, number: int) -> int:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(random.Random(number).uniform(0.0, 0.02))  # finish out of order
        with self.lock:
            self.running -= 1
        return number * 10


@pytest.mark.parametrize("in_flight", [1, 2, 4])
def test_results_come_in_the_order_of_the_items_within_the_bound(in_flight):
    gauge = Gauge()
    assert list(ordered_map(gauge, range(20), in_flight)) == [number * 10 for number in range(20)]
    assert gauge.most <= in_flight
    if in_flight > 1:
        assert gauge.most == in_flight  # the calls do overlap


def test_items_are_drawn_only_as_results_are_taken():
    drawn = []

    def items():
        for number in range(100):
            drawn.append(number)
            yield number

    results = ordered_map(lambda number: number, items(), in_flight=3)
    assert [next(results) for _ in range(2)] == [0, 1]
    assert len(drawn) <= 2 + 3  # the results taken, and at most three more in flight
    results.close()


def test_an_exception_is_raised_at_its_turn_and_later_items_are_not_started():
    started = []

    def fail_on_three(number):
        started.append(number)
        if number == 3:
            raise RuntimeError("three")
        return number

    results = ordered_map(fail_on_three, range(50), in_flight=2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(RuntimeError, match="three"):
        next(results)
    assert max(started) <= 5


@pytest.mark.parametrize("in_flight", [0, -1, 1.5, True, "2"])
def test_in_flight_must_be_a_whole_number_of_at_least_one(in_flight):
    with pytest.raises(InputError, match="in_flight"):
        list(ordered_map(str, ["a"], in_flight))


class BrightnessModel:
    """A stand-in network (the OpenVINO model's interface): foreground where the image is
    bright, no boundaries; deterministic, so both runs must agree to the byte."""

    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        foreground = np.clip(batch.mean(axis=-1, keepdims=True) * 1.5, 0.0, 1.0)
        return np.concatenate([foreground, np.zeros_like(foreground)], axis=-1).astype(np.float32)


def test_a_folder_run_with_two_images_in_flight_writes_what_one_at_a_time_writes(
    tmp_path, make_sample
):
    folder = tmp_path / "images"
    folder.mkdir()
    files = []
    for index in range(7):
        image, _ = make_sample((96 + 16 * index, 80), n_nuclei=6, seed=70 + index)
        files.append(folder / f"img{index}.png")
        Image.fromarray(image).save(files[-1])
    files.insert(3, folder / "broken.png")
    files[3].write_text("not an image")
    model = BrightnessModel()

    def run(name: str, in_flight: int):
        job = FileJob(tmp_path / name, ("mask", "labels", "csv"))
        return job.out, list(predict_files(model, files, job, in_flight=in_flight))

    alone_out, alone = run("alone", 1)
    overlapped_out, overlapped = run("overlapped", 2)
    assert [result.path for result in overlapped] == files
    assert [result.status for result in overlapped] == ["ok"] * 3 + ["failed"] + ["ok"] * 4
    assert "broken.png" in overlapped[3].message
    assert [result.count for result in overlapped] == [result.count for result in alone]
    assert sum(result.count for result in alone) > 0
    names = sorted(path.name for path in alone_out.iterdir())
    assert names == sorted(path.name for path in overlapped_out.iterdir()) and len(names) == 21
    for name in names:
        assert (alone_out / name).read_bytes() == (overlapped_out / name).read_bytes(), name
    assert isinstance(overlapped[0].path, Path)
