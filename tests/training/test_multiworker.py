"""Training on several machines: ``train --strategy multiworker`` with two local workers.

Two ``python -m nuclei_core train`` processes, each with its own ``TF_CONFIG`` naming
both on free 127.0.0.1 ports, train one short epoch together on a tiny generated
dataset (TensorFlow's ``MultiWorkerMirroredStrategy``: gradients all-reduced
between them).  Each is given its own ``--out`` so that the test sees who wrote
what: worker 0 (the chief) writes the model and its card; worker 1 saves into a
temporary folder that it removes, and leaves its ``--out`` untouched.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from nuclei_core.network.model import load_model

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 now."""
    sockets = []
    for _ in range(count):
        handle = socket.socket()
        handle.bind(("127.0.0.1", 0))
        sockets.append(handle)
    ports = [handle.getsockname()[1] for handle in sockets]
    for handle in sockets:
        handle.close()
    return ports


def start_worker(index: int, ports: list[int], data: Path, out: Path) -> subprocess.Popen:
    """One ``train`` process: worker ``index`` of the cluster on ``ports``."""
    tf_config = {
        "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
        "task": {"type": "worker", "index": index},
    }
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TF_CONFIG": json.dumps(tf_config),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "-1",  # both on the CPU, as on two CPU-only nodes
    }
    command = [
        *(sys.executable, "-m", "nuclei_core", "train", "--data", str(data)),
        *("--out", str(out), "--epochs", "1", "--batch-size", "4", "--crop", "32"),
        *("--depth", "2", "--filters", "4", "--val-fraction", "0.2"),
        *("--strategy", "multiworker", "--precision", "float32"),
    ]
    return subprocess.Popen(
        command,
        env=env,
        cwd=out.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_workers_train_one_epoch_and_only_the_chief_writes(tmp_path, flat_dataset_factory):
    data = flat_dataset_factory(tmp_path / "data", n_images=8)
    ports = free_ports(2)
    outs = [tmp_path / "chief", tmp_path / "worker1"]
    workers = [start_worker(index, ports, data, out) for index, out in enumerate(outs)]
    logs = []
    try:
        for worker in workers:
            logs.append(worker.communicate(timeout=TIMEOUT)[0])
    finally:
        for worker in workers:  # one worker that failed leaves the other waiting for it
            worker.kill()
    for worker, log in zip(workers, logs, strict=True):
        assert worker.returncode == 0, log[-3000:]

    chief, other = outs
    card = json.loads((chief / "model.json").read_text())
    assert card["strategy"] == {"name": "multiworker", "replicas": 2}
    assert card["epochs_run"] == 1 and len(card["history"]) == 1
    assert load_model(chief / "model.keras").output_shape == (None, None, None, 2)
    assert {"checkpoint_best.keras", "history.csv", "state.json"} <= {
        path.name for path in chief.iterdir()
    }
    assert not other.exists()  # worker 1 wrote its files elsewhere and removed them
    for log in logs:
        assert "strategy: MultiWorkerMirroredStrategy with 2 replica(s)" in log, log[-3000:]
