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


@pytest.mark.parametrize("command", [[], ["predict"], ["train"], ["evaluate"], ["finetune"]])
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
