"""Entry point of the training worker: ``python -m nuclei_core.jobs RUN_ID [--registry FILE]``."""

from nuclei_core.jobs.worker import main

if __name__ == "__main__":
    raise SystemExit(main())
