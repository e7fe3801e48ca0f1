"""Fill ``docs/RELIABILITY.md`` from the reliability tests: ``python tests/reliability_report.py``.

Runs ``tests/test_reliability.py`` and ``tests/test_reliability_faults.py`` with
``NUCLEI_RELIABILITY_LOG`` set; every test there ends with ``record(case, what the
user sees)``, one JSON line per call.  The report is refused (exit status 1, the
document untouched) when a test fails or a case of :data:`CATALOGUE` has no
passing test.  Cases also covered by other test files list them in ``elsewhere``;
``--with-elsewhere`` runs those tests too (slower: ``tests/jobs/test_jobs.py`` trains).

``tests/test_reliability.py::test_report_catalogue_matches_the_tests_and_the_document``
checks, without running anything, that the catalogue, the ``record`` calls in the
tests and the document agree.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from support import REPORT_ENV, ROOT

DOCUMENT = ROOT / "docs" / "RELIABILITY.md"
TEST_FILES = ("tests/test_reliability.py", "tests/test_reliability_faults.py")
BAD_INPUT, HOSTILE, FAULT = "bad input", "hostile file", "fault"


@dataclass(frozen=True)
class Case:
    """One bad input or fault of issue 5."""

    id: str
    section: str
    kind: str
    what: str
    show: str = "core"  # whose message the table shows: core, cli, app or test:<name part>
    elsewhere: tuple[str, ...] = field(default=())  # other tests that cover it too


IMAGES = "Bad input: images (core reader, CLI, Segment page upload)"
TRUTH = "Bad input: ground truth"
DATASETS = "Bad input: dataset folders"
TRAINING = "Bad input: training parameters (refused before any work starts)"
RANDOM = "Bad input: random bytes and arrays"
MODELS = "Hostile files: .keras models"
SERVER = "Hostile use: server settings and dataset paths"
FAULTS = "Faults"

APP_MODEL_UPLOAD = "tests/app/test_app.py::test_unsafe_or_malformed_model_upload_is_refused"
JOBS_BAD_PARAMETERS = (
    "tests/jobs/test_jobs.py::test_bad_parameters_are_refused_before_anything_starts"
)

CATALOGUE: tuple[Case, ...] = (
    Case("image-empty", IMAGES, BAD_INPUT, "empty file"),
    Case("image-text-as-png", IMAGES, BAD_INPUT, "text file renamed to `.png`"),
    Case("image-pdf-as-png", IMAGES, BAD_INPUT, "PDF renamed to `.png`"),
    Case("image-truncated-png", IMAGES, BAD_INPUT, "truncated PNG"),
    Case("image-truncated-jpeg", IMAGES, BAD_INPUT, "truncated JPEG"),
    Case("image-truncated-tiff", IMAGES, BAD_INPUT, "truncated TIFF"),
    Case(
        "image-bomb",
        IMAGES,
        BAD_INPUT,
        "PNG whose header claims 60000 x 60000 pixels (refused from the header, never decoded)",
    ),
    Case("image-bomb-tiff", IMAGES, BAD_INPUT, "TIFF whose header claims 60000 x 60000 pixels"),
    Case(
        "image-pixel-budget",
        IMAGES,
        BAD_INPUT,
        "pixel budget is configurable (`max_pixels=`, `NUCLEI_MAX_PIXELS`)",
    ),
    Case("image-all-nan", IMAGES, BAD_INPUT, "float TIFF with no finite value"),
    Case("image-1x1", IMAGES, BAD_INPUT, "1 x 1 image (read and segmented)", show="cli"),
    Case("image-3x5000", IMAGES, BAD_INPUT, "3 x 5000 image (read and segmented)", show="cli"),
    Case("image-multipage-tiff", IMAGES, BAD_INPUT, "multi-page TIFF (first page, warning)"),
    Case("image-float-tiff", IMAGES, BAD_INPUT, "float TIFF (read and segmented)", show="cli"),
    Case(
        "image-16bit-hot-pixel",
        IMAGES,
        BAD_INPUT,
        "16-bit image with one hot pixel (percentile scaling keeps nuclei bright)",
        show="test:hot_pixel",
    ),
    Case("image-cmyk-jpeg", IMAGES, BAD_INPUT, "CMYK JPEG (becomes RGB)", show="test:cmyk"),
    Case("image-palette-png", IMAGES, BAD_INPUT, "palette PNG (becomes RGB)", show="test:cmyk"),
    Case("image-nan-inf", IMAGES, BAD_INPUT, "image with NaN and inf values (warning)"),
    Case(
        "cli-folder",
        IMAGES,
        BAD_INPUT,
        "`predict` on a folder of good and bad files: good ones finished, one line per bad "
        "file, exit status 1, no traceback, earlier results untouched",
        show="cli",
    ),
    Case(
        "app-upload-image",
        IMAGES,
        BAD_INPUT,
        "every file above through the Segment page's image upload",
        show="app",
        elsewhere=(
            "tests/app/test_app.py::test_unreadable_upload_shows_an_error_and_the_page_stays_usable",
        ),
    ),
    Case(
        "truth-wrong-size",
        TRUTH,
        BAD_INPUT,
        "mask of another size than the image",
        elsewhere=("tests/app/test_app.py::test_ground_truth_of_the_wrong_size_is_refused",),
    ),
    Case("truth-not-binary", TRUTH, BAD_INPUT, 'non-binary values in a "binary" mask'),
    Case("truth-empty", TRUTH, BAD_INPUT, "empty mask"),
    Case("truth-zip-non-image", TRUTH, BAD_INPUT, "zip with a non-image member"),
    Case("truth-zip-traversal", TRUTH, BAD_INPUT, "zip with a `../x.png` member"),
    Case("truth-zip-absolute", TRUTH, BAD_INPUT, "zip with an absolute `/etc/x.png` member"),
    Case("truth-zip-corrupt", TRUTH, BAD_INPUT, "zip whose member fails its CRC"),
    Case("truth-zip-no-masks", TRUTH, BAD_INPUT, "zip without any mask"),
    Case(
        "app-upload-truth",
        TRUTH,
        BAD_INPUT,
        "the misfits above through the Segment page's ground-truth upload",
        show="app",
    ),
    Case("dataset-image-without-mask", DATASETS, BAD_INPUT, "images without masks"),
    Case("dataset-mask-without-image", DATASETS, BAD_INPUT, "masks without images"),
    Case("dataset-mixed-sizes", DATASETS, BAD_INPUT, "images of mixed sizes"),
    Case(
        "dataset-one-bad-file",
        DATASETS,
        BAD_INPUT,
        "one bad file among good ones (reported and skipped, in training and evaluation)",
    ),
    Case(
        "train-epochs-0",
        TRAINING,
        BAD_INPUT,
        "epochs 0",
        elsewhere=(JOBS_BAD_PARAMETERS,),
    ),
    Case("train-batch-0", TRAINING, BAD_INPUT, "batch size 0"),
    Case("train-learning-rate", TRAINING, BAD_INPUT, "learning rate 0"),
    Case("train-patience", TRAINING, BAD_INPUT, "patience 0"),
    Case("train-val-fraction", TRAINING, BAD_INPUT, "validation fraction 0.95"),
    Case("train-crop-multiple", TRAINING, BAD_INPUT, "crop not a multiple of the U-Net's stride"),
    Case(
        "train-batch-too-large",
        TRAINING,
        BAD_INPUT,
        "batch size larger than the training images",
        elsewhere=(JOBS_BAD_PARAMETERS,),
    ),
    Case(
        "train-crop-too-large",
        TRAINING,
        BAD_INPUT,
        "crop larger than every image",
        elsewhere=(JOBS_BAD_PARAMETERS,),
    ),
    Case(
        "property-random-input",
        RANDOM,
        BAD_INPUT,
        "hypothesis: random bytes, damaged PNG/JPEG/TIFF/zip files and random arrays of "
        "random dtypes and shapes to `read_image`, `read_labels`, `to_model_input`, "
        "`to_display_rgb`, `image_kind` and every metric: only `NucleiError` subclasses",
    ),
    Case(
        "model-lambda",
        MODELS,
        HOSTILE,
        "model with a Lambda layer (its code would create a marker file: it never does)",
        elsewhere=(APP_MODEL_UPLOAD,),
    ),
    Case("model-lambda-escaped", MODELS, HOSTILE, 'Lambda hidden as `"\\u004cambda"` in the JSON'),
    Case(
        "model-safe-mode",
        MODELS,
        HOSTILE,
        "without our archive check, Keras `safe_mode=True` still refuses the Lambda",
    ),
    Case("model-foreign-module", MODELS, HOSTILE, "config naming a module outside Keras"),
    Case(
        "model-extra-files",
        MODELS,
        HOSTILE,
        "extra files in the zip",
        elsewhere=(APP_MODEL_UPLOAD,),
    ),
    Case("model-not-zip", MODELS, HOSTILE, "not a zip", elsewhere=(APP_MODEL_UPLOAD,)),
    Case("model-truncated-zip", MODELS, HOSTILE, "truncated zip"),
    Case("model-corrupt-member", MODELS, HOSTILE, "zip member with a bad CRC"),
    Case("server-localhost", SERVER, HOSTILE, "server bound to 127.0.0.1 by default"),
    Case("server-xsrf", SERVER, HOSTILE, "XSRF protection on"),
    Case("server-upload-limit", SERVER, HOSTILE, "upload size limit"),
    Case("path-empty", SERVER, BAD_INPUT, "dataset path: nothing typed"),
    Case(
        "path-missing",
        SERVER,
        BAD_INPUT,
        "dataset path that does not exist (`..` resolved)",
        elsewhere=("tests/app/test_app.py::test_browse_refuses_a_missing_folder",),
    ),
    Case("path-not-a-folder", SERVER, BAD_INPUT, "dataset path naming a file"),
    Case("path-unreadable", SERVER, BAD_INPUT, "dataset folder without read permission"),
    Case(
        "fault-sigkill",
        FAULTS,
        FAULT,
        "SIGKILL of the training worker mid-epoch: active model unchanged, best checkpoint "
        "loads, run failed with its epochs kept",
        elsewhere=(
            "tests/jobs/test_jobs.py::test_sigkill_mid_run_marks_the_run_failed_and_frees_the_lock",
        ),
    ),
    Case(
        "fault-two-sessions",
        FAULTS,
        FAULT,
        "two app sessions asking to train at the same moment: exactly one job, the other "
        "waits its turn",
        show="app",
        elsewhere=(
            "tests/jobs/test_jobs.py::test_two_threads_starting_at_once_start_exactly_one_job",
        ),
    ),
    Case("fault-atomic-model", FAULTS, FAULT, "crash between writing a model and its rename"),
    Case("fault-atomic-card", FAULTS, FAULT, "crash between writing a model card and its rename"),
    Case("fault-atomic-csv", FAULTS, FAULT, "crash between writing a CSV and its rename"),
    Case("fault-atomic-png", FAULTS, FAULT, "crash between writing a PNG and its rename"),
    Case(
        "fault-killed-writer",
        FAULTS,
        FAULT,
        "process SIGKILLed while writing a 24 MB file through `atomic_path`",
    ),
    Case(
        "fault-registry-killed-writer",
        FAULTS,
        FAULT,
        "registry writer SIGKILLed mid-transaction while the test reads",
    ),
    Case(
        "fault-registry-concurrent-readers",
        FAULTS,
        FAULT,
        "registry read continuously while another process writes 200 epochs (WAL, busy timeout)",
        elsewhere=("tests/registry/test_registry.py::test_process_writes_while_test_reads",),
    ),
    Case(
        "fault-disk-full-json",
        FAULTS,
        FAULT,
        "disk full (ENOSPC at rename or fsync) while writing JSON",
        elsewhere=(
            "tests/test_storage.py::test_atomic_write_json_keeps_old_file_when_write_fails",
        ),
    ),
    Case("fault-disk-full-model", FAULTS, FAULT, "disk full (ENOSPC at fsync) saving a model"),
    Case("fault-read-only-model", FAULTS, FAULT, "read-only folder (EROFS) saving a model"),
    Case("fault-disk-full-csv", FAULTS, FAULT, "disk full saving a measurement CSV"),
    Case(
        "fault-disk-full-training",
        FAULTS,
        FAULT,
        "disk full from the second epoch of a training run",
    ),
    Case(
        "fault-read-only-cli",
        FAULTS,
        FAULT,
        "`predict` into a read-only output folder",
        show="cli",
    ),
    Case(
        "fault-read-only-data-folder",
        FAULTS,
        FAULT,
        "read-only data folder when a training job is asked for",
    ),
    Case(
        "fault-read-only-app",
        FAULTS,
        FAULT,
        "read-only data folder when the app starts",
        show="app",
    ),
)

EXTERNAL_SEEN = {
    "fault-registry-concurrent-readers": "every read sees whole, growing histories; 200 epochs",
    "fault-disk-full-json": "cannot write …/card.json: No space left on device",
}

INTRO = """\
# Reliability and security

What the nuclei dashboard does with bad input, hostile files and faults (issue 5), what
the user sees, and the test that proves it. Every message is one line naming the file or
the parameter and the problem; the CLI prints it after `error: ` and goes on with the next
file (exit status 1 at the end), the app shows it with `st.error` and the page keeps
working. Nothing saved before is touched: every file (models, checkpoints, cards, CSV,
PNG, `state.json`) is written to a temporary file in the same folder, flushed and renamed
over the old one, and the run registry is SQLite in WAL mode with a 10 s busy timeout.

This file is generated: `python tests/reliability_report.py` runs
`tests/test_reliability.py` and `tests/test_reliability_faults.py`, collects what each
test saw, and refuses to write the report if a test fails or a case has no test.
Paths in messages are shown without the test's temporary folder. Tests in other files
that cover a case too are listed after the reliability tests.
"""

DEFENCE_ROWS = (
    (
        "`nuclei_core/io/imread.py`, `groundtruth.py`",
        "PNG/JPEG/TIFF only, decided by content not name; size checked from the header against "
        "`NUCLEI_MAX_PIXELS` (default 8192 x 8192) before decoding; every decoder error becomes "
        "`ImageReadError`; NaN/inf replaced with a warning; percentile scaling; zip members "
        "read in memory, unsafe names refused, damaged archives refused",
    ),
    (
        "`nuclei_core/network/model.py`",
        "`.keras` archives checked before Keras opens them (only `config.json`, "
        "`metadata.json`, `model.weights.h5`; no Lambda / TFOpLambda / `__lambda__`; only "
        "`keras` and `nuclei_core` modules), then loaded with `safe_mode=True` and shape-checked",
    ),
    (
        "`nuclei_core/storage.py`",
        "atomic writes (temporary file, `fsync`, `os.replace`); any `OSError` becomes a "
        "one-line `StorageError` and the temporary file is removed",
    ),
    ("`nuclei_core/registry/`", "SQLite WAL, busy timeout, one short transaction per write"),
    (
        "`nuclei_core/jobs/`",
        "one training job at a time (`flock` held by the worker, released by the OS even on "
        "SIGKILL); parameters and dataset checked before anything starts",
    ),
    (
        "`nuclei_core/evaluation/evaluate.py`",
        "dataset paths resolved (`~`, relative to the project, `..`, links) and checked: "
        "exists, is a folder, readable",
    ),
    (
        "`.streamlit/config.toml`",
        '`address = "127.0.0.1"`, `enableXsrfProtection = true`, `maxUploadSize = 200` (MB); '
        "the README says how to serve a lab network on purpose",
    ),
)
DEFENCES = "## Defences, in one place\n\n| Where | What |\n|---|---|\n" + "\n".join(
    f"| {where} | {what} |" for where, what in DEFENCE_ROWS
)


def _node(test: str) -> str:
    """``tests/x.py::name[param]`` shortened for the table."""
    return test.replace("tests/", "", 1)


def run_tests(log: Path, extra: list[str]) -> int:
    env = {**os.environ, REPORT_ENV: str(log), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TEST_FILES]
    done = subprocess.run([*command, *extra], cwd=ROOT, env=env)
    return done.returncode


def check_elsewhere(run: bool) -> int:
    """Collect (or run) the tests of other files named in the catalogue."""
    nodes = sorted({node for case in CATALOGUE for node in case.elsewhere})
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *nodes]
    if not run:
        command.append("--collect-only")
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return done.returncode


def read_log(log: Path) -> list[dict]:
    if not log.is_file():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _shows(entry: dict, show: str) -> bool:
    if show.startswith("test:"):
        return show[len("test:") :] in entry["test"]
    return entry["channel"] == show


def render(records: list[dict]) -> str:
    """The whole document from the records of a passing run."""
    by_case: dict[str, list[dict]] = defaultdict(list)
    for entry in records:
        by_case[entry["case"]].append(entry)
    kinds = {case.id: case.kind for case in CATALOGUE}
    bad_inputs = sum(1 for entry in records if kinds.get(entry["case"]) in (BAD_INPUT, HOSTILE))
    faults = sum(1 for entry in records if kinds.get(entry["case"]) == FAULT)
    kept = sum(int(entry.get("kept", 0)) for entry in records)
    tests = {entry["test"].split("[")[0] for entry in records}
    lines = [INTRO]
    lines.append("## Counts\n")
    lines.append("| | |\n|---|---|")
    lines.append(f"| cases in this report | {len(CATALOGUE)} |")
    lines.append(f"| bad inputs and hostile files tried (core, CLI, app) | {bad_inputs} |")
    lines.append(f"| faults injected | {faults} |")
    lines.append(
        "| random inputs (hypothesis) | 4 properties x 150 examples + explicit regressions |"
    )
    lines.append(f"| files saved before a fault and checked intact afterwards | {kept} |")
    lines.append("| **files lost** | **0** |")
    lines.append(f"| reliability tests (functions) | {len(tests)} |\n")
    section = None
    for case in CATALOGUE:
        if case.section != section:
            section = case.section
            lines.append(f"\n## {section}\n")
            lines.append("| Case | What the user sees | Tests |")
            lines.append("|---|---|---|")
        entries = by_case.get(case.id, [])
        shown = next((e for e in entries if _shows(e, case.show)), None) or (
            entries[0] if entries else None
        )
        seen = shown["seen"] if shown else EXTERNAL_SEEN.get(case.id, "")
        if shown and shown["channel"] != "core":
            seen = f"{shown['channel'].upper()}: {seen}"
        nodes = list(dict.fromkeys(f"`{_node(e['test'])}` ({e['channel']})" for e in entries))
        nodes += [f"`{_node(node)}`" for node in case.elsewhere]
        lines.append(f"| {_cell(case.what)} | {_cell(seen)} | {'<br>'.join(nodes)} |")
    lines.append("")
    lines.append(DEFENCES + "\n")
    lines.append(NOT_COVERED)
    return "\n".join(lines)


NOT_COVERED = """\
## Limits

* A read-only folder is simulated (tests run as root, for whom `chmod` does not block
  writes): `os.access`, `os.replace`, `os.fsync` or the temporary-file creation are made to
  fail with `EROFS` / `ENOSPC`.
* A full disk under SQLite itself (the registry) is not simulated; SQLite rolls the
  transaction back and the registry raises `StorageError("registry …: database or disk is
  full")`.
* TensorFlow prints a few start-up log lines on stderr before Python can silence them; the
  CLI test ignores exactly those.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-elsewhere", action="store_true", help="also run other files' tests")
    parser.add_argument("--output", default=str(DOCUMENT), help="where to write the report")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "records.jsonl"
        status = run_tests(log, args.pytest_args)
        records = read_log(log)
    if status != 0:
        print(f"reliability tests failed (pytest exit status {status}); report not written")
        return 1
    if check_elsewhere(args.with_elsewhere) != 0:
        print("a test named in 'elsewhere' is missing or failed; report not written")
        return 1
    known = {case.id for case in CATALOGUE}
    unknown = sorted({entry["case"] for entry in records} - known)
    seen = {entry["case"] for entry in records}
    missing = sorted(case.id for case in CATALOGUE if case.id not in seen and not case.elsewhere)
    if unknown or missing:
        print(f"cases recorded but not catalogued: {unknown}; catalogued but untested: {missing}")
        return 1
    Path(args.output).write_text(render(records), encoding="utf-8")
    print(f"wrote {args.output}: {len(records)} records, {len(CATALOGUE)} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
