"""Command line: ``python -m nuclei_core train | finetune | predict | evaluate``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from nuclei_core.errors import InputError, ModelLoadError, NucleiError

SUMMARY_KEYS = (
    "mean_dsb_score",
    "mean_f1",
    "mean_foreground_iou",
    "mean_dice",
    "mean_pixel_accuracy",
)


class ProgressListener:
    """Prints training progress: a tqdm bar per epoch and one line per epoch."""

    def __init__(self):
        self.bar = None

    def on_status(self, message):
        print(message, file=sys.stderr, flush=True)

    def on_batch_end(self, epoch, step, steps, logs):
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(
                total=steps,
                desc=f"epoch {epoch + 1}",
                unit="batch",
                leave=False,
                disable=not sys.stderr.isatty(),
            )
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{logs.get('loss', 0):.3f}")

    def on_epoch_end(self, epoch, logs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        shown = ", ".join(
            f"{k} {v:.4f}" for k, v in logs.items() if k not in ("epoch", "lr", "seconds")
        )
        print(f"epoch {epoch + 1}: {shown} ({logs.get('seconds', 0):.0f} s)", flush=True)


def _train(args) -> int:
    from nuclei_core.training import TrainConfig, train

    config = TrainConfig(
        data=args.data[0] if len(args.data) == 1 else args.data,
        out=args.out,
        architecture=args.arch,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        patience=args.patience,
        crop=args.crop,
        val_fraction=args.val_fraction,
        seed=args.seed,
        base_filters=args.filters,
        depth=args.depth,
        time_budget_minutes=args.time_budget,
        strategy=args.strategy,
        precision=args.precision,
        resume=args.resume,
        name=args.name,
        distance=args.distance,
        base_model=args.start_from,
    )
    result = train(config, listener=ProgressListener())
    print(f"model: {result.model_path}  card: {result.card_path}  best epoch: {result.best_epoch}")
    return 0


def _finetune(args) -> int:
    from nuclei_core.training import finetune_config, train

    config = finetune_config(
        args.model,
        args.data,
        args.out,
        args.minutes,
        args.name,
        args.seed,
        args.precision,
        rehearsal=args.rehearsal,
    )
    started = time.monotonic()
    result = train(config, listener=ProgressListener())
    minutes = (time.monotonic() - started) / 60
    print(
        f"model: {result.model_path}  card: {result.card_path}  best epoch: {result.best_epoch}  "
        f"time: {minutes:.1f} min"
    )
    return 0


def _image_files(inputs) -> list[Path]:
    from nuclei_core.datasets import IMAGE_SUFFIXES

    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(path)
    return files


def _model_path(args) -> Path:
    """The file of ``--model`` (default: the bundled one), checked to exist."""
    from nuclei_core.locations import DEFAULT_MODEL

    path = Path(args.model) if args.model else DEFAULT_MODEL
    if not path.is_file():
        raise ModelLoadError(
            f"{path}: no such model file (train one with: python -m nuclei_core train)"
        )
    return path


def _model(args):
    """The model of ``--model`` (default: the bundled one) on the ``--backend`` asked for."""
    from nuclei_core.runtime import describe, load_inference_model

    path = _model_path(args)
    model = load_inference_model(path, args.backend, args.precision)
    print(f"model: {path} ({describe(model)})", flush=True)
    return model


def _options(args):
    """The command line's settings, with those of the model's card (its training diameter
    and minimum confidence: :func:`nuclei_core.segment.model_settings`)."""
    from nuclei_core.segment import SegmentOptions, model_settings

    return SegmentOptions(
        threshold=args.threshold,
        min_size=args.min_size,
        tta=args.tta,
        **model_settings(_model_path(args)),
    )


def _with_diameter(options, args):
    """``options`` with ``--diameter`` (checked here) or ``--diameter-um`` (turned into pixels
    per image), against the model's training diameter (:mod:`nuclei_core.rescale`)."""
    from dataclasses import replace

    from nuclei_core import rescale
    from nuclei_core.checks import check_positive
    from nuclei_core.segment import AUTO

    diameter_um = getattr(args, "diameter_um", None)
    if args.diameter is None and diameter_um is None:
        return options
    if diameter_um is not None:
        check_positive(diameter_um, "--diameter-um")
    elif args.diameter != AUTO:
        rescale.scale_factor(args.diameter, options.model_diameter, "--diameter")
    return replace(
        options,
        diameter=None if diameter_um is not None else args.diameter,
        diameter_um=diameter_um,
    )


def _diameter(text: str):
    """``--diameter``: pixels, ``auto`` (estimated from each image) or ``none`` (as it is)."""
    from nuclei_core.segment import AUTO

    word = text.strip().lower()
    if word == AUTO:
        return AUTO
    if word == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a diameter in pixels, 'auto' or 'none', got {text!r}"
        ) from None


def _plane(text: str | None):
    """``--plane``: None, ``"max"`` or an index (checked against the image later)."""
    if text is None:
        return None
    if text.strip().lower() == "max":
        return "max"
    try:
        return int(text)
    except ValueError:
        raise InputError(f"--plane must be a plane index or 'max', got {text!r}") from None


def _tile_bar(path):
    """A progress bar over a whole slide's tiles (shown when stderr is a terminal)."""
    from tqdm import tqdm

    return tqdm(unit="tile", desc=path.name, disable=not sys.stderr.isatty())


def _file_job(args):
    """The :class:`~nuclei_core.collection.FileJob` of ``predict``'s options (checked)."""
    from dataclasses import replace

    from nuclei_core import export
    from nuclei_core.checks import check_positive
    from nuclei_core.collection import FileJob
    from nuclei_core.storage import ensure_dir

    formats = export.parse_formats(args.formats)
    plane = _plane(args.plane)
    if args.pixel_size is not None:
        check_positive(args.pixel_size, "--pixel-size")
    if args.tile_size < 64 or args.tile_size % 32:
        raise InputError(f"--tile-size must be a multiple of 32, at least 64; got {args.tile_size}")
    options = replace(_with_diameter(_options(args), args), tile_size=args.tile_size)
    return FileJob(
        ensure_dir(args.out),
        formats,
        options,
        args.channel,
        plane,
        args.pixel_size,
        args.channel_intensities,
        args.tiled,
    )


def _files_to_predict(args, job, shard) -> tuple[list[Path], list[Path]]:
    """``(to_do, finished)``: the inputs of this run (``--shard``'s part) less, with
    ``--resume``, those whose outputs are all written already."""
    from nuclei_core import collection

    files = _image_files(args.inputs)
    if not files:
        raise InputError("no image files among the inputs")
    files = collection.check_distinct_names(files)
    if shard is not None:
        total, files = len(files), collection.select_shard(files, shard)
        print(f"shard {shard.index}/{shard.count}: {len(files)} of {total} images", flush=True)
    if not args.resume:
        return files, []
    files, finished = collection.split_finished(files, job)
    print(f"resume: {len(finished)} images finished before, {len(files)} to do", flush=True)
    return files, finished


def _local_results(args, files, job):
    """This process's engine: one model, one image after another (large TIFFs in tiles)."""
    from nuclei_core.collection import is_slide, predict_file

    model = _model(args)
    for path in files:
        if not is_slide(path, job):
            yield predict_file(model, path, job)
            continue
        with _tile_bar(path) as bar:

            def progress(done, total, bar=bar):
                bar.total = total
                bar.update(done - bar.n)

            yield predict_file(model, path, job, progress)


def _dask_results(args, files, job):
    """The Dask engine (:mod:`nuclei_core.distributed`): one task per image on the workers of
    a local cluster (``--workers``) or of the scheduler at ``--dask ADDRESS``."""
    from nuclei_core import distributed

    path = _model_path(args)
    source = distributed.ModelSource(str(path.absolute()), args.backend, args.precision)
    workers = 2 if args.workers is None else args.workers
    with distributed.connect(args.dask, workers) as client:
        runtimes = distributed.load_on_workers(client, source)
        where = "a local cluster" if args.dask == distributed.LOCAL else args.dask
        shown = "; ".join(sorted(set(runtimes.values())))
        print(f"model: {path} ({shown}; Dask, {len(runtimes)} workers on {where})", flush=True)
        yield from distributed.predict_files(client, source, files, job)


def _check_dask_options(args) -> None:
    """``--dask`` is ``local`` or an address; ``--workers`` (at least 1) needs a local cluster."""
    from nuclei_core.distributed import LOCAL, check_address

    if args.dask is not None:
        check_address(args.dask)
    if args.workers is None:
        return
    if args.dask != LOCAL:
        raise InputError(
            "--workers sets the size of a local Dask cluster: add --dask (without an address)"
        )
    if args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")


def _predict(args) -> int:
    from tqdm import tqdm

    from nuclei_core import collection

    shard = collection.parse_shard(args.shard) if args.shard is not None else None
    _check_dask_options(args)
    job = _file_job(args)
    files, finished = _files_to_predict(args, job, shard)
    results = [collection.FileResult(path, "skipped") for path in finished]
    failed = []
    engine = _local_results if args.dask is None else _dask_results
    bar = tqdm(total=len(files), unit="image", disable=len(files) < 2 or not sys.stderr.isatty())
    for result in engine(args, files, job) if files else ():
        bar.update(1)
        results.append(result)
        for line in result.notes:
            print(f"warning: {line}", file=sys.stderr)
        if result.status == "failed":
            failed.append(result.message)
            print(f"error: {result.message}", file=sys.stderr)
        else:
            print(result.line(), flush=True)
    bar.close()
    if args.summary:
        print(f"summary: {collection.write_summary(args.summary, results)}", flush=True)
    if failed:
        print(f"{len(failed)} of {len(files)} inputs failed:", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


def _evaluate(args) -> int:
    from tqdm import tqdm

    from nuclei_core import cards, datasets
    from nuclei_core.evaluate import evaluate_samples, summarize_by_kind
    from nuclei_core.locations import DEFAULT_MODEL
    from nuclei_core.runtime import describe
    from nuclei_core.storage import atomic_write_json

    model, options = _model(args), _with_diameter(_options(args), args)
    dataset = datasets.discover_dataset(args.data)
    samples = datasets.select_split(dataset, args.split)
    if not samples:
        raise InputError(f"{args.data}: the {args.split} split is empty")
    bar = tqdm(total=len(samples), unit="image", disable=not sys.stderr.isatty())
    results, problems = evaluate_samples(
        model, samples, options, progress=lambda done, total: bar.update(1)
    )
    bar.close()
    if not results:
        raise InputError(f"{args.data}: no readable image in the {args.split} split")
    summary = summarize_by_kind(results)
    report = {
        "model": str(args.model or DEFAULT_MODEL),
        "data": str(args.data),
        "split": args.split,
        "options": vars(options),
        "backend": describe(model),
        "command": " ".join(["python -m nuclei_core", *sys.argv[1:]]),
        "summary": summary,
        "images": [result.row() for result in results],
        "skipped": problems,
        "unpaired": list(dataset.problems),
    }
    for group, scores in summary.items():
        shown = "  ".join(f"{key[5:]} {scores[key]:.4f}" for key in SUMMARY_KEYS)
        print(f"{group:>20} ({scores['n_images']:3d} images): {shown}")
    if args.json:
        atomic_write_json(args.json, report)
        print(f"wrote {args.json}")
    if args.update_card:
        model_path = Path(args.model or DEFAULT_MODEL)
        card = cards.read_card(model_path)
        stored = {key: value for key, value in report.items() if key != "images"}
        card.setdefault("evaluations", {})[f"{args.data} ({args.split})"] = stored
        first = card.get("test_metrics") or {}
        if args.split == "test" and first.get("data", str(args.data)) == str(args.data):
            card["test_metrics"] = stored
        cards.write_card(model_path, card)
        print(f"updated {cards.card_path(model_path)}")
    for problem in dataset.problems:
        print(f"unpaired: {problem}", file=sys.stderr)
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _add_segment_options(parser) -> None:
    parser.add_argument("--model", default=None, help="model file (default: models/default.keras)")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "tensorflow", "openvino"],
        help="inference runtime (auto: OpenVINO where installed, else TensorFlow)",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help=(
            "inference precision (auto: bfloat16 on OpenVINO where the CPU computes it natively, "
            "else float32); bfloat16 runs on the OpenVINO backend only"
        ),
    )
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="foreground probability threshold"
    )
    parser.add_argument("--min-size", type=int, default=15, help="smallest nucleus kept (pixels)")
    parser.add_argument("--tta", action="store_true", help="average over flips (4x slower)")


def _add_diameter(parser) -> None:
    parser.add_argument(
        "--diameter",
        type=_diameter,
        default="auto",
        help=(
            "expected nucleus diameter in pixels: the image is rescaled to the model's size; "
            "'auto' (default) estimates it from each image (a second network pass where it "
            "differs from the model's by more than 10 %%); 'none' segments images as they are"
        ),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nuclei_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model on a dataset folder")
    train.add_argument(
        "--data",
        required=True,
        nargs="+",
        help=(
            "dataset folder(s) (Kaggle or inputs/+masks/ layout); each is split on its own and "
            "sampled in balance with the others"
        ),
    )
    train.add_argument("--arch", default="unet", choices=["unet", "mobilenetv2"])
    train.add_argument("--epochs", type=int, default=40)
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (cosine decay)")
    train.add_argument("--patience", type=int, default=10, help="early-stopping patience (epochs)")
    train.add_argument("--crop", type=int, default=256, help="training crop size (pixels)")
    train.add_argument("--val-fraction", type=float, default=0.1)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--filters", type=int, default=16, help="U-Net filters at the first level")
    train.add_argument("--depth", type=int, default=4, help="U-Net levels")
    train.add_argument(
        "--distance",
        action="store_true",
        help="also learn each nucleus's normalised distance map; its peaks seed the nuclei",
    )
    train.add_argument(
        "--start-from",
        default=None,
        metavar="MODEL",
        help="start from this .keras model's weights (same network; it may lack --distance)",
    )
    train.add_argument(
        "--time-budget", type=float, default=None, help="stop after this many minutes"
    )
    train.add_argument(
        "--strategy", default="auto", choices=["auto", "none", "mirrored", "multiworker"]
    )
    train.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help=(
            "auto: mixed bfloat16 on CPUs with AMX, else float32; bfloat16 needs AVX-512 or a GPU"
            " (the saved model is float32)"
        ),
    )
    train.add_argument("--out", default="runs/latest", help="run folder (model, card, checkpoints)")
    train.add_argument("--name", default=None, help="run name (default: the folder name)")
    train.add_argument(
        "--resume", action="store_true", help="continue from the run folder's checkpoint"
    )
    train.set_defaults(handler=_train)

    finetune = commands.add_parser(
        "finetune", help="fine-tune a model on a folder of corrected images for some minutes"
    )
    finetune.add_argument("--model", required=True, help="the .keras model to start from")
    finetune.add_argument(
        "--data", required=True, help="folder of images and label masks (all of them are used)"
    )
    finetune.add_argument("--minutes", type=float, default=10.0, help="time budget")
    finetune.add_argument("--out", default="runs/finetuned", help="run folder (model, card)")
    finetune.add_argument("--name", default=None, help="run name (default: the folder name)")
    finetune.add_argument("--seed", type=int, default=0)
    finetune.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"])
    finetune.add_argument(
        "--rehearsal",
        nargs="*",
        default=None,
        help=(
            "folders of the base model's training data replayed beside the new images (default: "
            "the folders its card names that exist here; give the option alone for none)"
        ),
    )
    finetune.set_defaults(handler=_finetune)

    predict = commands.add_parser("predict", help="find nuclei in images; write masks, labels, CSV")
    predict.add_argument("inputs", nargs="+", help="image files or folders of images")
    predict.add_argument("--out", required=True, help="output folder")
    predict.add_argument(
        "--formats",
        default="mask,labels,csv",
        help=(
            "comma list of outputs: mask, labels, csv, roi (Fiji ROI set), geojson (QuPath), "
            "tiff (label TIFF with the pixel size); default mask,labels,csv. A whole slide "
            "always gets its OME-Zarr labels, CSV and overview, and the GeoJSON if asked"
        ),
    )
    predict.add_argument(
        "--pixel-size",
        type=float,
        default=None,
        help="micrometres per pixel (default: read from the file; else sizes in pixels)",
    )
    predict.add_argument(
        "--channel",
        type=int,
        default=None,
        help="nuclear channel of a multi-channel image (0 = first)",
    )
    predict.add_argument(
        "--plane", default=None, help="plane of a z-stack or time series (0 = first), or max"
    )
    predict.add_argument(
        "--channel-intensities",
        action="store_true",
        help="measure the mean intensity of every channel (one column per channel)",
    )
    predict.add_argument(
        "--tile-size",
        type=int,
        default=1024,
        help=(
            "side of the tiles an image larger than it is predicted in; TIFFs over 4096 x 4096 "
            "pixels are segmented tile by tile in bounded memory (labels as OME-Zarr); a "
            "multiple of 32 (default 1024)"
        ),
    )
    predict.add_argument(
        "--tiled", action="store_true", help="segment every input tile by tile, whatever its size"
    )
    predict.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help=(
            "process part I of N (0 <= I < N) of the inputs, chosen by a hash of each file "
            "name: the N jobs of a cluster array cover the inputs without overlap"
        ),
    )
    predict.add_argument(
        "--resume",
        action="store_true",
        help="skip the images whose outputs are all in --out already (an interrupted run)",
    )
    predict.add_argument(
        "--dask",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help=(
            "run the images as Dask tasks: on a local cluster (--workers processes), or on "
            "the scheduler at ADDRESS (tcp://host:8786) whose workers share the folders"
        ),
    )
    predict.add_argument(
        "--workers", type=int, default=None, help="worker processes of the local Dask cluster (2)"
    )
    predict.add_argument(
        "--summary", default=None, help="write one CSV row per image (count, seconds) here"
    )
    diameter = predict.add_mutually_exclusive_group()
    _add_diameter(diameter)
    diameter.add_argument(
        "--diameter-um",
        type=float,
        default=None,
        help="expected nucleus diameter in µm (needs a pixel size: the file's or --pixel-size)",
    )
    _add_segment_options(predict)
    predict.set_defaults(handler=_predict)

    evaluate = commands.add_parser("evaluate", help="score a model on a dataset split")
    evaluate.add_argument("--data", required=True, help="dataset folder")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    evaluate.add_argument(
        "--json", default=None, help="write the report (per image and overall) here"
    )
    evaluate.add_argument(
        "--update-card", action="store_true", help="store the results in the model card"
    )
    _add_segment_options(evaluate)
    _add_diameter(evaluate)
    evaluate.set_defaults(handler=_evaluate)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except NucleiError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
