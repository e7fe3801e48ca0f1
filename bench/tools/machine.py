"""The machine the benchmark runs on, and the load on it at the start and the end.

The CPU count, platform, GPUs and TensorFlow version come from
:func:`nuclei_core.registry.cards.machine_description` (what every model card records), the
SIMD flags from :func:`nuclei_core.network.precision.cpu_flags` (what picks the training
precision); this module adds what only the benchmark reports.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import psutil

SIMD_FLAGS = ("avx2", "avx512f", "amx_tile")
"""The CPU flags the report names: they decide the matmul kernels TensorFlow uses."""

BUSY_PERCENT = 20
"""A process using this share of one CPU or more is listed as load."""


def cpu_model_name(cpuinfo: str | None = None) -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``cpuinfo`` is that text), else ``""``.

    Examples
    --------
    >>> cpu_model_name("processor : 0\\nmodel name : Intel(R) Xeon(R) Processor\\n")
    'Intel(R) Xeon(R) Processor'
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return ""
    line = next((line for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    return line.partition(":")[2].strip()


def machine_info() -> dict:
    """CPU model, cores, SIMD flags, memory, GPUs and library versions."""
    import keras

    from nuclei_core.network.precision import cpu_flags
    from nuclei_core.registry.cards import machine_description

    description = machine_description()
    flags = cpu_flags()
    return {
        "cpu_model": cpu_model_name() or description["processor"],
        "cpu_count": description["cpu_cores"],
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "simd": [flag for flag in SIMD_FLAGS if flag in flags],
        "memory_bytes": psutil.virtual_memory().total,
        "gpus": description["gpus"],
        "platform": description["platform"],
        "python": platform.python_version(),
        "tensorflow": description["tensorflow"],
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def _command_text(words) -> str:
    """A process's command line, shortened for the report (``python`` for the interpreter).

    Examples
    --------
    >>> _command_text(["/usr/bin/python3.11", "-m", "nuclei_core", "train"])
    'python -m nuclei_core train'
    """
    words = list(words or [])
    if words and Path(words[0]).name.startswith("python"):
        words[0] = "python"
    return " ".join(words)[:100]


def load_snapshot() -> dict:
    """Load average and the other processes using CPU right now (sampled over 1 s)."""
    me = os.getpid()
    processes = [
        process for process in psutil.process_iter(["pid", "cmdline"]) if process.pid != me
    ]
    for process in processes:
        try:
            process.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(1.0)
    busy = []
    for process in processes:
        try:
            percent = process.cpu_percent(None)
        except psutil.Error:
            continue
        if percent >= BUSY_PERCENT:
            command = _command_text(process.info.get("cmdline"))
            busy.append({"cpu_percent": round(percent), "command": command})
    return {"loadavg": [round(value, 2) for value in os.getloadavg()], "busy_processes": busy}
