"""``train`` and ``finetune``: train a model on dataset folders, or fine-tune one on corrections.

Both run :func:`nuclei_core.training.train` and print its progress; at the end
the model is calibrated on the run's validation images
(:mod:`nuclei_core.evaluation.calibrate`) and its card says so.
"""

from __future__ import annotations

import time

from nuclei_core.cli.common import ProgressListener


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
    result = train(config, listener=ProgressListener(config.time_budget_minutes))
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
    result = train(config, listener=ProgressListener(config.time_budget_minutes))
    minutes = (time.monotonic() - started) / 60
    print(
        f"model: {result.model_path}  card: {result.card_path}  best epoch: {result.best_epoch}  "
        f"time: {minutes:.1f} min"
    )
    return 0


def add_commands(commands) -> None:
    """Register ``train`` and ``finetune``."""
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
