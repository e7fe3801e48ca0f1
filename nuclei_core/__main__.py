"""Entry point of ``python -m nuclei_core`` (the ``nuclei`` command's other name)."""

from nuclei_core.cli import main

raise SystemExit(main(prog="python -m nuclei_core"))
