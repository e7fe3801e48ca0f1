"""The targets, each with its measured value and ``pass``, ``FAIL`` or ``not measured``.

In the order the Targets table lists them: speed (images/s, seconds end to end, peak
memory); the default model ahead of the other rows and its mean scores on the first
data set (DSB 2018 stage1_train by default), and its weakest image kind there; then,
on every data set, its scores per image kind and its lead over each learned peer; and
the size of its file.
"""

from __future__ import annotations

from bench.sections.quality import find_row, lead_groups, lead_text, paired_lead, rows_of_set

GB = 1e9
TARGET_IMAGES_PER_SECOND = 40.0
"""The network alone at 256 x 256, batched (issue 25's floor for a wider network)."""
TARGET_SECONDS_1024 = 0.30
"""One 1024 x 1024 image end to end: read, network, nuclei, measurements."""
TARGET_SECONDS_4096 = 4.0
"""One 4096 x 4096 image: read and segment, in a fresh process (import and load excluded)."""
TARGET_PEAK_BYTES = 3e9
TARGET_FOLDER_RATIO = 1.5
"""A folder end to end may take at most this many times the classical pipeline's time."""

FIRST_SET_MEAN_SCORES = (
    ("mean_dsb_score", "DSB score", 0.55),
    ("mean_f1", "F1@0.5", 0.85),
    ("mean_foreground_iou", "foreground IoU", 0.88),
    ("mean_pixel_accuracy", "pixel accuracy", 0.97),
)
"""``(summary key, name, threshold)``: the default model's mean scores over the first set."""

MIN_GROUP_DSB = 0.40
"""No image-kind group of the first set may score below this DSB score."""

COMPARED_ROWS = ("mobilenetv2", "classical")
"""The rows the default model must be ahead of on the first set."""

FIRST_SET_KIND_SCORES = (
    ("all", "mean_dsb_score", "DSB score", 0.60),
    ("fluorescence", "mean_dsb_score", "DSB score", 0.62),
    ("stained", "mean_dsb_score", "DSB score", 0.45),
    ("brightfield", "mean_dsb_score", "DSB score", 0.45),
    ("all", "mean_f1", "F1@0.5", 0.88),
    ("all", "mean_foreground_iou", "foreground IoU", 0.88),
)
"""``(group, summary key, name, threshold)``: the default model's scores per image kind
on the first set's test split."""

TISSUE_SET_SCORES = (
    ("all", "mean_dsb_score", "DSB score", 0.45),
    ("all", "mean_f1", "F1@0.5", 0.80),
)
"""As :data:`FIRST_SET_KIND_SCORES`, on the test split of every further (stained-tissue) set."""

HALF_SIZE_SET_SCORES = (("all", "mean_dsb_score", "DSB score", 0.40),)
"""As :data:`TISSUE_SET_SCORES`, on a set whose name says ``20x``: the 40x tiles at half
size (``python -m bench.tools.half_size``)."""

LEAD_PEERS = ("mobilenetv2", "stardist")
"""The peers the default model must lead on DSB score, with a 95 % interval above zero."""

MAX_MODEL_MEGABYTES = 40.0
"""The largest the default model's file may be."""


def target(text: str, measured: str, passed: bool | None) -> dict:
    """One target row; ``passed`` None means it was not measured.

    Examples
    --------
    >>> target("model file <= 40 MB", "7.9 MB", True)["result"]
    'pass'
    """
    result = "not measured" if passed is None else ("pass" if passed else "FAIL")
    return {"target": text, "measured": measured, "result": result}


def speed_targets(speed: dict) -> list[dict]:
    """The network's images/s at 256 x 256; seconds end to end at 1024 x 1024 and at
    4096 x 4096; memory at 4096 x 4096; a folder against the classical pipeline.

    Examples
    --------
    >>> speed = {"folder": {"default": {"seconds": 9.0}, "otsu_watershed": {"seconds": 5.0}}}
    >>> [row["result"] for row in speed_targets(speed)]
    ['not measured', 'not measured', 'not measured', 'not measured', 'FAIL']
    """
    rate = speed.get("throughput_256", {}).get("default", {}).get("images_per_s")
    seconds = speed.get("end_to_end_1024", {}).get("median_seconds")
    large = speed.get("large_4096", {})
    large_seconds, peak = large.get("seconds_read_and_segment"), large.get("peak_rss_bytes")
    folder = speed.get("folder", {})
    mine, classical = (
        folder.get(name, {}).get("seconds") for name in ("default", "otsu_watershed")
    )
    ratio = mine / classical if mine and classical else None
    return [
        target(
            f">= {TARGET_IMAGES_PER_SECOND:g} images/s at 256 x 256 (the network alone, batched)",
            f"{rate:.1f} images/s" if rate is not None else "-",
            None if rate is None else rate >= TARGET_IMAGES_PER_SECOND,
        ),
        target(
            f"1024 x 1024 end to end <= {TARGET_SECONDS_1024:g} s",
            f"{seconds:.2f} s" if seconds is not None else "-",
            None if seconds is None else seconds <= TARGET_SECONDS_1024,
        ),
        target(
            f"4096 x 4096 read and segmented <= {TARGET_SECONDS_4096:g} s",
            f"{large_seconds:.1f} s" if large_seconds is not None else "-",
            None if large_seconds is None else large_seconds <= TARGET_SECONDS_4096,
        ),
        target(
            f"4096 x 4096 within {TARGET_PEAK_BYTES / GB:g} GB peak memory",
            f"{peak / GB:.2f} GB" if peak is not None else "-",
            None if peak is None else peak <= TARGET_PEAK_BYTES,
        ),
        target(
            f"a folder end to end <= {TARGET_FOLDER_RATIO:g}x the classical pipeline's time",
            f"{ratio:.2f}x ({mine:g} s against {classical:g} s)" if ratio is not None else "-",
            None if ratio is None else ratio <= TARGET_FOLDER_RATIO,
        ),
    ]


def ahead_targets(rows: list[dict]) -> list[dict]:
    """The default model ahead of the recipe and the classical row, on DSB score and fg IoU."""
    default = find_row(rows, "default")
    others = [row for row in rows if row["name"] in COMPARED_ROWS]
    scored = [row for row in others if row["status"] == "ok"]
    missing = [row["name"] for row in others if row["status"] != "ok"]
    targets = []
    for key, name in (("mean_dsb_score", "DSB score"), ("mean_foreground_iou", "foreground IoU")):
        text = f"default model ahead of both other rows on {name}"
        if default is None or default["status"] != "ok" or not scored:
            targets.append(target(text, "-", None))
            continue
        mine = default["summary"]["all"][key]
        theirs = {row["name"]: row["summary"]["all"][key] for row in scored}
        image_key = key.removeprefix("mean_")
        measured = f"{mine:.3f} vs " + ", ".join(
            f"{row['name']} {theirs[row['name']]:.3f} "
            f"({lead_text(paired_lead(default, row, image_key))})"
            for row in scored
        )
        if missing:
            measured += f"; no {', '.join(missing)} row"
        targets.append(target(text, measured, all(mine > value for value in theirs.values())))
    return targets


def first_set_targets(rows: list[dict]) -> list[dict]:
    """The default model's thresholds over the first set, and its weakest image kind."""
    default = find_row(rows, "default")
    ok = default is not None and default["status"] == "ok"
    targets = ahead_targets(rows)
    for key, name, threshold in FIRST_SET_MEAN_SCORES:
        value = default["summary"]["all"][key] if ok else None
        targets.append(
            target(
                f"default model {name} >= {threshold:g}",
                f"{value:.3f}" if value is not None else "-",
                None if value is None else value >= threshold,
            )
        )
    text = f"no image-kind group of the default model below {MIN_GROUP_DSB:g} DSB"
    groups = {g: s for g, s in default["summary"].items() if g != "all"} if ok else {}
    if not groups:
        return targets + [target(text, "-", None)]
    worst = min(groups, key=lambda group: groups[group]["mean_dsb_score"])
    worst_score = groups[worst]["mean_dsb_score"]
    measured = f"lowest: {worst} {worst_score:.3f} (n={groups[worst]['n_images']})"
    passed = all(scores["mean_dsb_score"] >= MIN_GROUP_DSB for scores in groups.values())
    return targets + [target(text, measured, passed)]


def threshold_targets(set_name: str, rows: list[dict], thresholds) -> list[dict]:
    """The default model's score thresholds on one set, per image group."""
    default = find_row(rows, "default")
    summary = default["summary"] if default is not None and default["status"] == "ok" else {}
    targets = []
    for group, key, name, threshold in thresholds:
        scores = summary.get(group)
        where = "" if group == "all" else f" {group}"
        text = f"{set_name}{where}: default model {name} >= {threshold:g}"
        if scores is None:
            targets.append(target(text, "-", None))
            continue
        measured = f"{scores[key]:.3f} (n={scores['n_images']})"
        targets.append(target(text, measured, scores[key] >= threshold))
    return targets


def find_lead(leads: list[dict], set_name: str, mine: str, theirs: str, group: str):
    """The lead of row ``mine`` over row ``theirs`` on ``group`` of one set, or None."""
    wanted = {"dataset": set_name, "mine": mine, "theirs": theirs, "group": group}
    return next(
        (lead for lead in leads if all(lead[key] == value for key, value in wanted.items())),
        None,
    )


def lead_targets(set_name: str, rows: list[dict], leads: list[dict]) -> list[dict]:
    """The default model leads each peer on DSB score with a 95 % interval above zero.

    Over all images of the set, and over its stained ones where it has other kinds too.
    """
    default = find_row(rows, "default")
    ok = default is not None and default["status"] == "ok"
    groups = [group for group in lead_groups(default) if group in ("all", "stained")] if ok else []
    targets = []
    for peer in LEAD_PEERS:
        for group in groups or ["all"]:
            where = "" if group == "all" else f" {group}"
            text = (
                f"{set_name}{where}: default model leads {peer} on DSB score, 95 % interval above 0"
            )
            lead = find_lead(leads, set_name, "default", peer, group)
            if lead is None:
                targets.append(target(text, f"no {peer} row", None))
            else:
                targets.append(target(text, lead_text(lead), lead["low"] > 0))
    return targets


def size_target(models: dict) -> dict:
    """The default model's file is at most :data:`MAX_MODEL_MEGABYTES`."""
    megabytes = models.get("default", {}).get("file_megabytes")
    return target(
        f"default model file <= {MAX_MODEL_MEGABYTES:g} MB",
        f"{megabytes} MB" if megabytes is not None else "-",
        None if megabytes is None else megabytes <= MAX_MODEL_MEGABYTES,
    )


def evaluate_targets(report: dict) -> list[dict]:
    """Every target of the report, in the order the Targets table lists them."""
    quality, leads = report.get("quality", []), report.get("leads", [])
    names = [dataset["name"] for dataset in report.get("datasets", [])]
    targets = speed_targets(report.get("speed", {}))
    targets += first_set_targets(rows_of_set(quality, names[0]) if names else [])
    for index, name in enumerate(names):
        rows = rows_of_set(quality, name)
        thresholds = FIRST_SET_KIND_SCORES if index == 0 else TISSUE_SET_SCORES
        if index and "20x" in name:
            thresholds = HALF_SIZE_SET_SCORES
        targets += threshold_targets(name, rows, thresholds)
        targets += lead_targets(name, rows, leads)
    return targets + [size_target(report.get("models", {}))]
