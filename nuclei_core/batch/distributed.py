"""The Dask engine of batch prediction: images as ``dask.distributed`` tasks on many workers.

``python -m nuclei_core predict ... --dask`` runs here, on a ``LocalCluster`` of this
machine (``--workers N`` processes, one thread each) or, with ``--dask tcp://host:8786``,
on the workers of an existing scheduler (a cluster whose nodes share the input and
output folders):

* :func:`connect` opens the :class:`~dask.distributed.Client` (and the local cluster);
  :func:`load_on_workers` loads the model on every worker before the images are sent;
* :func:`predict_files` submits one task per image; each task loads the model once per
  worker process (:func:`worker_model`, a cache keyed by :class:`ModelSource`), reads
  its image, segments it and writes its outputs atomically into the shared output
  folder (:func:`nuclei_core.batch.collection.predict_file`), and returns only a small
  :class:`~nuclei_core.batch.collection.FileResult` (count, seconds), gathered as the tasks
  finish.

Only this module imports Dask, in the functions that need it (:func:`connect`,
:func:`predict_files`): importing ``nuclei_core``, or this module, does not.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from nuclei_core.batch.collection import FileJob, FileResult, predict_file
from nuclei_core.checks import check_int
from nuclei_core.errors import InputError, NucleiError

__all__ = [
    "LOCAL",
    "ModelSource",
    "check_address",
    "connect",
    "load_on_workers",
    "model_loads",
    "predict_files",
    "worker_model",
]

LOCAL = "local"
"""The address that asks for a ``LocalCluster`` on this machine."""
_ADDRESS = re.compile(r"^(?:[a-z]+://)?[\w.\-]+:\d+$|^[a-z]+://\S+$")
_MODELS: dict = {}  # in each worker process: ModelSource -> loaded model
_LOADS: dict = {}  # ModelSource -> how many times this process loaded it
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelSource:
    """Where a worker finds the model (a path every worker can read) and how to run it.

    Examples
    --------
    >>> ModelSource("models/default.keras").backend
    'auto'
    """

    path: str
    backend: str = "auto"
    precision: str = "auto"

    def load(self):
        """The model on its backend (:func:`nuclei_core.network.runtime.load_inference_model`)."""
        from nuclei_core.network.runtime import load_inference_model

        return load_inference_model(self.path, self.backend, self.precision)


def worker_model(source: ModelSource):
    """The model of ``source``, loaded on the first call in this process and kept.

    Tasks call it on the worker that runs them: a worker loads each model once,
    however many images it segments (threads of one worker wait for one load).
    """
    with _LOCK:
        if source not in _MODELS:
            _MODELS[source] = source.load()
            _LOADS[source] = _LOADS.get(source, 0) + 1
        return _MODELS[source]


def _describe_model(source: ModelSource) -> str:
    """The runtime of this worker's model (loaded now if it was not)."""
    from nuclei_core.network.runtime import describe

    return describe(worker_model(source))


def _export_once(source: ModelSource) -> None:
    """Write the model's OpenVINO export here, before the workers load the model: each would
    otherwise write it at the same time (:func:`nuclei_core.network.runtime.exported_model`)."""
    from nuclei_core.network.runtime import PACKAGE_SUFFIX, exported_model, resolve_backend

    if str(source.path).lower().endswith(PACKAGE_SUFFIX):
        return  # a package from elsewhere compiles its ONNX weights in memory
    if resolve_backend(source.backend) == "openvino" and Path(source.path).is_file():
        exported_model(source.path)


def load_on_workers(client, source: ModelSource) -> dict[str, str]:
    """Load the model on every worker of ``client`` now: ``{worker address: runtime}``.

    A model that a worker cannot load raises its error here, before any task runs
    (a worker that joins later loads the model with its first task).
    """
    _export_once(source)
    return client.run(_describe_model, source)


def model_loads() -> int:
    """How many times this process has loaded a model (``client.run(model_loads)`` asks
    every worker).

    Examples
    --------
    >>> model_loads() >= 0
    True
    """
    return sum(_LOADS.values())


def check_address(text: str) -> str:
    """``--dask``'s value: :data:`LOCAL` or a scheduler address (``tcp://host:8786``).

    Raises
    ------
    InputError
        Anything else (a folder given after ``--dask`` is taken for its address).

    Examples
    --------
    >>> check_address("tcp://10.0.0.5:8786"), check_address("local")
    ('tcp://10.0.0.5:8786', 'local')
    >>> check_address("images/")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: --dask takes 'local' or a scheduler address such as tcp://host:8786, got 'images/' (put --dask after the inputs)
    """  # noqa: E501
    text = str(text).strip()
    if text != LOCAL and not _ADDRESS.match(text):
        raise InputError(
            "--dask takes 'local' or a scheduler address such as tcp://host:8786, "
            f"got {text!r} (put --dask after the inputs)"
        )
    return text


@contextlib.contextmanager
def connect(address: str = LOCAL, workers: int = 2, timeout: str = "20s") -> Iterator:
    """A Dask client: of a new ``LocalCluster`` (``workers`` processes of one thread) when
    ``address`` is :data:`LOCAL`, else of the scheduler at ``address`` (given ``timeout``
    to answer); closed on exit.

    Raises
    ------
    NucleiError
        The scheduler cannot be reached (one line naming the address).
    """
    from dask.distributed import Client, LocalCluster

    address = check_address(address)
    if address == LOCAL:
        workers = check_int(workers, "workers", minimum=1)
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as error:
        raise NucleiError(f"{address}: cannot reach the Dask scheduler ({error})") from None
    with client:
        _check_environment(client, address)
        yield client


def _check_environment(client, address: str) -> None:
    """Refuse a cluster whose scheduler or workers cannot import ``nuclei_core``: the
    scheduler unpickles every task, and the workers run them."""
    missing = [] if client.run_on_scheduler(find_spec, "nuclei_core") else ["the scheduler"]
    workers = client.run(find_spec, "nuclei_core")
    missing += [f"worker {worker}" for worker, spec in sorted(workers.items()) if spec is None]
    if missing:
        raise NucleiError(
            f"{address}: {', '.join(missing)} cannot import nuclei_core; install this package "
            "(or set PYTHONPATH to it) where the scheduler and the workers run"
        )


def _segment_task(path: str, source: ModelSource, job: FileJob) -> FileResult:
    """One task: the worker's model, one image read, segmented and written."""
    return predict_file(worker_model(source), path, job)


def predict_files(
    client, source: ModelSource, files: Iterable, job: FileJob
) -> Iterator[FileResult]:
    """Segment ``files`` on the client's workers, one task per image; yield the results as
    the tasks finish (not in the order of ``files``).

    Every worker writes its images' outputs into ``job.out`` (a folder all of them and
    the client share).  A task that fails outright (a worker lost, an unexpected
    error) gives a ``failed`` result naming the file; the others go on.

    Parameters
    ----------
    client : dask.distributed.Client
        From :func:`connect`.
    source : ModelSource
        The model, at a path every worker can read.
    files : iterable of path
        Image files, at paths every worker can read.
    job : FileJob
        Output folder, formats and segmentation options.
    """
    from dask.distributed import as_completed

    _export_once(source)
    paths = [str(Path(path)) for path in files]
    futures = client.map(_segment_task, paths, source=source, job=job, pure=False)
    by_future = dict(zip(futures, paths, strict=True))
    for future in as_completed(futures):
        path = by_future.pop(future)
        try:
            result = future.result()
        except Exception as error:  # noqa: BLE001 - a lost worker must not end the batch
            text = " ".join(str(error).split())
            message = f"{path}: {type(error).__name__}{': ' + text if text else ''}"
            result = FileResult(Path(path), "failed", message=message)
        future.release()
        yield result
