"""What the commands share: the model and segmentation options, the progress printer.

:func:`add_segment_options` and :func:`add_diameter` add the options of every
command that segments (``predict``, ``evaluate``, ``calibrate``);
:func:`load_model` and :func:`segment_options` turn them into the engine's model
and :class:`~nuclei_core.segmentation.options.SegmentOptions`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from nuclei_core.errors import ModelLoadError


class ProgressListener:
    """Prints training progress: a tqdm bar per epoch and one line per epoch.

    A run that its time budget ends (``budget_minutes``, a fine-tune) says how many of
    its minutes have passed, not which of its nominal epochs it is in.
    """

    def __init__(self, budget_minutes: float | None = None):
        self.bar = None
        self.budget_minutes = budget_minutes
        self.started = time.monotonic()

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
        where = f"epoch {epoch + 1}"
        if self.budget_minutes:
            minutes = (time.monotonic() - self.started) / 60
            where += f" ({minutes:.1f} of {self.budget_minutes:g} min)"
        print(f"{where}: {shown} ({logs.get('seconds', 0):.0f} s)", flush=True)


def model_path(args) -> Path:
    """The file of ``--model`` (default: the bundled one), checked to exist."""
    from nuclei_core.locations import DEFAULT_MODEL

    path = Path(args.model) if args.model else DEFAULT_MODEL
    if not path.is_file():
        raise ModelLoadError(
            f"{path}: no such model file (train one with: python -m nuclei_core train)"
        )
    return path


def load_model(args):
    """The model of ``--model`` (default: the bundled one) on the ``--backend`` asked for."""
    from nuclei_core.network.runtime import describe, load_inference_model

    path = model_path(args)
    model = load_inference_model(path, args.backend, args.precision)
    print(f"model: {path} ({describe(model)})", flush=True)
    return model


def segment_options(args):
    """The command line's settings, with those of the model's card (its training diameter
    and minimum confidence: :func:`nuclei_core.segmentation.options.model_settings`)."""
    from nuclei_core.segmentation.options import SegmentOptions, model_settings

    return SegmentOptions(
        threshold=args.threshold,
        min_size=args.min_size,
        tta=args.tta,
        **model_settings(model_path(args)),
    )


def with_diameter(options, args):
    """``options`` with ``--diameter`` (checked here) or ``--diameter-um`` (turned into pixels
    per image), against the model's training diameter (:mod:`nuclei_core.segmentation.diameter`)."""
    from dataclasses import replace

    from nuclei_core.checks import check_positive
    from nuclei_core.segmentation import diameter as rescale
    from nuclei_core.segmentation.options import AUTO

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


def diameter_value(text: str):
    """``--diameter``: pixels, ``auto`` (estimated from each image) or ``none`` (as it is)."""
    from nuclei_core.segmentation.options import AUTO

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


def add_segment_options(parser) -> None:
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


def add_diameter(parser) -> None:
    parser.add_argument(
        "--diameter",
        type=diameter_value,
        default="auto",
        help=(
            "expected nucleus diameter in pixels: the image is rescaled to the model's size; "
            "'auto' (default) estimates it from each image (a second network pass where it "
            "differs from the model's by more than 10 %%); 'none' segments images as they are"
        ),
    )
