"""Segment one (large) image in a fresh process, report time and memory (for ``bench.run``).

Usage::

    python -m bench.probe_large --model models/default.keras --image big.png

Prints one JSON line: seconds to import, load the model, read the image and segment
it (predict with tiling, instances, measurements), the nucleus count, and the
process's peak resident memory (``ru_maxrss``, the whole process: Python,
TensorFlow, the model and the image). ``python -m bench.run`` runs it in a subprocess so
the peak belongs to this one job alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def peak_memory_kib() -> int:
    """This process's peak resident memory (KiB) since it started its program.

    ``VmHWM`` of ``/proc/self/status`` where there is one (Linux): the peak of this
    program's own memory. ``ru_maxrss`` elsewhere, which on Linux also carries the
    parent's resident memory at the fork that started this process (a benchmark parent
    holding several models made a 2.4 GB run read 3.8 GB).

    Examples
    --------
    >>> peak_memory_kib() > 0
    True
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--tile-size", type=int, default=1024)
    args = parser.parse_args(argv)

    from nuclei_core.io.imread import read_image
    from nuclei_core.network.runtime import load_inference_model
    from nuclei_core.segmentation.options import SegmentOptions
    from nuclei_core.segmentation.segment import segment_image

    imported = time.perf_counter()
    model = load_inference_model(args.model)  # the runtime the app and the CLI pick
    loaded = time.perf_counter()
    image = read_image(args.image)
    read = time.perf_counter()
    result = segment_image(model, image, SegmentOptions(tile_size=args.tile_size))
    done = time.perf_counter()
    peak_kib = peak_memory_kib()
    print(
        json.dumps(
            {
                "height": int(image.shape[0]),
                "width": int(image.shape[1]),
                "nuclei": result.count,
                "seconds_import": round(imported - STARTED, 3),
                "seconds_load_model": round(loaded - imported, 3),
                "seconds_read": round(read - loaded, 3),
                "seconds_predict": round(result.seconds["predict"], 3),
                "seconds_instances": round(result.seconds["instances"], 3),
                "seconds_segment": round(done - read, 3),
                "seconds_read_and_segment": round(done - loaded, 3),
                "peak_rss_bytes": int(peak_kib) * 1024,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
