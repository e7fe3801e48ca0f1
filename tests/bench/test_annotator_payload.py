"""bench.annotator_payload on a small image: the patch after an edit is the changed box
only, far smaller than the whole label image, and the report is written."""

from __future__ import annotations

import json

from bench import annotator_payload


def test_the_patch_is_the_new_nucleus_box_only(tmp_path):
    annotator_payload.main(["--sides", "250", "--out-dir", str(tmp_path)])
    (row,) = json.loads((tmp_path / "annotator_payload.json").read_text())["rows"]
    assert row["patch_boxes"] == [[7, 7]]  # the outline's corners 6 pixels apart, ends in
    assert row["nuclei"] == 122 and row["patch_bytes"] * 10 < row["whole_bytes"]
    assert "| 250 | 122 | 7 x 7 |" in (tmp_path / "annotator_payload.md").read_text()
