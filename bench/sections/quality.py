"""Quality: every method scored on the test split of each data set, per image kind, with leads.

Each data set (``--data``, one or more folders) is scored on its own split
(``nuclei_core.datasets.folders.select_split``, the held-out test split by default) with
``nuclei_core.evaluation.evaluate.evaluate_samples``; a row holds the means over all images
and per image kind (``summarize_by_kind``) and every image's scores. Two rows of
one set are compared by a paired bootstrap over that set's images
(:func:`paired_lead`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from bench.sections.peers import MODEL_LABELS, stardist_missing
from bench.sections.segmenters import CLASSICAL_METHODS, StarDistProcess
from bench.tools.paths import STARDIST_MODEL, dataset_name, relative
from bench.tools.progress import log
from nuclei_core.datasets.folders import Dataset, discover_dataset, select_split
from nuclei_core.errors import DatasetError
from nuclei_core.evaluation.evaluate import evaluate_samples, summarize_by_kind
from nuclei_core.io.imread import read_image
from nuclei_core.segmentation.options import SegmentOptions
from nuclei_core.segmentation.preprocess import image_kind
from nuclei_core.segmentation.segment import segment_image

GROUPS = ("all", "fluorescence", "brightfield+stained", "stained", "brightfield")
"""The image groups of a row's summary, in the order the report shows them."""

LEAD_REFERENCES = ("candidate", "default")
"""The rows whose lead over every other row of the same set is measured."""


# --------------------------------------------------------------------------- data sets


@dataclass(frozen=True)
class BenchSet:
    """One data set's images for the benchmark: its split, limited to the first ``limit``."""

    name: str
    dataset: Dataset
    split: str
    samples: tuple
    kinds: dict
    limit: int | None = None

    def describe(self) -> dict:
        """The set as ``results.json`` records it."""
        return {
            "name": self.name,
            "path": str(self.dataset.root),
            "layout": self.dataset.layout,
            "split": self.split,
            "limit": self.limit,
            "n_images": len(self.samples),
            "kinds": self.kinds,
            "ids": [sample.id for sample in self.samples],
        }


def count_kinds(kinds) -> dict:
    """``{kind: count}``, the most frequent kind first.

    Examples
    --------
    >>> count_kinds(["stained", "fluorescence", "fluorescence"])
    {'fluorescence': 2, 'stained': 1}
    """
    return dict(Counter(kinds).most_common())


def load_set(folder, split: str = "test", limit: int | None = None) -> BenchSet:
    """The samples of ``split`` of the data set in ``folder``, and how many of each kind.

    Raises
    ------
    DatasetError
        The folder holds no data set, or the split is empty.
    """
    dataset = discover_dataset(folder)
    samples = select_split(dataset, split)[:limit] if limit else select_split(dataset, split)
    if not samples:
        raise DatasetError(f"{folder}: the {split} split is empty")
    kinds = count_kinds(image_kind(read_image(sample.image_path)) for sample in samples)
    return BenchSet(dataset_name(folder), dataset, split, tuple(samples), kinds, limit)


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    """One quality row's method: a model with its options, or a function ``image -> labels``.

    ``missing`` says why a method could not run (then ``segmenter`` is None).
    """

    name: str
    label: str
    segmenter: object
    options: SegmentOptions | None
    source: str
    missing: str | None = None


def model_methods(models: dict, missing: dict, tta: bool = True) -> list[Method]:
    """The rows of every model: ``models`` maps a name to ``(model, path)``.

    Every model runs as the app and the CLI run it: the nucleus diameter estimated from
    each image against the diameter of the model's card (``diameter="auto"``). The
    default model gets a row without the estimate (images as they are) and one with
    test-time flips unless ``tta`` is False.
    ``missing`` maps a model's name to why it is not here.
    """
    methods = []
    for name, (model, path) in models.items():
        label, source = MODEL_LABELS[name], relative(path)
        options = SegmentOptions.for_model(path)
        methods.append(Method(name, label, model, options, source))
        if name != "default":
            continue
        as_it_is = replace(options, diameter=None)
        as_it_is_label = MODEL_LABELS["default_as_is"]
        methods.append(Method("default_as_is", as_it_is_label, model, as_it_is, source))
        if tta:
            label += " + test-time flips"
            methods.append(Method("default_tta", label, model, replace(options, tta=True), source))
    for name, (path, reason) in missing.items():
        methods.append(Method(name, MODEL_LABELS[name], None, None, relative(path), reason))
    return methods


def stardist_methods() -> list[Method]:
    """The StarDist row (:class:`~bench.sections.segmenters.StarDistProcess`), or why not here.

    Call :meth:`~bench.sections.segmenters.StarDistProcess.close` on its segmenter when done.
    """
    source = relative(STARDIST_MODEL)
    missing = stardist_missing()
    if missing:
        return [Method("stardist", MODEL_LABELS["stardist"], None, None, source, missing)]
    return [Method("stardist", MODEL_LABELS["stardist"], StarDistProcess(), None, source)]


def classical_methods() -> list[Method]:
    """The rows of the methods without learning (``CLASSICAL_METHODS`` of
    :mod:`bench.sections.segmenters`)."""
    return [
        Method(name, label, function, None, source)
        for name, (label, function, source) in CLASSICAL_METHODS.items()
    ]


# --------------------------------------------------------------------------- rows


def warm_up(model) -> None:
    """One segmentation of a blank image, so tracing is not timed with the first image."""
    segment_image(model, np.zeros((256, 256), np.uint8))


def quality_row(method: Method, bench_set: BenchSet) -> dict:
    """Score ``method`` on every image of ``bench_set``: the summary and each image's scores."""
    row = {"dataset": bench_set.name, "name": method.name, "label": method.label}
    row["source"] = method.source
    if method.missing:
        return {**row, "status": f"missing: {method.missing}"}
    samples = bench_set.samples
    log(f"quality: {method.label} on {len(samples)} images of {bench_set.name}")
    every = max(1, len(samples) // 5)

    def progress(done, total):
        if done % every == 0 or done == total:
            log(f"  {done}/{total}")

    if method.options is not None:
        warm_up(method.segmenter)
    started = time.perf_counter()
    results, problems = evaluate_samples(method.segmenter, samples, method.options, progress)
    wall = time.perf_counter() - started
    segment_seconds = [result.seconds for result in results]
    return {
        **row,
        "status": "ok",
        "options": vars(method.options) if method.options is not None else None,
        "n_images": len(results),
        "seconds_total": round(wall, 2),
        "seconds_per_image": round(float(np.mean(segment_seconds)), 4) if results else None,
        "summary": summarize_by_kind(results),
        "images": [result.row() for result in results],
        "skipped": problems,
    }


def rows_of_set(rows, name: str) -> list[dict]:
    """The quality rows of the data set called ``name``, in their order."""
    return [row for row in rows if row["dataset"] == name]


def find_row(rows, name: str) -> dict | None:
    """The row called ``name`` (``"default"``, ``"mobilenetv2"``...) among ``rows``, or None."""
    return next((row for row in rows if row["name"] == name), None)


# --------------------------------------------------------------------------- leads


def in_group(kind: str, group: str) -> bool:
    """Whether an image of ``kind`` belongs to the summary group ``group``.

    Examples
    --------
    >>> in_group("stained", "all"), in_group("stained", "brightfield+stained")
    (True, True)
    >>> in_group("fluorescence", "stained")
    False
    """
    if group == "all":
        return True
    if group == "brightfield+stained":
        return kind != "fluorescence"
    return kind == group


def group_images(row: dict, group: str) -> dict:
    """``row`` with only the images of ``group`` (for :func:`paired_lead`)."""
    return {"images": [image for image in row["images"] if in_group(image["kind"], group)]}


def paired_lead(mine: dict, theirs: dict, key: str, resamples: int = 10_000) -> dict:
    """How far ``mine`` leads ``theirs`` on the per-image score ``key``, with its uncertainty.

    Both rows are scored on the same images, so the lead is the mean of the
    per-image differences; its 95 % interval comes from resampling the images
    (paired bootstrap, fixed seed). An interval that includes 0 means the test
    split is too small to tell the two apart.

    Examples
    --------
    >>> mine = {"images": [{"id": "a", "dsb_score": 0.6}, {"id": "b", "dsb_score": 0.5}]}
    >>> theirs = {"images": [{"id": "b", "dsb_score": 0.4}, {"id": "a", "dsb_score": 0.5}]}
    >>> lead = paired_lead(mine, theirs, "dsb_score")
    >>> round(lead["lead"], 3), lead["images_better"], lead["images"]
    (0.1, 2, 2)
    """
    scores = {image["id"]: image[key] for image in theirs["images"]}
    differences = np.array(
        [image[key] - scores[image["id"]] for image in mine["images"] if image["id"] in scores]
    )
    if differences.size == 0:
        raise ValueError("mine and theirs have no image in common")
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(differences), size=(resamples, len(differences)))
    low, high = np.percentile(differences[picks].mean(axis=1), [2.5, 97.5])
    return {
        "lead": float(differences.mean()),
        "low": float(low),
        "high": float(high),
        "images_better": int((differences > 0).sum()),
        "images": len(differences),
    }


def lead_groups(row: dict) -> list[str]:
    """``"all"`` and every kind group of ``row`` that holds fewer images than all of them.

    Examples
    --------
    >>> lead_groups({"summary": {"all": {"n_images": 3}, "stained": {"n_images": 3}}})
    ['all']
    """
    summary = row["summary"]
    total = summary["all"]["n_images"]
    return [
        group
        for group in GROUPS
        if group in summary and (group == "all" or summary[group]["n_images"] < total)
    ]


def set_leads(rows, key: str = "dsb_score") -> list[dict]:
    """Leads of the candidate and the default model over every other row of one set.

    One entry per pair of rows and image group (:func:`lead_groups`); a pair is
    measured once (the candidate against the default model, not also the reverse).
    """
    scored = [row for row in rows if row["status"] == "ok"]
    references = [find_row(scored, name) for name in LEAD_REFERENCES]
    leads, measured = [], set()
    for mine in filter(None, references):
        for theirs in scored:
            pair = frozenset((mine["name"], theirs["name"]))
            if theirs is mine or pair in measured:
                continue
            measured.add(pair)
            for group in lead_groups(mine):
                lead = paired_lead(group_images(mine, group), group_images(theirs, group), key)
                names = {"dataset": mine["dataset"], "mine": mine["name"], "theirs": theirs["name"]}
                leads.append({**names, "group": group, "key": key, **lead})
    return leads


def lead_text(lead: dict) -> str:
    """One lead in words, as the targets table shows it.

    Examples
    --------
    >>> lead_text({"lead": 0.011, "low": -0.005, "high": 0.029, "images_better": 36,
    ...            "images": 73})
    'lead +0.011, 95 % interval -0.005 to +0.029, better on 36 of 73 images'
    """
    return (
        f"lead {lead['lead']:+.3f}, 95 % interval {lead['low']:+.3f} to {lead['high']:+.3f}, "
        f"better on {lead['images_better']} of {lead['images']} images"
    )


def score_set(bench_set: BenchSet, methods) -> tuple[list[dict], list[dict]]:
    """Every method's row on ``bench_set``, and the leads between them."""
    rows = [quality_row(method, bench_set) for method in methods]
    return rows, set_leads(rows)


def tta_note(rows) -> str | None:
    """What test-time flips cost per image on one set, or None without both default rows."""
    tta, plain = find_row(rows, "default_tta"), find_row(rows, "default")
    if tta is None or tta["status"] != "ok" or not plain["seconds_per_image"]:
        return None
    return (
        f"Test-time flips (4 passes) take {tta['seconds_per_image']:.2f} s per image "
        f"against {plain['seconds_per_image']:.2f} s without "
        f"({tta['seconds_per_image'] / plain['seconds_per_image']:.1f}x); the app and "
        "CLI default is without (`--tta` turns them on)."
    )
