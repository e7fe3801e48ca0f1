"""Tests of the benchmark's statistics (``bench/run.py``); the benchmark itself is a script."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH_SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_run", BENCH_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(scores):
    return {"images": [{"id": image_id, "dsb_score": score} for image_id, score in scores.items()]}


def test_paired_lead_pairs_images_by_id(bench):
    mine = row({"a": 0.6, "b": 0.5, "c": 0.9})
    theirs = row({"c": 0.8, "b": 0.4, "a": 0.5, "only_theirs": 0.0})
    lead = bench.paired_lead(mine, theirs, "dsb_score")
    assert lead["lead"] == pytest.approx(0.1)
    assert lead["images"] == 3 and lead["images_better"] == 3
    assert lead["low"] == pytest.approx(0.1) and lead["high"] == pytest.approx(0.1)


def test_paired_lead_interval_includes_zero_when_the_rows_trade_places(bench):
    mine = row({str(index): 0.5 + (0.1 if index % 2 else -0.1) for index in range(40)})
    theirs = row({str(index): 0.5 for index in range(40)})
    lead = bench.paired_lead(mine, theirs, "dsb_score")
    assert lead["lead"] == pytest.approx(0.0, abs=1e-12)
    assert lead["low"] < 0 < lead["high"]
    assert lead["images_better"] == 20
