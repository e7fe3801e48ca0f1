"""The markdown pieces every section of ``bench/results/RESULTS.md`` is made of: figures, tables."""

from __future__ import annotations


def number(value, digits: int = 3) -> str:
    """A figure as the tables show it: floats rounded, None as ``-``.

    Examples
    --------
    >>> number(0.12345), number(None), number(7)
    ('0.123', '-', '7')
    """
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(header, rows) -> list[str]:
    """A markdown table.

    Examples
    --------
    >>> print("\\n".join(table(["a", "b"], [[1, 2]])))
    | a | b |
    |---|---|
    | 1 | 2 |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def replace_section(markdown: str, section: list[str]) -> str:
    """``markdown`` with the section headed ``section[0]`` replaced by ``section`` (or put
    before the Notes when it has none yet); the section ends at the next ``## `` heading.

    Examples
    --------
    >>> text = "# R\\n\\n## Speed\\n\\nx\\n\\n## Notes\\n\\ny\\n"
    >>> once = replace_section(text, ["## Dask", "", "z", ""])
    >>> once.split("\\n")[4:9]
    ['x', '', '## Dask', '', 'z']
    >>> replace_section(once, ["## Dask", "", "w", ""]).count("## Dask")
    1
    """
    lines = markdown.split("\n")
    heading = section[0]
    if heading in lines:
        start = lines.index(heading)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
    else:
        start = end = lines.index("## Notes") if "## Notes" in lines else len(lines)
    return "\n".join(lines[:start] + section + lines[end:])


def save_report(out_dir, stem: str, report: dict, text: str) -> None:
    """Write ``report`` as ``stem.json`` and its table ``text`` as ``stem.md`` in ``out_dir``.

    Both are written atomically (:mod:`nuclei_core.storage`), so a run stopped midway
    leaves the last complete pair.
    """
    from pathlib import Path

    from nuclei_core.storage import atomic_write_json, atomic_write_text, ensure_dir

    out_dir = ensure_dir(Path(out_dir))
    atomic_write_json(out_dir / f"{stem}.json", report)
    atomic_write_text(out_dir / f"{stem}.md", text)
