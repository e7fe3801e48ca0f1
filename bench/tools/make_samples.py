"""Write the shipped sample images: a small part of the held-out TEST split, with ground truth.

Usage::

    python -m bench.tools.make_samples --data ../shared/data/dsb2018/stage1_train

Takes every stained and brightfield image of the test split
(``nuclei_core.datasets.folders.select_split(discover_dataset(data), "test")``) and fills up to
``--count`` images with fluorescence images of every size present, spread over
nucleus counts. Writes, in the flat layout ``nuclei_core.datasets.folders.discover_dataset`` reads:

* ``sample_images/inputs/<name>.png``: the original Kaggle image file, byte for byte;
* ``sample_images/masks/<name>.png``: the instance label image (16-bit PNG, 0 =
  background, 1..N = nuclei) built with ``nuclei_core.datasets.folders.load_sample``;
* ``sample_images/manifest.csv``: name, Kaggle id, kind, size, nucleus count.

The selection depends only on the dataset, so running it again rewrites the same
files (stale ``.png`` files in ``inputs/`` and ``masks/`` are removed). Every written
pair is read back with ``discover_dataset`` + ``load_sample`` and compared with the
source before the script reports success.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from nuclei_core.datasets.folders import discover_dataset, load_sample, select_split
from nuclei_core.io.export import encode_png, labels_to_uint16
from nuclei_core.io.imread import read_image
from nuclei_core.locations import PROJECT_ROOT
from nuclei_core.segmentation.preprocess import image_kind
from nuclei_core.storage import atomic_write_bytes, atomic_write_text

PREFIX = {"fluorescence": "fluo", "brightfield": "bright", "stained": "stained"}
MAX_BYTES = 15 * 1024 * 1024


def _spread(items: list, count: int) -> list:
    """``count`` items evenly spaced through ``items`` (which is sorted)."""
    if count >= len(items):
        return list(items)
    positions = np.linspace(0, len(items) - 1, count)
    return [items[int(round(position))] for position in positions]


def choose(candidates: list[dict], count: int) -> list[dict]:
    """Every non-fluorescence image, then fluorescence images round-robin over sizes.

    Within one image size the chosen images are spread over the nucleus counts.
    """
    colour = [c for c in candidates if c["kind"] != "fluorescence"]
    fluo_by_size: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for candidate in candidates:
        if candidate["kind"] == "fluorescence":
            fluo_by_size[(candidate["height"], candidate["width"])].append(candidate)
    sizes = sorted(fluo_by_size, key=lambda size: (size[0] * size[1], size))
    quota = dict.fromkeys(sizes, 0)
    wanted = max(0, count - len(colour))
    while wanted > 0 and any(quota[s] < len(fluo_by_size[s]) for s in sizes):
        for size in sizes:
            if wanted > 0 and quota[size] < len(fluo_by_size[size]):
                quota[size] += 1
                wanted -= 1
    fluorescence = []
    for size in sizes:
        ordered = sorted(fluo_by_size[size], key=lambda c: (c["nuclei"], c["id"]))
        fluorescence += _spread(ordered, quota[size])
    return colour + fluorescence


def _name_samples(chosen: list[dict]) -> list[dict]:
    numbered: dict[str, int] = defaultdict(int)
    order = sorted(
        chosen,
        key=lambda c: (
            list(PREFIX).index(c["kind"]),
            c["height"] * c["width"],
            c["nuclei"],
            c["id"],
        ),
    )
    for candidate in order:
        prefix = PREFIX[candidate["kind"]]
        numbered[prefix] += 1
        candidate["name"] = f"{prefix}_{numbered[prefix]:02d}"
    return sorted(order, key=lambda c: c["name"])


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label images describe the same nuclei (ids may differ)."""
    if a.shape != b.shape or not np.array_equal(a > 0, b > 0):
        return False
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="DSB2018 stage1_train folder (Kaggle layout)")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "sample_images"), help="output folder")
    parser.add_argument("--count", type=int, default=28, help="number of images (24 to 30)")
    args = parser.parse_args(argv)

    dataset = discover_dataset(args.data)
    test = select_split(dataset, "test")
    print(f"{len(dataset.samples)} images, {len(test)} in the test split")
    by_id = {sample.id: sample for sample in test}
    candidates = []
    for sample in test:
        image = read_image(sample.image_path)
        candidates.append(
            {
                "id": sample.id,
                "kind": image_kind(image),
                "height": image.shape[0],
                "width": image.shape[1],
                "nuclei": len(sample.mask_paths),
            }
        )
    chosen = _name_samples(choose(candidates, args.count))

    out = Path(args.out)
    inputs_dir, masks_dir = out / "inputs", out / "masks"
    inputs_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    names = {c["name"] for c in chosen}
    for folder in (inputs_dir, masks_dir):
        for stale in folder.glob("*.png"):
            if stale.stem not in names:
                stale.unlink()

    truth = {}
    for candidate in chosen:
        sample = by_id[candidate["id"]]
        image, labels = load_sample(sample)
        candidate["nuclei"] = int(len(np.unique(labels)) - 1)
        truth[candidate["name"]] = (image, labels)
        atomic_write_bytes(inputs_dir / f"{candidate['name']}.png", sample.image_path.read_bytes())
        atomic_write_bytes(
            masks_dir / f"{candidate['name']}.png", encode_png(labels_to_uint16(labels))
        )

    buffer = io.StringIO()
    columns = ["name", "kaggle_id", "kind", "width", "height", "nuclei"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for candidate in chosen:
        writer.writerow(
            {
                "name": candidate["name"],
                "kaggle_id": candidate["id"],
                "kind": candidate["kind"],
                "width": candidate["width"],
                "height": candidate["height"],
                "nuclei": candidate["nuclei"],
            }
        )
    atomic_write_text(out / "manifest.csv", buffer.getvalue())

    # Read everything back the way the app and the benchmark will.
    written = discover_dataset(out)
    if written.problems or sorted(written.ids) != sorted(names):
        raise SystemExit(f"read-back failed: ids {written.ids}, problems {written.problems}")
    for sample in written.samples:
        image, labels = load_sample(sample)
        source_image, source_labels = truth[sample.id]
        if not np.array_equal(image, source_image) or not _same_partition(labels, source_labels):
            raise SystemExit(f"{sample.image_path}: read-back differs from the source")
    total = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    kinds = defaultdict(int)
    for candidate in chosen:
        kinds[candidate["kind"]] += 1
    print(
        f"wrote {len(chosen)} images to {out} ({dict(kinds)}), {total / 1e6:.1f} MB; "
        "all read back and match"
    )
    if total > MAX_BYTES:
        raise SystemExit(f"{out}: {total / 1e6:.1f} MB is over the 15 MB limit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
