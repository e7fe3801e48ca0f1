"""The benchmark's progress log (on stderr) and the guard that keeps a failing row local."""

from __future__ import annotations

import sys
import time
import traceback


def log(message: str) -> None:
    """Print ``message`` to stderr with the time of day, at once."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def attempt(results: dict, key: str, function, *args, **kwargs) -> dict:
    """Run one measurement into ``results[key]``; record an error instead of losing the run.

    Examples
    --------
    >>> results = {}
    >>> attempt(results, "ratio", lambda: {"value": 1 / 0})["error"]
    'ZeroDivisionError: division by zero'
    """
    log(f"speed: {key}")
    try:
        results[key] = function(*args, **kwargs)
    except Exception as error:  # a benchmark row failing must not lose the others
        traceback.print_exc()
        results[key] = {"error": f"{type(error).__name__}: {error}"}
    return results[key]
