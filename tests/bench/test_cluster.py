"""``bench/cluster.py``: images/s of batch prediction alone (1 or 2 images in flight) and on Dask.

A quick run (three copies of the sample images, one Dask worker, the tiny model)
must measure every engine on every image and write its section of RESULTS.md.
"""

from __future__ import annotations

import json

from bench import cluster


def test_quick_run_measures_each_engine_and_writes_its_section(tmp_path, tiny_model_file):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Speed\n\nfast\n\n## Notes\n\nnone\n")
    argv = ["--images", "3", "--rounds", "2", "--workers", "1", "--in-flight", "1", "2"]
    argv += ["--model", str(tiny_model_file)]
    assert cluster.main([*argv, "--backend", "tensorflow", "--out-dir", str(tmp_path)]) == 0

    figures = json.loads((tmp_path / "cluster.json").read_text())
    assert [(row["engine"], row["workers"], row.get("in_flight")) for row in figures["rows"]] == [
        ("one process", None, 1),
        ("one process", None, 2),
        ("Dask LocalCluster", 1, None),
    ]
    for row in figures["rows"]:
        assert row["images"] == 3 and row["failed"] == 0 and row["images_per_second"] > 0
        assert len(row["rounds"]) == 2 and row["images_per_second"] == max(row["rounds"])
    assert figures["rows"][2]["model_loads"] == 1
    assert figures["images"] == 3 and figures["megapixels"] > 0

    text = results.read_text()
    assert text.count(cluster.HEADING) == 1
    assert text.index("## Speed") < text.index(cluster.HEADING) < text.index("## Notes")
    assert "| Dask LocalCluster, 1 worker | 3 | 0 |" in text
    assert "| one process, 2 images in flight | 3 | 0 |" in text
    assert cluster.render_cluster(figures)[0] == cluster.HEADING
