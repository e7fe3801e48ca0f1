"""Training jobs: one training run at a time, in its own OS process.

The dashboard never trains inside a Streamlit script: :func:`start_training`
checks the parameters and the dataset, creates a registry run and starts
``python -m nuclei_core.jobs RUN_ID`` as a separate process in its own
session, so a page reload, a second browser tab or a restart of the app finds
the job still running.  The worker (:mod:`nuclei_core.jobs.worker`) trains
with :func:`nuclei_core.training.train`, adds every epoch to the registry and
keeps a small ``progress.json`` up to date; the app polls :func:`job_status`
and :func:`running_job`, and ends a job with :func:`stop_training` (clean stop
at the next batch) or :func:`kill_training` (signals, as a last resort).

Only one job runs at a time (:mod:`nuclei_core.jobs.lock`).  A run whose
process is gone is marked ``failed`` by :func:`mark_dead_jobs` (which
:func:`running_job` calls); a run that is still being started (no pid yet) is
never touched while the lock is held.  Where a job's files are:
:mod:`nuclei_core.jobs.paths`; starting and signalling the process:
:mod:`nuclei_core.jobs.processes`.

Examples
--------
The examples here use a ``registry`` on a temporary data folder; none starts a
process.

>>> run = registry.create_run("unet demo", "unet", {"epochs": 20}, "data/stage1_train")
>>> job_status(run.id, registry)["message"]
'waiting for the training process'
>>> stop_training(run.id, registry)
True
>>> running_job(registry) is None  # no process holds the lock: the run is dead
True
"""

from nuclei_core.jobs.control import (
    job_status,
    kill_training,
    mark_dead_jobs,
    running_job,
    start_training,
    stop_training,
)
from nuclei_core.jobs.paths import LOG_FILE_NAME, PROGRESS_FILE_NAME, lock_path, run_dir

__all__ = [
    "LOG_FILE_NAME",
    "PROGRESS_FILE_NAME",
    "job_status",
    "kill_training",
    "lock_path",
    "run_dir",
    "mark_dead_jobs",
    "running_job",
    "start_training",
    "stop_training",
]
