"""StarDist 2D as a peer of the default model: trained here from scratch, run in its own process.

StarDist (Schmidt et al. 2018, star-convex polygons) is the tool a user would pick
instead of this project. Its pretrained weights cannot be downloaded here, so it is
trained on the default model's own data, with the same training and validation
images, the same model input (:func:`nuclei_core.segmentation.preprocess.to_model_input`), the
same sampling weights by data set and kind, and the same training runs (the minutes of
each, :func:`bench.sections.peers.training_minutes`; a later run goes on from the one before with
``--start-from``); its network, loss and augmentation (flips, rotations, intensity) are
StarDist's own, and its two thresholds are optimised on the validation images, as
StarDist prescribes.

StarDist runs on Keras 2 (the ``tf-keras`` package), so this command sets
``TF_USE_LEGACY_KERAS=1`` and always runs in a process of its own::

    pip install -r bench/requirements-peers.txt
    python -m bench.stardist_peer train --minutes 120 --out runs/stardist
    python -m bench.stardist_peer train --minutes 58 --start-from runs/stardist/stardist \
        --seed 1 --out runs/stardist_more
    python -m bench.stardist_peer serve --model models/peers/stardist

``python -m bench.run`` starts ``serve`` in a child process
(:class:`bench.sections.segmenters.StarDistProcess`) and scores its labels like every other
method's; the trained model is committed in ``models/peers/stardist`` with its card.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_CARD = Path(__file__).resolve().parents[1] / "models" / "default.json"
STEPS_PER_EPOCH = 100
"""StarDist's default; an epoch is 100 batches of 4 random 256 x 256 crops."""


def load_arrays(samples, groups) -> tuple[list, list, list]:
    """Model inputs, label images and ``group/kind`` names of ``samples``."""
    from nuclei_core.datasets.folders import load_sample
    from nuclei_core.segmentation.preprocess import image_kind, to_model_input

    inputs, labels, kinds = [], [], []
    for sample, group in zip(samples, groups, strict=True):
        image, label_image = load_sample(sample)
        inputs.append(to_model_input(image))
        labels.append(label_image.astype(np.int32))
        kinds.append(f"{group}/{image_kind(image)}" if group else image_kind(image))
    return inputs, labels, kinds


def repeat_by_weight(inputs, labels, kinds, groups) -> tuple[list, list]:
    """Each image listed as often as the default model's sampler draws it.

    That is :func:`nuclei_core.training.data.crops_per_image` times its
    :func:`~nuclei_core.training.data.kind_weights` weight; StarDist draws one crop
    per listed image.
    """
    from nuclei_core.training.data import crops_per_image, kind_weights, weight_cap

    weights = kind_weights(kinds, cap=weight_cap(groups))
    repeated_inputs, repeated_labels = [], []
    for model_input, label_image, kind in zip(inputs, labels, kinds, strict=True):
        draws = crops_per_image(*label_image.shape, 256) * weights[kind]
        for _ in range(max(1, int(round(draws)))):
            repeated_inputs.append(model_input)
            repeated_labels.append(label_image)
    return repeated_inputs, repeated_labels


def augment(image, labels):
    """StarDist's example augmentation: a random flip and right-angle turn, then intensity."""
    turns = np.random.randint(4)
    image, labels = np.rot90(image, turns), np.rot90(labels, turns)
    if np.random.rand() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    image = image * np.random.uniform(0.6, 2.0) + np.random.uniform(-0.2, 0.2)
    return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(labels)


def time_budget_callback(seconds: float):
    """A Keras 2 callback that stops training after ``seconds`` of wall clock."""
    from tensorflow import keras

    class TimeBudget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started = time.monotonic()

        def on_train_batch_end(self, batch, logs=None):
            if time.monotonic() - self.started > seconds:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            minutes = (time.monotonic() - self.started) / 60
            print(f"epoch {epoch + 1} done after {minutes:.1f} min: {logs}", flush=True)

    return TimeBudget()


def train(minutes: float, out: Path, seed: int = 0, start_from: Path | None = None) -> dict:
    """Train StarDist 2D on the default model's data and splits; return its card.

    With ``start_from`` (a trained StarDist model folder with its ``card.json``) training
    goes on from that model's best weights, as the default model's later runs went on
    from the one before; the card then adds up both runs' minutes and epochs.
    """
    from stardist import fill_label_holes
    from stardist.models import Config2D, StarDist2D

    from nuclei_core.training.config import TrainConfig
    from nuclei_core.training.data import check_dataset

    default_card = json.loads(DEFAULT_CARD.read_text())
    folders = default_card["params"]["data"]
    split = check_dataset(TrainConfig(data=folders, out=str(out)))
    print(f"{len(split.train)} training and {len(split.val)} validation images", flush=True)
    inputs, labels, kinds = load_arrays(split.train, split.train_groups)
    labels = [fill_label_holes(label_image) for label_image in labels]
    train_inputs, train_labels = repeat_by_weight(inputs, labels, kinds, split.train_groups)
    val_inputs, val_labels, _ = load_arrays(split.val, split.val_groups)
    val_labels = [fill_label_holes(label_image) for label_image in val_labels]
    print(f"{len(train_inputs)} weighted training entries", flush=True)

    np.random.seed(seed)
    config = Config2D(
        n_rays=32,
        grid=(2, 2),
        n_channel_in=3,
        train_patch_size=(256, 256),
        train_batch_size=4,
        train_tensorboard=False,
        use_gpu=False,
    )
    earlier = None
    if start_from is None:
        model = StarDist2D(config, name="stardist", basedir=str(out))
    else:
        earlier = json.loads((start_from / "card.json").read_text())
        shutil.copytree(start_from, out / "stardist", dirs_exist_ok=True)
        model = StarDist2D(None, name="stardist", basedir=str(out))
        config = model.config
    model.prepare_for_training()
    model.callbacks.append(time_budget_callback(minutes * 60))
    started = time.monotonic()
    history = model.train(
        train_inputs,
        train_labels,
        validation_data=(val_inputs, val_labels),
        augmenter=augment,
        epochs=10_000,
        steps_per_epoch=STEPS_PER_EPOCH,
        seed=seed,
    )
    train_seconds = time.monotonic() - started
    thresholds = model.optimize_thresholds(val_inputs, val_labels)
    command = f"python -m bench.stardist_peer train --minutes {minutes:g} --out {out}"
    if start_from is not None:
        command += f" --start-from {start_from} --seed {seed}"
    card = {
        "peer": "StarDist 2D",
        "stardist": __import__("stardist").__version__,
        "command": command,
        "commands": [command],
        "data": folders,
        "licences": default_card.get("datasets"),
        "n_train": len(split.train),
        "n_val": len(split.val),
        "train_seconds": round(train_seconds, 1),
        "minutes_budget": minutes,
        "epochs_run": len(history.history["loss"]),
        "steps_per_epoch": STEPS_PER_EPOCH,
        "batch_size": config.train_batch_size,
        "thresholds": thresholds,
        "load_average_at_end": os.getloadavg(),
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
    }
    if earlier is not None:
        card = after(earlier, card)
    (out / "stardist" / "card.json").write_text(json.dumps(card, indent=2))
    return card


def after(earlier: dict, card: dict) -> dict:
    """``card`` of a run that went on from ``earlier``'s model, with both runs added up.

    >>> first = {"command": "a", "train_seconds": 60.0, "minutes_budget": 1.0,
    ...          "epochs_run": 2, "history": {"loss": [3.0, 2.0]}}
    >>> second = {"commands": ["b"], "train_seconds": 30.0, "minutes_budget": 0.5,
    ...           "epochs_run": 1, "history": {"loss": [1.0]}}
    >>> merged = after(first, second)
    >>> merged["commands"], merged["minutes_budget"], merged["history"]["loss"]
    (['a', 'b'], 1.5, [3.0, 2.0, 1.0])
    """
    from nuclei_core.registry.cards import training_commands

    merged = dict(card)
    merged["commands"] = training_commands(earlier) + card["commands"]
    for key in ("train_seconds", "minutes_budget", "epochs_run"):
        merged[key] = earlier[key] + card[key]
    merged["history"] = {
        key: earlier["history"].get(key, []) + values for key, values in card["history"].items()
    }
    return merged


def serve(model_dir: Path) -> None:
    """Label images for a parent process: one request per line on stdin, one answer on stdout.

    A request is ``IMAGE.npy<TAB>LABELS.npy``: the image as ``nuclei_core.io.imread``
    reads it, and where to write its int32 labels; the answer is ``done LABELS.npy``
    (other lines on stdout are StarDist's own messages). ``ready`` says the model is
    loaded and warmed up on a blank image, so the parent times only real images.
    """
    from stardist.models import StarDist2D

    from nuclei_core.segmentation.preprocess import to_model_input

    model = StarDist2D(None, name=model_dir.name, basedir=str(model_dir.parent))
    model.predict_instances(np.zeros((256, 256, 3), np.float32), verbose=False)
    print("ready", flush=True)
    for line in sys.stdin:
        source, target = line.rstrip("\n").split("\t")
        labels, _ = model.predict_instances(to_model_input(np.load(source)), verbose=False)
        np.save(target, labels.astype(np.int32))
        print(f"done {target}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stardist_peer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", help="train on the default model's data")
    train_parser.add_argument("--minutes", type=float, default=None)
    train_parser.add_argument("--out", type=Path, default=Path("runs/stardist"))
    train_parser.add_argument(
        "--start-from",
        type=Path,
        default=None,
        help="a StarDist model folder to go on from",
    )
    train_parser.add_argument("--seed", type=int, default=0)
    serve_parser = commands.add_parser("serve", help="label images sent on stdin")
    serve_parser.add_argument("--model", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.command == "train":
        minutes = args.minutes
        if minutes is None:  # the default model's first run
            from bench.sections.peers import training_minutes

            minutes = training_minutes(json.loads(DEFAULT_CARD.read_text()))[0]
        card = train(minutes, args.out, seed=args.seed, start_from=args.start_from)
        print(json.dumps({key: card[key] for key in ("train_seconds", "epochs_run", "thresholds")}))
    else:
        serve(args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
