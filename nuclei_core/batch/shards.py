"""Which files a folder run does: the image files of the inputs, distinct by name, in shards.

* :func:`image_files`: the image files of files and folders given on the command line;
* :func:`check_distinct_names`: two inputs that would write the same outputs are refused;
* :func:`parse_shard` / :func:`select_shard`: ``--shard I/N`` keeps a fixed 1/N of the
  inputs, chosen by a hash of each file's name, so the N jobs of a cluster array
  (SLURM, PBS) cover a collection exactly, without overlap, whatever order or
  folder spelling each job is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nuclei_core.errors import InputError


def image_files(inputs: Iterable) -> list[Path]:
    """The image files among ``inputs``: files as given, folders as their image files, sorted.

    Raises
    ------
    InputError
        No image file among the inputs.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "b.png").write_bytes(b""), (folder / "a.TIF").write_bytes(b"")
    >>> _ = (folder / "notes.txt").write_text("")
    >>> [path.name for path in image_files([folder, "extra.png"])]
    ['a.TIF', 'b.png', 'extra.png']
    """
    from nuclei_core.datasets.folders import IMAGE_SUFFIXES

    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(path)
    if not files:
        raise InputError("no image files among the inputs")
    return files


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (0-based) of ``count`` equal-by-hash parts of a collection."""

    index: int
    count: int

    def holds(self, name: str) -> bool:
        """Whether the file called ``name`` belongs to this part.

        Examples
        --------
        >>> [Shard(index, 3).holds("cells_007.tif") for index in range(3)].count(True)
        1
        """
        digest = hashlib.sha256(name.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index


def parse_shard(text) -> Shard:
    """The :class:`Shard` of ``--shard I/N``: ``0 <= I < N``.

    Raises
    ------
    InputError
        Not two whole numbers ``I/N`` with ``0 <= I < N``.

    Examples
    --------
    >>> parse_shard("2/8")
    Shard(index=2, count=8)
    >>> parse_shard("3/2")
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: --shard must be I/N with 0 <= I < N (e.g. 0/4 ... 3/4), got '3/2'
    """
    parts = str(text).strip().split("/")
    problem = InputError(f"--shard must be I/N with 0 <= I < N (e.g. 0/4 ... 3/4), got {text!r}")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise problem
    index, count = (int(part) for part in parts)
    if not 0 <= index < count:
        raise problem
    return Shard(index, count)


def select_shard(files: Iterable, shard: Shard | None) -> list[Path]:
    """The files of ``shard`` (all of them when ``None``), in the order given.

    A file's part depends on its name only (SHA-256 modulo ``N``): the parts
    ``0/N ... N-1/N`` of a collection are disjoint and together hold every file.

    Examples
    --------
    >>> files = [Path(f"img{index:03d}.png") for index in range(100)]
    >>> parts = [select_shard(files, Shard(index, 4)) for index in range(4)]
    >>> sorted(sum(parts, [])) == files
    True
    """
    files = [Path(path) for path in files]
    if shard is None:
        return files
    return [path for path in files if shard.holds(path.name)]


def check_distinct_names(files: Iterable) -> list[Path]:
    """The files, refused when two would write the same outputs (same name but suffix).

    Raises
    ------
    InputError
        Two inputs share a stem (``a/cells.png`` and ``b/cells.tif``): one's outputs
        would replace the other's, and a resumed run would take one for the other.

    Examples
    --------
    >>> check_distinct_names(["a/cells.png", "b/cells.tif"])
    Traceback (most recent call last):
    ...
    nuclei_core.errors.InputError: a/cells.png and b/cells.tif: both would write cells_* outputs; rename one or predict them into separate --out folders
    """  # noqa: E501
    seen: dict[str, Path] = {}
    files = [Path(path) for path in files]
    for path in files:
        earlier = seen.setdefault(path.stem.lower(), path)
        if earlier is not path:
            raise InputError(
                f"{earlier} and {path}: both would write {path.stem}_* outputs; rename one or "
                "predict them into separate --out folders"
            )
    return files
