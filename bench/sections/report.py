"""``bench/results/RESULTS.md``: the report as markdown, one short renderer per section.

Each ``render_*`` function takes its part of the report (the dict ``results.json``
holds) and returns markdown lines; the ``*_table`` functions assemble a table's
header and rows, and :func:`render_markdown` joins the sections.
"""

from __future__ import annotations

from bench.sections.peers import ENCODER_STARTS, made_with
from bench.sections.quality import GROUPS, rows_of_set
from bench.sections.report_speed import render_speed
from bench.tools.markdown import number, table

QUALITY_COLUMNS = (
    ("mean_dsb_score", "DSB score"),
    ("mean_f1", "F1@0.5"),
    ("mean_foreground_iou", "fg IoU"),
    ("mean_dice", "Dice"),
    ("mean_pixel_accuracy", "pixel acc."),
    ("mean_abs_count_error", "mean abs count error"),
)
"""``(summary key, column title)`` of the quality tables."""

SCORES_EXPLAINED = (
    "Means over images. DSB score: mean over IoU thresholds 0.50, 0.55 ... 0.95 of "
    "TP / (TP + FP + FN). F1@0.5: object F1, a match needs IoU > 0.5. fg IoU, Dice, pixel "
    "accuracy: the foreground masks. Count error: |predicted - true| nuclei per image. "
    "s / image: segmentation time per image (read and scoring excluded)."
)

KINDS_EXPLAINED = (
    "Kind as `nuclei_core.segmentation.preprocess.image_kind` decides it: colour images are "
    "stained, "
    "grey images with a bright background brightfield, the rest fluorescence."
)

LEADS_EXPLAINED = (
    "Paired leads: the first row's mean DSB score minus the second's over the same images, "
    "with the 95 % interval of a paired bootstrap (10,000 resamples of the images) and the "
    "number of images on which the first row scores higher. An interval that includes 0 "
    "means these images cannot tell the two rows apart."
)


def score_cells(scores: dict) -> list[str]:
    """The :data:`QUALITY_COLUMNS` of one summary group (counts with 2 decimals)."""
    return [number(scores[key], 2 if "count" in key else 3) for key, _ in QUALITY_COLUMNS]


# --------------------------------------------------------------------------- tables


def quality_table(rows) -> tuple[list[str], list[list[str]]]:
    """One set's quality table: a line per method, its scores over all images.

    Examples
    --------
    >>> scores = dict.fromkeys(key for key, _ in QUALITY_COLUMNS)
    >>> rows = [{"label": "m", "status": "ok", "summary": {"all": scores},
    ...          "seconds_per_image": 0.25}, {"label": "p", "status": "missing: gone"}]
    >>> header, body = quality_table(rows)
    >>> header[0], header[-1], body[0][-1], body[1][:2]
    ('method', 's / image', '0.25', ['p', 'missing: gone'])
    """
    header = ["method"] + [title for _, title in QUALITY_COLUMNS] + ["s / image"]
    body = []
    for row in rows:
        if row["status"] != "ok":
            body.append([row["label"], row["status"]] + [""] * len(QUALITY_COLUMNS))
            continue
        scores = row["summary"]["all"]
        body.append([row["label"]] + score_cells(scores) + [number(row["seconds_per_image"], 2)])
    return header, body


def kind_table(rows) -> tuple[list[str], list[list[str]]]:
    """One set's scores by image kind: a line per kind group and method, groups in order."""
    header = ["kind", "method"] + [title for _, title in QUALITY_COLUMNS]
    body = []
    for group in GROUPS[1:]:
        for row in rows:
            if row["status"] == "ok" and group in row["summary"]:
                scores = row["summary"][group]
                kind = f"{group} (n={scores['n_images']})"
                body.append([kind, row["label"]] + score_cells(scores))
    return header, body


def lead_cell(lead: dict) -> str:
    """One paired lead in a table cell.

    Examples
    --------
    >>> lead_cell({"lead": 0.011, "low": -0.005, "high": 0.029, "images_better": 36,
    ...            "images": 73})
    '+0.011 (-0.005 to +0.029), 36 / 73'
    """
    return (
        f"{lead['lead']:+.3f} ({lead['low']:+.3f} to {lead['high']:+.3f}), "
        f"{lead['images_better']} / {lead['images']}"
    )


def leads_table(leads, labels: dict) -> tuple[list[str], list[list[str]]]:
    """One set's paired leads on DSB score: a line per pair of rows, a column per group.

    ``labels`` maps a row's name to its label.
    """
    groups = [group for group in GROUPS if any(lead["group"] == group for lead in leads)]
    pairs = list(dict.fromkeys((lead["mine"], lead["theirs"]) for lead in leads))
    cells = {(lead["mine"], lead["theirs"], lead["group"]): lead_cell(lead) for lead in leads}
    header = ["row", "over"] + [f"{group} images" for group in groups]
    body = [
        [labels[mine], labels[theirs]] + [cells.get((mine, theirs, group), "") for group in groups]
        for mine, theirs in pairs
    ]
    return header, body


# --------------------------------------------------------------------------- sections


def render_header(meta: dict, datasets: list[dict]) -> list[str]:
    """Command, date, machine, software, data sets and the load on the machine."""
    machine = meta["machine"]
    gpus = "GPU: " + ", ".join(machine["gpus"]) if machine["gpus"] else "no GPU"
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"- Date: {meta['started_utc']} UTC, took {meta['minutes']:.1f} min.",
        f"- Machine: {machine['cpu_model']}, {machine['cpu_count']} logical CPUs "
        f"(`os.cpu_count()`; {machine['cpus_usable']} usable), "
        f"{(machine['memory_bytes'] or 0) / 2**30:.0f} GiB RAM, {gpus}; "
        f"SIMD: {', '.join(machine['simd']) or '-'}.",
        f"- Software: Python {machine['python']}, TensorFlow {machine['tensorflow']}, "
        f"Keras {machine['keras']}, NumPy {machine['numpy']}.",
    ]
    for dataset in datasets:
        kinds = ", ".join(f"{count} {kind}" for kind, count in dataset["kinds"].items())
        limit = f", first {dataset['limit']} only (--limit)" if dataset.get("limit") else ""
        lines.append(
            f"- Data: `{dataset['path']}`, split `{dataset['split']}`: "
            f"{dataset['n_images']} images ({kinds}){limit}."
        )
    return lines + render_load(meta["load_start"], meta["load_end"]) + [""]


def render_load(start: dict, end: dict) -> list[str]:
    """The load average at the start and the end, and any other busy process."""
    note = (
        "- Load: load average (1, 5, 15 min) "
        f"{', '.join(map(str, start['loadavg']))} at the start, "
        f"{', '.join(map(str, end['loadavg']))} at the end."
    )
    if not (start["busy_processes"] or end["busy_processes"]):
        return [
            note + " No other process used 20 % of a CPU or more at the start or the end. "
            "Timings are wall clock and still move a few percent between runs."
        ]
    lines = [
        note + " **Other processes were using the CPU**, so the timings below are slower than "
        "on an idle machine (the quality figures do not depend on it):"
    ]
    for when, snapshot in (("start", start), ("end", end)):
        for process in snapshot["busy_processes"]:
            lines.append(f"  - at the {when}: `{process['command']}` ({process['cpu_percent']} %)")
    return lines


def render_targets(targets: list[dict]) -> list[str]:
    """Every target with its measured value and its result."""
    if not targets:
        return []
    rows = [[entry["target"], entry["measured"], f"**{entry['result']}**"] for entry in targets]
    return ["## Targets", ""] + table(["target", "measured", "result"], rows) + [""]


def options_text(rows) -> str:
    """The segmentation settings the models ran with (those of the default model's row)."""
    row = next((row for row in rows if row.get("options") and row["name"] == "default"), None)
    if row is None:
        return "-"
    options = row["options"]
    diameter = options.get("diameter")
    sizes = f"nucleus diameter {diameter} px"
    if diameter == "auto":
        sizes = "nucleus diameter estimated from each image"
    elif diameter is None:
        sizes = "images as they are"
    return (
        f"foreground threshold {options['threshold']}, smallest nucleus {options['min_size']} "
        f"px, tiles of {options['tile_size']} px, {sizes}"
    )


def render_set_quality(dataset: dict, rows: list[dict], leads: list[dict]) -> list[str]:
    """One data set: its quality table, its table by image kind, and its paired leads."""
    lines = [
        f"### {dataset['name']} ({dataset['split']} split, {dataset['n_images']} images, "
        "all rows on the same images)",
        "",
    ]
    lines += table(*quality_table(rows)) + ["", "By image kind:", ""]
    lines += table(*kind_table(rows)) + [""]
    set_leads = [lead for lead in leads if lead["dataset"] == dataset["name"]]
    if set_leads:
        labels = {row["name"]: row["label"] for row in rows}
        lines += ["Paired leads on DSB score:", ""] + table(*leads_table(set_leads, labels))
        lines += [""]
    return lines


def render_quality(report: dict) -> list[str]:
    """A quality section per data set, then what the scores mean."""
    quality = report.get("quality")
    if not quality:
        return []
    lines = ["## Quality", ""]
    for dataset in report["datasets"]:
        rows = rows_of_set(quality, dataset["name"])
        lines += render_set_quality(dataset, rows, report.get("leads", []))
    settings = f" The models run with the app's default settings ({options_text(quality)})."
    return lines + [SCORES_EXPLAINED + settings, "", KINDS_EXPLAINED, "", LEADS_EXPLAINED, ""]


def render_peers(peers: list[dict]) -> list[str]:
    """Which peers were found here and how each was made (or is made again)."""
    if not peers:
        return []
    rows = [
        [peer["label"], "yes" if peer["found"] else "no", peer["status"], peer["how"]]
        for peer in peers
    ]
    return ["## Peers", ""] + table(["peer", "found", "status", "how it was made"], rows) + [""]


def model_cells(name: str, model: dict, flops: dict) -> list:
    """One line of the Models table."""
    runs = model.get("train_minutes_by_run") or []
    if len(runs) > 1:
        trained = f"{sum(runs):.0f} min ({' + '.join(f'{run:.0f}' for run in runs)})"
    elif model.get("train_seconds"):
        trained = f"{model['train_seconds'] / 60:.0f} min"
    else:
        trained = "-"
    return [
        name,
        f"`{model['path']}`",
        model["architecture"],
        f"{model['parameters']:,}",
        f"{model['file_megabytes']} MB",
        number(flops["flops"] / 1e9, 2) if flops.get("flops") else "-",
        trained,
        model.get("epochs_run", "-"),
        ENCODER_STARTS.get(model.get("encoder_weights"), "-"),
    ]


def render_models(models: dict, flops: dict) -> list[str]:
    """Every model's file, size, FLOPs and training facts, and the command that made it."""
    if not models:
        return []
    header = ["model", "file", "architecture", "parameters", "size"]
    header += ["GFLOPs / 256x256 image", "training time", "epochs", "encoder start"]
    rows = [model_cells(name, model, flops.get(name, {})) for name, model in models.items()]
    facts = [
        f"- {name} was trained with {made_with(model)}."
        for name, model in models.items()
        if made_with(model)
    ]
    if any(model.get("encoder_weights") == "random" for model in models.values()):
        facts.append(
            "- The original project started MobileNetV2 from ImageNet weights. This "
            "machine has no network, so Keras could not download them and the baseline's "
            "encoder started from random weights (`encoder_weights` in its card)."
        )
    return ["## Models", ""] + table(header, rows) + [""] + (facts + [""] if facts else [])


# --------------------------------------------------------------------------- the report


def render_notes(notes: list[str]) -> list[str]:
    """The run's notes, and where every figure is kept."""
    lines = ["## Notes", ""] + [f"- {note}" for note in notes] + [""] if notes else []
    return lines + [
        "Every figure comes from this one run; `bench/results/results.json` holds them all, "
        "with the per-image scores of every quality row.",
        "",
    ]


def render_markdown(report: dict) -> str:
    """``RESULTS.md``: header, targets, quality per set, peers, models, speed, whole slides
    (from ``bench/results/slides.json``, a run of its own: ``python -m bench.slides``),
    batch prediction on Dask (``bench/results/cluster.json``, from ``python -m bench.cluster``),
    fine-tuning (``bench/results/finetune.json``, from ``python -m bench.finetune``), notes."""
    from bench.cluster import render_cluster
    from bench.finetune import render_finetune
    from bench.slides import render_slides

    flops = report.get("speed", {}).get("flops", {})
    sections = [
        render_header(report["meta"], report.get("datasets", [])),
        render_targets(report.get("targets", [])),
        render_quality(report),
        render_peers(report.get("peers", [])),
        render_models(report.get("models", {}), flops),
        render_speed(report.get("speed", {})),
        render_finetune(),
        render_slides(report.get("slides")),
        render_cluster(report.get("cluster")),
        render_notes(report.get("notes", [])),
    ]
    return "\n".join(line for section in sections for line in section)
