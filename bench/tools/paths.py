"""The folders the benchmark reads and writes, and how the report names them."""

from __future__ import annotations

import json
from pathlib import Path

from nuclei_core.locations import PROJECT_ROOT

BENCH = Path(__file__).resolve().parents[1]
"""The benchmark's folder, ``bench/``."""

RESULTS = BENCH / "results"
"""Where every experiment writes its figures and tables by default (``RESULTS.md``,
``results.json``, ``width.md`` ...)."""

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data" / "dsb2018" / "stage1_train"
"""The data set scored when ``--data`` is not given (DSB 2018 stage1_train)."""

MONUSEG_DATA = PROJECT_ROOT.parent / "shared" / "data" / "monuseg2018_train" / "train"
"""The H&E tiles of MoNuSeg 2018, the second set of the scripts that score both sets."""

MOBILENETV2_MODEL = PROJECT_ROOT / "models" / "peers" / "mobilenetv2" / "model.keras"
"""Where the original project's recipe is kept with its card and looked for
(``--baseline-model``); ``python -m bench.train_peers`` puts it there."""

STARDIST_MODEL = PROJECT_ROOT / "models" / "peers" / "stardist"
"""Where the trained StarDist model is kept (``python -m bench.train_peers`` puts it there)."""


def relative(path) -> str:
    """``path`` relative to the project root when it lies inside it, else absolute.

    Examples
    --------
    >>> relative(PROJECT_ROOT / "models" / "default.keras")
    'models/default.keras'
    """
    path = Path(path).resolve()
    try:
        return path.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def dataset_name(folder) -> str:
    """A data set's short name in the report: its folder and the folder above it.

    Examples
    --------
    >>> dataset_name("../shared/data/monuseg2018_train/train")
    'monuseg2018_train/train'
    """
    parts = Path(folder).expanduser().resolve().parts
    return "/".join(parts[-2:])


def saved_figures(path) -> dict:
    """The figures a benchmark script saved in the JSON file ``path``; ``{}`` when there is none.

    Examples
    --------
    >>> saved_figures(RESULTS / "no_such_figures.json")
    {}
    """
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}
