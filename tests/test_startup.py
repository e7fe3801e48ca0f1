"""Start-up stays light: the package and the command line's help load no heavy library.

A notebook's ``import nuclei_core``, the CLI's ``--help`` and a Dask worker's first import
must not pay for TensorFlow, Keras, OpenVINO, Dask or Streamlit; each is imported only by
the function that needs it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import ROOT

HEAVY = ("tensorflow", "keras", "openvino", "dask", "streamlit")
REPORT_HEAVY = (
    "import sys\n"
    f"heavy = sorted({{name.split('.')[0] for name in sys.modules}} & {set(HEAVY)})\n"
    "print('heavy:' + ','.join(heavy))\n"
)


def heavy_modules_after(code: str) -> str:
    """Run ``code`` in a fresh interpreter, then name the heavy libraries it had imported."""
    done = subprocess.run(
        [sys.executable, "-c", code + "\n" + REPORT_HEAVY],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_importing_the_package_loads_no_heavy_library():
    assert heavy_modules_after("import nuclei_core") == "heavy:"


def test_the_notebook_names_resolve_without_loading_tensorflow_until_used():
    code = "import nuclei_core as nc\nnc.read_image\nnc.SegmentOptions\nnc.evaluate_labels"
    assert heavy_modules_after(code) == "heavy:"


@pytest.mark.parametrize(
    "command",
    [[], ["predict"], ["train"], ["evaluate"], ["finetune"], ["export-model"], ["import-model"]],
)
def test_command_line_help_loads_no_heavy_library(command):
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['nuclei', *{command!r}, '--help']\n"
        "try:\n    runpy.run_module('nuclei_core', run_name='__main__')\n"
        "except SystemExit as stop:\n    assert stop.code in (0, None), stop.code"
    )
    assert heavy_modules_after(code) == "heavy:"


def test_the_probe_sees_a_heavy_library_when_one_is_imported():
    assert heavy_modules_after("import dask") == "heavy:dask"


def test_predict_on_openvino_loads_neither_tensorflow_nor_what_its_outputs_do_not_need(
    tmp_path, tiny_model_file, write_png, make_sample
):
    """A folder run on a compiled OpenVINO model imports no TensorFlow or Keras, and, for
    masks, labels and tables, not scikit-image's contours (0.75 s of SciPy's signal and
    statistics modules) either."""
    pytest.importorskip("openvino")
    from nuclei_core.network import runtime

    runtime.exported_model(tiny_model_file)  # the compiled model beside the .keras file
    image = write_png(tmp_path / "cells.png", make_sample((48, 48), seed=3)[0])
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['nuclei', 'predict', {str(image)!r}, '--out', {str(tmp_path / 'out')!r},"
        f" '--model', {str(tiny_model_file)!r}, '--backend', 'openvino']\n"
        "try:\n    runpy.run_module('nuclei_core', run_name='__main__')\n"
        "except SystemExit as stop:\n    assert stop.code in (0, None), stop.code\n"
        "late = {'skimage.measure._find_contours', 'scipy.signal', 'scipy.stats'}\n"
        "late &= set(sys.modules)\n"
        "assert not late, late\n"
    )
    assert heavy_modules_after(code) == "heavy:openvino"
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "cells_labels.png",
        "cells_mask.png",
        "cells_nuclei.csv",
    ]
