"""Several images in flight at once: an ordered, bounded map over a small thread pool.

A folder run (:func:`nuclei_core.batch.collection.predict_files`) spends its time in
reading and decoding, the network pass, post-processing, measuring and writing.  The
network already uses every core, but the other steps run on one, and most of them
release the GIL (image decoding, OpenVINO and TensorFlow, scipy, scikit-image, the
Numba seed kernel, file writes): with two images in flight, one is in the network
while the other is read, post-processed or written.

:func:`ordered_map` is that overlap as a generator: it calls ``function`` on the items
in up to ``in_flight`` threads, never has more than ``in_flight`` items started and not
yet yielded (so memory stays that of ``in_flight`` images, whatever the folder's size),
and yields the results in the items' order.  ``in_flight=1`` is the plain loop, in this
thread.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from nuclei_core.errors import InputError

__all__ = ["DEFAULT_IN_FLIGHT", "ordered_map"]

Item = TypeVar("Item")
Result = TypeVar("Result")

DEFAULT_IN_FLIGHT = max(1, min(2, os.cpu_count() or 1))
"""Images a folder run keeps in flight: two where there are two cores or more (measured in
``bench/cluster.py``: a third image in flight only shares the same cores)."""


def ordered_map(
    function: Callable[[Item], Result], items: Iterable[Item], in_flight: int = DEFAULT_IN_FLIGHT
) -> Iterator[Result]:
    """``function(item)`` for every item, up to ``in_flight`` at once, yielded in order.

    Items are drawn from ``items`` only as results are taken, so a generator of items
    (or of files to read) is never read ahead by more than ``in_flight``.  ``function``
    should report failures in its result: an exception it raises is raised here, when
    its item's turn comes, and the items after it are not started.  Closing the
    generator early waits for the items already started.

    Parameters
    ----------
    function : callable
        Called once per item, in a worker thread (in this thread when ``in_flight`` is 1).
    items : iterable
        The inputs, in the order of the results.
    in_flight : int
        Most items started and not yet yielded; at least 1.

    Examples
    --------
    >>> list(ordered_map(lambda number: number * number, range(6), in_flight=3))
    [0, 1, 4, 9, 16, 25]
    >>> list(ordered_map(str.upper, ["a", "b"], in_flight=1))
    ['A', 'B']
    >>> list(ordered_map(str.upper, ["a"], in_flight=0))
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: in_flight must be a whole number of at least 1, got 0
    """
    if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1:
        raise InputError(f"in_flight must be a whole number of at least 1, got {in_flight!r}")
    if in_flight == 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="nuclei") as pool:
        pending: deque = deque()
        try:
            for item in items:
                pending.append(pool.submit(function, item))
                if len(pending) >= in_flight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
