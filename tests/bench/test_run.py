"""Tests of the benchmark (``bench/``): its statistics, tables, peers and one tiny run.

Everything runs on generated data (no ``../shared``): a tiny dataset on disk, an
untrained tiny model, and report rows written by hand.
"""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

from bench import stardist_peer
from bench.sections import (
    flops,
    peers,
    quality,
    report,
    report_speed,
    segmenters,
    speed,
    targets,
)
from bench.tools import machine, markdown, paths, progress
from nuclei_core.errors import DatasetError
from nuclei_core.network import runtime
from nuclei_core.segmentation import classical


@pytest.fixture(scope="module")
def bench():
    return quality


@pytest.mark.parametrize(
    "module",
    [
        *(machine, markdown, paths, progress),
        *(flops, peers, quality, report, report_speed, segmenters, speed, targets),
    ],
    ids=lambda module: module.__name__,
)
def test_docstring_examples_run(module):
    assert doctest.testmod(module).failed == 0


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


# ----------------------------------------------------------------------------- quality rows


def scored_row(dataset, name, images, offset=0.0):
    """A quality row as ``quality_row`` writes it; ``images`` maps an id to its kind."""
    scores = {image_id: 0.5 + offset + 0.01 * index for index, image_id in enumerate(images)}
    per_image = [
        {"id": image_id, "kind": kind, "dsb_score": scores[image_id], "foreground_iou": 0.8}
        for image_id, kind in images.items()
    ]

    def summary(chosen):
        mean = float(np.mean([image["dsb_score"] for image in chosen]))
        columns = {key: mean for key, _ in report.QUALITY_COLUMNS}
        return {**columns, "mean_f1": mean + 0.3, "n_images": len(chosen)}

    groups = {"all": per_image}
    for group in quality.GROUPS[1:]:
        chosen = [image for image in per_image if quality.in_group(image["kind"], group)]
        if chosen and (group != "brightfield+stained" or len(chosen) < len(per_image)):
            groups[group] = chosen
    return {
        "dataset": dataset,
        "name": name,
        "label": f"{name} label",
        "status": "ok",
        "options": None,
        "seconds_per_image": 0.1,
        "summary": {group: summary(chosen) for group, chosen in groups.items()},
        "images": per_image,
    }


DSB_IMAGES = {"f1": "fluorescence", "f2": "fluorescence", "s1": "stained", "b1": "brightfield"}
HE_IMAGES = {"t1": "stained", "t2": "stained", "t3": "stained"}


@pytest.fixture
def two_set_report():
    """A report of two sets: default, candidate and classical rows; no MobileNetV2 model."""
    rows = []
    for name, images in (("dsb2018/stage1_train", DSB_IMAGES), ("monuseg/train", HE_IMAGES)):
        rows += [
            scored_row(name, "default", images),
            scored_row(name, "candidate", images, offset=0.1),
            {"dataset": name, "name": "mobilenetv2", "label": "recipe", "status": "missing: x"},
            scored_row(name, "classical", images, offset=-0.2),
        ]
    leads = []
    for name in ("dsb2018/stage1_train", "monuseg/train"):
        leads += quality.set_leads(quality.rows_of_set(rows, name))
    datasets = [
        {"name": "dsb2018/stage1_train", "split": "test", "n_images": 4},
        {"name": "monuseg/train", "split": "test", "n_images": 3},
    ]
    return {"datasets": datasets, "quality": rows, "leads": leads, "models": {}}


def test_quality_table_has_a_line_per_method_of_one_set(two_set_report):
    rows = quality.rows_of_set(two_set_report["quality"], "monuseg/train")
    header, body = report.quality_table(rows)
    assert [line[0] for line in body] == [
        "default label",
        "candidate label",
        "recipe",
        "classical label",
    ]
    assert body[2][1] == "missing: x"
    assert header[1] == "DSB score" and body[0][1] == "0.510"
    assert all(len(line) == len(header) for line in body if line[0] != "recipe")


def test_kind_table_lists_every_kind_of_its_set_only(two_set_report):
    dsb = quality.rows_of_set(two_set_report["quality"], "dsb2018/stage1_train")
    he = quality.rows_of_set(two_set_report["quality"], "monuseg/train")
    dsb_kinds = [line[0] for line in report.kind_table(dsb)[1]]
    he_kinds = [line[0] for line in report.kind_table(he)[1]]
    assert list(dict.fromkeys(dsb_kinds)) == [
        "fluorescence (n=2)",
        "brightfield+stained (n=2)",
        "stained (n=1)",
        "brightfield (n=1)",
    ]
    assert set(he_kinds) == {"stained (n=3)"} and len(he_kinds) == 3  # one line a method


def test_leads_compare_the_candidate_and_the_default_once_per_pair_and_group(two_set_report):
    leads = quality.rows_of_set(two_set_report["leads"], "dsb2018/stage1_train")
    pairs = {(lead["mine"], lead["theirs"]) for lead in leads}
    assert pairs == {("candidate", "default"), ("candidate", "classical"), ("default", "classical")}
    groups = {lead["group"] for lead in leads}
    assert groups == {"all", "fluorescence", "brightfield+stained", "stained", "brightfield"}
    candidate_over_default = next(
        lead for lead in leads if lead["mine"] == "candidate" and lead["group"] == "all"
    )
    assert candidate_over_default["lead"] == pytest.approx(0.1)
    he_groups = {
        lead["group"]
        for lead in two_set_report["leads"]
        if lead["dataset"] != "dsb2018/stage1_train"
    }
    assert he_groups == {"all"}  # its only kind holds all its images


def test_the_quality_section_shows_every_set_with_its_kinds_and_leads(two_set_report):
    text = "\n".join(report.render_quality(two_set_report))
    assert text.index("### dsb2018/stage1_train (test split, 4 images") < text.index(
        "### monuseg/train (test split, 3 images"
    )
    assert text.count("By image kind:") == 2 and text.count("Paired leads on DSB score:") == 2
    assert "| candidate label | default label | +0.100 (+0.100 to +0.100), 4 / 4 |" in text


def test_targets_are_given_per_set_and_say_when_a_peer_is_missing(two_set_report):
    rows = {entry["target"]: entry for entry in targets.evaluate_targets(two_set_report)}
    he_dsb = rows["monuseg/train: default model DSB score >= 0.45"]
    assert he_dsb["result"] == "pass" and he_dsb["measured"] == "0.510 (n=3)"
    assert (
        rows["dsb2018/stage1_train stained: default model DSB score >= 0.45"]["measured"]
        == "0.520 (n=1)"
    )
    lead = "default model leads mobilenetv2 on DSB score, 95 % interval above 0"
    assert rows[f"monuseg/train: {lead}"]["result"] == "not measured"
    assert rows[f"dsb2018/stage1_train stained: {lead}"]["measured"] == "no mobilenetv2 row"
    assert rows["default model file <= 40 MB"]["result"] == "not measured"


def test_a_half_size_set_has_the_20x_target_and_the_speed_targets_are_issue_25s(two_set_report):
    for row in two_set_report["quality"] + two_set_report["leads"]:
        if row["dataset"] == "monuseg/train":
            row["dataset"] = "work/monuseg2018_20x_test"
    two_set_report["datasets"][1]["name"] = "work/monuseg2018_20x_test"
    two_set_report["speed"] = {
        "throughput_256": {"default": {"images_per_s": 41.0}},
        "end_to_end_1024": {"median_seconds": 0.31},
        "large_4096": {"seconds_read_and_segment": 3.9, "peak_rss_bytes": 1.5e9},
        "folder": {"default": {"seconds": 7.4}, "otsu_watershed": {"seconds": 5.0}},
    }
    rows = {entry["target"]: entry for entry in targets.evaluate_targets(two_set_report)}
    half = rows["work/monuseg2018_20x_test: default model DSB score >= 0.4"]
    assert half["result"] == "pass" and half["measured"] == "0.510 (n=3)"
    assert not any(name.startswith("work/monuseg2018_20x_test: default model F1") for name in rows)
    results = [row["result"] for row in targets.speed_targets(two_set_report["speed"])]
    assert results == ["pass", "FAIL", "pass", "pass", "pass"]
    assert rows["a folder end to end <= 1.5x the classical pipeline's time"]["measured"] == (
        "1.48x (7.4 s against 5 s)"
    )


def test_load_set_counts_the_kinds_of_the_chosen_split(tmp_path, flat_dataset_factory):
    folder = flat_dataset_factory(tmp_path / "tiny", n_images=4)
    bench_set = quality.load_set(folder, "all", limit=3)
    assert bench_set.name == f"{tmp_path.name}/tiny"
    assert bench_set.kinds == {"fluorescence": 3}
    assert bench_set.describe()["ids"] == ["img00", "img01", "img02"]
    with pytest.raises(DatasetError, match="the test split is empty"):
        quality.load_set(flat_dataset_factory(tmp_path / "one", n_images=1), "test")


# ----------------------------------------------------------------------------- peers


def test_peers_without_a_mobilenetv2_model_give_the_command_that_retrains_it(tmp_path):
    card = {"params": {"data": ["../shared/a", "../shared/b"], "time_budget_minutes": 120.0}}
    found = {peer["name"]: peer for peer in peers.find_peers(tmp_path / "model.keras", card)}
    assert list(found) == ["mobilenetv2", "stardist", "classical", "classical_he"]
    recipe = found["mobilenetv2"]
    assert not recipe["found"] and "not found here" in recipe["status"]
    assert recipe["how"].startswith("`python -m nuclei_core train --data ../shared/a ../shared/b")
    assert "--arch mobilenetv2 --crop 128 --batch-size 10" in recipe["how"]
    assert "--time-budget 120 --out runs/mobilenetv2" in recipe["how"]
    assert "pretrained weights cannot be downloaded here" in found["stardist"]["status"]
    assert found["classical_he"]["found"] and "greyscale" in found["classical_he"]["how"]


STARDIST_CARD = {
    "command": "python -m bench.stardist_peer train --minutes 120 --out runs/stardist",
    "epochs_run": 151,
    "steps_per_epoch": 100,
    "batch_size": 4,
    "train_seconds": 7201.0,
    "thresholds": {"prob": 0.47, "nms": 0.3},
}


def test_retrained_peers_are_kept_where_the_benchmark_looks(tmp_path, monkeypatch):
    from bench import train_peers

    run = tmp_path / "runs" / "mobilenetv2"
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(b"weights")
    (run / "model.json").write_text('{"command": "python -m nuclei_core train"}')
    (run / "checkpoint_last.keras").write_bytes(b"not kept")
    kept = tmp_path / "models" / "peers" / "mobilenetv2" / "model.keras"
    monkeypatch.setattr(train_peers, "MOBILENETV2_MODEL", kept)
    train_peers.keep_mobilenetv2(run)
    assert sorted(path.name for path in kept.parent.iterdir()) == ["model.json", "model.keras"]
    assert paths.MOBILENETV2_MODEL.relative_to(paths.PROJECT_ROOT).as_posix() == (
        "models/peers/mobilenetv2/model.keras"
    )
    peer = peers.mobilenetv2_peer(kept, {})
    assert peer["found"] and peer["how"] == "`python -m nuclei_core train`"


def test_stardist_peer_says_what_is_missing_and_how_it_was_trained(tmp_path, monkeypatch):
    missing = peers.stardist_peer(tmp_path / "stardist")
    assert not missing["found"] and "weights_best.h5 not found" in missing["status"]
    assert "python -m bench.train_peers" in missing["how"]
    model_dir = tmp_path / "stardist"
    model_dir.mkdir()
    (model_dir / "weights_best.h5").write_bytes(b"weights")
    (model_dir / "card.json").write_text(json.dumps(STARDIST_CARD))
    monkeypatch.setattr(peers.importlib.util, "find_spec", lambda name: object())
    found = peers.stardist_peer(model_dir)
    assert found["found"] and "trained here, found at" in found["status"]
    assert "151 epochs of 100 batches of 4 in 120 min" in found["how"]
    assert "probability 0.47, overlap 0.30" in found["how"]
    monkeypatch.setattr(peers.importlib.util, "find_spec", lambda name: None)
    without = peers.stardist_peer(model_dir)
    assert not without["found"] and "requirements-peers.txt" in without["status"]


def test_stardist_process_labels_an_image_in_its_child_process(tmp_path):
    pytest.importorskip("stardist")
    pytest.importorskip("tf_keras")
    if peers.stardist_missing():
        pytest.skip(peers.stardist_missing())
    image = np.zeros((256, 256), np.uint8)
    for row, col in [(60, 60), (60, 180), (180, 120)]:
        image[row - 12 : row + 12, col - 12 : col + 12] = 200
    process = segmenters.StarDistProcess()
    try:
        labels = process(image)
        again = process(image)
    finally:
        process.close()
    assert labels.shape == image.shape and labels.dtype == np.int32
    assert labels.max() == 3 and np.array_equal(labels, again)


def test_peers_with_a_mobilenetv2_model_say_how_its_card_says_it_was_made(tmp_path):
    model = tmp_path / "runs" / "mobilenetv2" / "model.keras"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"not opened by the finder")
    recipe = peers.mobilenetv2_peer(model, {})
    assert recipe["found"] and recipe["how"].startswith("unknown: no model card")
    command = "python -m nuclei_core train --arch mobilenetv2 --out runs/mobilenetv2"
    model.with_suffix(".json").write_text(json.dumps({"command": command}))
    recipe = peers.mobilenetv2_peer(model, {})
    assert recipe["found"] and recipe["how"] == f"`{command}`"


# ----------------------------------------------------------------------------- classical H&E


def test_classical_he_row_uses_the_hematoxylin_channel_only_on_colour_images(make_sample):
    grey, _ = make_sample((48, 48), seed=3)
    grey_rgb = np.dstack([grey] * 3)  # a grey picture saved as RGB, as in DSB 2018
    nuclei = 255 - grey.astype(np.float64) / 255 * 150
    colour = np.dstack([nuclei * 0.6, nuclei * 0.4, nuclei * 0.9]).astype(np.uint8)
    assert segmenters.classical_he_method(grey) == "otsu"
    assert segmenters.classical_he_method(grey_rgb) == "otsu"
    assert segmenters.classical_he_method(colour) == "hematoxylin"
    equal = np.testing.assert_array_equal
    equal(segmenters.classical_he(grey_rgb), segmenters.otsu_baseline(grey_rgb))
    equal(segmenters.classical_he(colour), classical.hematoxylin_labels(colour))


# ----------------------------------------------------------------------------- one tiny run


def test_a_tiny_run_writes_a_report_with_every_set_and_the_candidate(
    tmp_path, tiny_model_file, flat_dataset_factory, monkeypatch
):
    from bench import run

    idle = {"loadavg": [0.0, 0.0, 0.0], "busy_processes": []}
    monkeypatch.setattr(machine, "load_snapshot", lambda: idle)
    first = flat_dataset_factory(tmp_path / "first" / "set", n_images=3)
    second = flat_dataset_factory(tmp_path / "second" / "set", n_images=2, seed=9)
    out = tmp_path / "out"
    argv = ["--data", str(first), str(second), "--split", "all", "--skip-speed", "--no-tta"]
    argv += ["--default-model", str(tiny_model_file), "--model", str(tiny_model_file)]
    argv += ["--baseline-model", str(tmp_path / "absent.keras"), "--out-dir", str(out)]
    assert run.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert [dataset["name"] for dataset in results["datasets"]] == ["first/set", "second/set"]
    names = [(row["dataset"], row["name"]) for row in results["quality"]]
    auto = runtime.resolve_precision("auto", "openvino")
    other = "float32" if auto == "bfloat16" else "bfloat16"
    # bfloat16 only where the CPU computes it (auto picks it there): else it would be float32
    backends = ["default_tensorflow"] if runtime.openvino_available() else []
    backends += [f"default_{other}"] if backends and auto == "bfloat16" else []
    expected = [
        "default",
        "default_as_is",
        "candidate",
        *backends,
        "mobilenetv2",
        "stardist",
        "classical",
        "classical_he",
    ]
    assert names[: len(expected)] == [("first/set", name) for name in expected]
    assert len(names) == 2 * len(expected)
    first_rows = {row["name"]: row for row in results["quality"] if row["dataset"] == "first/set"}
    assert first_rows["default"]["options"]["diameter"] == "auto"  # as the app and CLI run
    assert first_rows["default_as_is"]["options"]["diameter"] is None
    runtimes = {name: model["runtime"] for name, model in results["models"].items()}
    if backends:
        assert runtimes["default"] == f"OpenVINO, {auto}"
        assert runtimes["default_tensorflow"] == "TensorFlow, float32"
        assert runtimes.get(f"default_{other}", f"OpenVINO, {other}") == f"OpenVINO, {other}"
    assert {lead["mine"] for lead in results["leads"]} == {"candidate", "default"}
    text = (out / "RESULTS.md").read_text()
    assert "### first/set (all split, 3 images" in text and "### second/set (all split" in text
    assert "| original recipe (MobileNetV2, 128 px crops) | no |" in text


def test_stardist_training_lists_each_image_as_often_as_the_default_sampler_draws_it():
    small, large = np.zeros((256, 256), np.int32), np.zeros((1000, 1000), np.int32)
    labels = [small] * 8 + [small, large]
    inputs = [np.zeros((*label.shape, 3), np.float32) for label in labels]
    groups = ["dsb"] * 8 + ["he", "he"]
    kinds = ["dsb/fluorescence"] * 8 + ["he/stained"] * 2
    repeated, repeated_labels = stardist_peer.repeat_by_weight(inputs, labels, kinds, groups)
    # H&E: weight sqrt(8 / 2) = 2; the 1000 x 1000 tile gives 4 crops an epoch, so 8 entries
    assert len(repeated) == len(repeated_labels) == 8 + 2 + 8
    assert sum(entry is inputs[-1] for entry in repeated) == 8


def test_stardist_augmentation_keeps_image_and_labels_aligned():
    np.random.seed(3)
    labels = np.zeros((40, 60), np.int32)
    labels[5:15, 10:30], labels[20:35, 40:45] = 1, 2
    image = np.repeat((labels > 0)[..., None], 3, axis=-1).astype(np.float32)
    for _ in range(8):
        turned, turned_labels = stardist_peer.augment(image, labels)
        assert turned.dtype == np.float32 and turned.shape[:2] == turned_labels.shape
        assert np.array_equal(turned[..., 0] > turned.min(), turned_labels > 0)
        assert sorted(np.unique(turned_labels)) == [0, 1, 2]


def test_models_table_adds_up_a_model_trained_in_two_runs():
    base = {"path": "m.keras", "architecture": "unet", "parameters": 10, "file_megabytes": 1.0}
    chained = base | {
        "commands": ["train A", "train A", "train B --start-from A"],
        "train_minutes_by_run": [119.7, 58.2],
        "train_seconds": 3492.0,
    }
    single = base | {"command": "train C", "train_seconds": 7200.0}
    lines = report.render_models({"default": chained, "peer": single}, {})
    rows = [line for line in lines if line.startswith("| default") or line.startswith("| peer")]
    assert "| 178 min (120 + 58) |" in rows[0] and "| 120 min |" in rows[1]
    assert "- default was trained with `train A`, then `train B --start-from A`." in lines
    assert "- peer was trained with `train C`." in lines
