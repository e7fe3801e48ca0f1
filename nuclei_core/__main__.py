"""Entry point of ``python -m nuclei_core``."""

from nuclei_core.cli import main

raise SystemExit(main())
