"""The Speed section of ``bench/results/RESULTS.md``: a line per measurement, how it was taken."""

from __future__ import annotations

from bench.sections.speed import TRAINING_RECIPES
from bench.sections.targets import GB
from bench.tools.markdown import table


def speed_value(entry, key: str, template: str) -> str:
    """One speed figure, or why there is none."""
    if not isinstance(entry, dict) or not entry:
        return "not measured"
    if "error" in entry:
        return f"error: {entry['error']}"
    return template.format(entry[key])


def inference_rows(speed: dict) -> list[list[str]]:
    """Images/s of every model at 256 x 256, batched."""
    return [
        [
            f"inference, 256 x 256, batch 8 ({name})",
            speed_value(entry, "images_per_s", "{:.1f} images/s"),
            f"`predict_many` on {entry.get('images', '?')} real 256 x 256 crops of "
            "the split's images, best of 3 after a warm-up",
        ]
        for name, entry in speed.get("throughput_256", {}).items()
    ]


def end_to_end_row(e2e: dict) -> list[str]:
    """Seconds from a 1024 x 1024 PNG to measured nuclei, and where they go."""
    how = (
        "`imread.read_image` of the PNG + `segment_image` (predict, instances, measurements) on "
        f"`{e2e.get('image', '?')}`, median of 5 after a warm-up"
    )
    breakdown = e2e.get("median_breakdown")
    if breakdown:
        how += (
            f"; read {breakdown['read']:.2f} s, predict {breakdown['predict']:.2f} s, "
            f"instances + table {breakdown['instances_and_measurements']:.2f} s, "
            f"{e2e.get('nuclei')} nuclei"
        )
    value = speed_value(e2e, "median_seconds", "{:.2f} s")
    return ["end to end, one 1024 x 1024 image (default)", value, how]


def folder_rows(folder: dict) -> list[list[str]]:
    """Images/s over the test split end to end, the model against Otsu + watershed."""
    if "error" in folder:
        return [["whole folder, end to end", f"error: {folder['error']}", ""]]
    how = (
        "every test image: `read_image`, segment, `measure_nuclei`, mask PNG + 16-bit label "
        "PNG + CSV written atomically, as `predict` does; one pass"
    )
    names = {"default": "default model", "otsu_watershed": "Otsu + watershed"}
    return [
        [
            f"whole folder, end to end ({names.get(name, name)})",
            speed_value(entry, "images_per_s", "{:.1f} images/s"),
            f"{how}: {entry.get('images', '?')} images in {entry.get('seconds', '?')} s",
        ]
        for name, entry in folder.items()
    ]


def large_image_rows(large: dict) -> list[list[str]]:
    """Peak memory and seconds for a 4096 x 4096 image, tiled, in a fresh process."""
    memory = speed_value(large, "peak_rss_bytes", "{}")
    if "peak_rss_bytes" in large:
        memory = f"{large['peak_rss_bytes'] / GB:.2f} GB"
    seconds_how = ""
    if "seconds_read" in large:
        seconds_how = (
            f"read {large['seconds_read']:.1f} s + predict {large['seconds_predict']:.1f}"
            f" s + instances/table {large['seconds_instances']:.1f} s, "
            f"{large['nuclei']} nuclei; the process took "
            f"{large['seconds_process_wall']:.1f} s with TensorFlow import and model load"
        )
    memory_how = (
        "peak resident memory (`ru_maxrss`) of a fresh process that imports the "
        "engine, loads the model, reads the PNG and segments it (1024 tiles, 64 px "
        "overlap); the image is a real 1024 x 1024 image tiled 4 x 4"
    )
    return [
        ["4096 x 4096 image, tiled: peak memory (default)", memory, memory_how],
        [
            "4096 x 4096 image, tiled: seconds (default)",
            speed_value(large, "seconds_read_and_segment", "{:.1f} s"),
            seconds_how,
        ],
    ]


def training_rows(training: dict) -> list[list[str]]:
    """Training images/s of each model in its own recipe."""
    rows = []
    for name, entry in training.items():
        crop, batch_size = TRAINING_RECIPES[name]
        recipe = f"{crop} x {crop} crops, batch {batch_size}"
        rows.append(
            [
                f"training ({name}, {recipe})",
                speed_value(entry, "images_per_s", "{:.1f} images/s"),
                "`model.fit` with the `nuclei_core.training` optimizer, loss, metrics and "
                f"augmenting `tf.data` pipeline, in {entry.get('precision', 'float32')} "
                "(as `train` picks it on this machine), "
                f"{entry.get('steps_timed', '?')} steps after 3 warm-up steps",
            ]
        )
    return rows


def flops_rows(speed: dict) -> list[list[str]]:
    """The machine's matmul peak and the FLOP/s each model achieves at 256 x 256."""
    peak = speed.get("matmul_peak", {})
    size = peak.get("n", 4096)
    rows = [
        [
            "machine peak, float32 matmul",
            speed_value(peak, "gflops_per_s", "{:.0f} GFLOP/s"),
            f"TensorFlow {size} x {size} @ {size} x {size}, best of 5 after a warm-up",
        ]
    ]
    for name, entry in speed.get("achieved", {}).items():
        rows.append(
            [
                f"model achieved FLOP/s, 256 x 256 inference ({name})",
                f"{entry['gflops_per_s']:.1f} GFLOP/s = {entry['fraction_of_peak']:.0%} of peak",
                f"{entry['gflops_per_image']:.2f} GFLOPs per image (convolutions, counted "
                f"from the traced graph) x {entry['images_per_s']:.1f} images/s",
            ]
        )
    return rows


def render_speed(speed: dict) -> list[str]:
    """Every speed measurement with how it was taken."""
    if not speed:
        return []
    rows = inference_rows(speed) + [end_to_end_row(speed.get("end_to_end_1024", {}))]
    rows += folder_rows(speed.get("folder", {}))
    rows += large_image_rows(speed.get("large_4096", {}))
    rows += training_rows(speed.get("training", {}))
    rows += flops_rows(speed)
    header = ["measurement", "value", "how"]
    return ["## Speed (this machine, CPU only)", ""] + table(header, rows) + [""]
