"""The annotator's browser code checked outside a browser: its node tests
(``annotator_labels.test.mjs``, the pure functions of ``frontend/labels.js``) and ESLint over
``ui/annotator/frontend`` and those tests. Skipped, saying what to install, without node or
eslint (``.ci/run`` installs eslint with npm)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
FRONTEND = PROJECT / "ui" / "annotator" / "frontend"
NODE_TESTS = Path(__file__).with_name("annotator_labels.test.mjs")


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=120)


def test_the_pure_functions_pass_their_node_tests():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs)")
    result = run([node, "--test", str(NODE_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pass 5" in result.stdout and "# fail 0" in result.stdout


def test_eslint_finds_nothing_in_the_annotator():
    eslint = shutil.which("eslint")
    if eslint is None:
        pytest.skip("eslint is not installed (npm install -g eslint@10)")
    config = FRONTEND / "eslint.config.js"
    result = run([eslint, "--config", str(config), str(FRONTEND), str(NODE_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_component_is_the_two_files_joined_with_one_default_export():
    """``labels.js`` comes first and exports no default; ``annotator.js`` declares, as ESLint
    globals, exactly the functions of it that it calls."""
    labels = (FRONTEND / "labels.js").read_text(encoding="utf-8")
    annotator = (FRONTEND / "annotator.js").read_text(encoding="utf-8")
    assert "export default" not in labels and annotator.count("export default") == 1
    exported = set(re.findall(r"^export function (\w+)\(", labels, re.MULTILINE))
    called = {name for name in exported if re.search(rf"\b{name}\(", annotator)}
    declared = re.search(r"/\* global (.+?) --", annotator).group(1)
    assert called == {name.strip() for name in declared.split(",")}
