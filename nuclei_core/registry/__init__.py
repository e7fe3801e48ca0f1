"""Run registry: training runs and their per-epoch metrics in one SQLite file.

The registry is what the dashboard's pages and the training process share:
the training process creates a run, moves it through its statuses and adds
one row of metrics per epoch, while the app lists runs, draws curves and picks
the active model.  It is a SQLite database (standard library ``sqlite3``) in
WAL mode, so readers never wait for the writer, and every operation opens its
own short-lived connection, so one :class:`Registry` object can be shared by
threads and several processes can use the same file at once.  Write
operations run in ``BEGIN IMMEDIATE`` transactions and wait up to 10 s for a
lock instead of failing with "database is locked".

:class:`Registry` is built in three layers, one module each:

=============  ===============================================================
module         what it holds
=============  ===============================================================
``database``   the SQLite file: schema and migrations, connections, the one
               transaction helper, rows as :class:`Run` records
``runs``       the ``runs`` table: add, find, list, rename, delete, statuses
(this one)     epochs, the active model, dead runs, models added from their
               card (read by :func:`nuclei_core.registry.cards.parse_card`)
=============  ===============================================================

Examples
--------
The examples use ``registry``, a registry in a temporary folder (see the
:class:`Registry` example for how to open one).

>>> run = registry.create_run("baseline", "unet", {"epochs": 2}, "stage1_train")
>>> registry.add_epoch(run.id, 1, {"loss": 0.4, "val_dice": 0.71})
>>> registry.epochs(run.id)
[{'epoch': 1, 'loss': 0.4, 'val_dice': 0.71}]
"""

from nuclei_core.registry.database import (
    ACTIVE_MODEL_KEY,
    ACTIVE_STATUSES,
    ENDED_STATUSES,
    REGISTRY_FILE_NAME,
    SCHEMA_VERSION,
    STATUSES,
    Run,
    default_registry_path,
)
from nuclei_core.registry.store import Registry, pid_alive, registry_or_default

__all__ = [
    "ACTIVE_MODEL_KEY",
    "ACTIVE_STATUSES",
    "ENDED_STATUSES",
    "REGISTRY_FILE_NAME",
    "SCHEMA_VERSION",
    "STATUSES",
    "Registry",
    "Run",
    "default_registry_path",
    "pid_alive",
    "registry_or_default",
]
