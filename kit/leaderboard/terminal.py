"""Render leaderboard rows as a terminal table: the columns that tell runs apart, best scores highlighted."""

from __future__ import annotations

# Always shown; other kit columns only when their values differ between rows.
ALWAYS = ("run", "kernel", "status", "val_accuracy", "public_score", "private_score", "final")
# Higher is better in these; the best value is highlighted.
SCORE_COLUMNS = ("val_accuracy", "public_score", "private_score")


def _visible(header: list[str], rows: list[dict[str, str]], all_columns: bool) -> list[str]:
    if all_columns:
        return header
    return [c for c in header if c in ALWAYS or len({r.get(c, "") for r in rows}) > 1]


def _best(rows: list[dict[str, str]], column: str) -> str | None:
    values = []
    for r in rows:
        try:
            values.append((float(r.get(column, "")), r.get(column, "")))
        except ValueError:
            pass
    return max(values)[1] if values else None


def render_table(header: list[str], rows: list[dict[str, str]], all_columns: bool = False, color: bool = False) -> str:
    """A fixed-width table of `rows`; with `color`, the best value of each score column in bold green."""
    columns = _visible(header, rows, all_columns)
    best = {c: _best(rows, c) for c in columns if c in SCORE_COLUMNS}
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    for r in rows:
        cells = []
        for c in columns:
            cell = r.get(c, "").ljust(widths[c])
            if color and best.get(c) is not None and r.get(c) == best[c]:
                cell = f"\033[1;32m{cell}\033[0m"
            elif not color and best.get(c) is not None and r.get(c) == best[c] and len(rows) > 1:
                cell = (r.get(c, "") + "*").ljust(widths[c])
            cells.append(cell)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
