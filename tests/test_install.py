"""The installed package: a wheel built from this checkout, installed in a fresh virtual
environment, gives a working ``nuclei`` command that finds its packaged default model.

The wheel is built from a copy of the files it is made of (so the checkout gets no
``build/`` nor ``*.egg-info``) with the build tools already installed, and installed
with ``--no-deps --no-index`` in a venv that sees this machine's packages
(``--system-site-packages``): nothing is downloaded. The commands run outside the
checkout, with no ``PYTHONPATH``, so they can only use what the wheel installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import nuclei_core

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_images" / "inputs" / "fluo_01.png"
WHEEL_SOURCES = ("pyproject.toml", "nuclei_core", "models/default.keras", "models/default.json")
"""What the wheel is built from (``tool.setuptools`` in pyproject.toml)."""


def checkout_packages() -> set[str]:
    """Every package of ``nuclei_core`` in the checkout, and the mapped ``models/``."""
    packages = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "nuclei_core").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    return packages | {"nuclei_core.models"}


def test_pyproject_lists_every_package_of_the_checkout():
    """A package added to the engine must be added to ``tool.setuptools.packages`` too
    (the list is written by hand because ``models/`` is mapped into the package)."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(setuptools["packages"]) == checkout_packages()


def build_wheel(folder: Path) -> Path:
    """Build the wheel from a copy of its sources under ``folder``; return its path."""
    source = folder / "source"
    for name in WHEEL_SOURCES:
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, target)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, "-q", "-w", str(folder / "wheels"), str(source)], check=True)
    (wheel,) = (folder / "wheels").glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``(wheel, venv/bin, work folder)``: the wheel installed in a fresh venv."""
    folder = tmp_path_factory.mktemp("install")
    wheel = build_wheel(folder)
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    subprocess.run([*pip, str(wheel)], check=True)
    work = folder / "elsewhere"
    work.mkdir()
    return wheel, venv / "bin", work


def run(command, work: Path) -> subprocess.CompletedProcess:
    """Run an installed command in ``work``, away from the checkout and its variables."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name != "PYTHONPATH" and not name.startswith("NUCLEI_")
    }
    env["NUCLEI_DATA_DIR"] = str(work / "data")
    return subprocess.run(
        list(map(str, command)), capture_output=True, text=True, env=env, cwd=work, timeout=300
    )


@pytest.mark.slow
def test_the_wheel_holds_every_package_the_default_model_and_no_more(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    packages = {
        Path(name).parent.as_posix().replace("/", ".")
        for name in names
        if name.startswith("nuclei_core/")
    }
    assert packages == checkout_packages()
    assert sorted(name for name in names if name.startswith("nuclei_core/models/")) == [
        "nuclei_core/models/default.json",
        "nuclei_core/models/default.keras",
    ]
    assert not [name for name in names if name.split("/")[0] in ("ui", "tests", "bench", "pages")]


@pytest.mark.slow
def test_nuclei_command_helps_and_tells_its_version(installed):
    _, bin_folder, work = installed
    shown = run([bin_folder / "nuclei", "--help"], work)
    assert shown.returncode == 0, shown.stderr
    assert all(command in shown.stdout for command in ("train", "predict", "evaluate"))

    for command in ([bin_folder / "nuclei"], [bin_folder / "python", "-m", "nuclei_core"]):
        version = run([*command, "--version"], work)
        assert version.returncode == 0, version.stderr
        assert version.stdout.strip() == f"nuclei {nuclei_core.__version__}"


@pytest.mark.slow
def test_installed_predict_uses_the_packaged_default_model(installed):
    _, bin_folder, work = installed
    done = run([bin_folder / "nuclei", "predict", SAMPLE, "--out", work / "out"], work)
    assert done.returncode == 0, done.stderr
    venv = bin_folder.parent
    model_line = next(line for line in done.stdout.splitlines() if line.startswith("model: "))
    model = Path(model_line.removeprefix("model: ").split(" (")[0])
    assert model.name == "default.keras" and model.is_relative_to(venv), model_line
    for suffix in ("_mask.png", "_labels.png", "_nuclei.csv"):
        assert (work / "out" / f"{SAMPLE.stem}{suffix}").stat().st_size > 0
