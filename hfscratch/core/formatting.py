"""Numbers and tables as the steps print them: one way to write a count, a price, a duration or a table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def human(x: float, unit: str = "") -> str:
    """1.2e9 -> '1.2B', 2.09e12 -> '2.09T' (3 significant figures, K/M/B/T suffixes)."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}{unit}"
    return f"{x:.3g}{unit}"


def dollars(x: float) -> str:
    """Whole dollars with separators below a million, millions above: '$27,464', '$2.80M'."""
    return f"${x:,.0f}" if x < 1e6 else f"${x / 1e6:,.2f}M"


def num(x: float) -> str:
    """3 significant figures below 1,000, thousands separators above: 0.16, 53.3, 1,230."""
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def sci(x: float) -> str:
    """1.2345e20 -> '1.23e20'."""
    return f"{x:.3g}".replace("e+", "e")


def duration(hours: float) -> str:
    """'5.3 h' up to two days, '12.5 days' beyond."""
    return f"{hours:.3g} h" if hours < 48 else f"{hours / 24:,.3g} days"


def format_table(
    rows: Sequence[Sequence[Any]], headers: Sequence[str], align: str | None = None, markdown: bool = False
) -> str:
    """A table of `rows` under `headers`: plain text for a terminal, or a Markdown (GitHub) table.

    `align` has one letter per column, l or r (default: the first column left, the rest right).
    """
    align = align or "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers) or set(align) - {"l", "r"}:
        raise ValueError(f"align must have one letter l or r per column ({len(headers)}), got {align!r}")
    cells = [list(map(str, headers))] + [list(map(str, row)) for row in rows]
    if any(len(row) != len(headers) for row in cells):
        raise ValueError(f"every row must have {len(headers)} cells, like the headers {list(headers)}")
    if markdown:
        rule = ["---:" if a == "r" else "---" for a in align]
        escaped = [[c.replace("|", "\\|") for c in row] for row in cells]
        return "\n".join("| " + " | ".join(row) + " |" for row in [escaped[0], rule, *escaped[1:]])
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
