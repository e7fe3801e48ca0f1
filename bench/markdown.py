"""The markdown pieces every section of ``bench/RESULTS.md`` is made of: figures and tables."""

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
