"""Render leaderboard rows as a terminal table: the columns that tell runs apart, within a width, best scores highlighted.

Which columns show, by default: kit's key columns (ALWAYS), then every column a person added (even one with the
same value in every row: they added it to see it), then kit's columns whose values differ between the rows,
settings before bookkeeping (LATE); a column the same in every row tells no run apart and is left out. Columns are
dropped from the end of that order until the table fits `width` characters (cells cut at CELL characters), and
`choose_columns` says which were left out and why, so the command can name them and the flag that shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

# Always shown (unless blank in every row, as private_score is until the competition ends); other kit columns only
# when their values differ between rows.
ALWAYS = ("run", "kernel", "status", "val_accuracy", "public_score", "private_score", "final")
# kit's bookkeeping columns: shown after the settings that differ, first to go when the table is too wide.
LATE = ("created", "backend", "val_rows", "val_ci95", "submission_ref", "submitted", "public_ci95", "gpu", "gpu_minutes",
        "plan_engine", "plan_dtype", "plan_packing", "plan_compile", "plan_checkpointing", "sweep", "lineage")
# The score columns of the binary is_correct task, higher better in each; the best value is highlighted.
SCORE_COLUMNS = ("val_accuracy", "public_score", "private_score")
ACCURACY_SCORES = {column: True for column in SCORE_COLUMNS}
WIDTH = 120  # the default width of `kit runs`: readable in a usual terminal, a pull request, a log
CELL = 28  # the longest cell shown in a width-limited table; longer ones are cut with "~"
GAP = 2


@dataclass
class Columns:
    """The columns to show, and those left out: the same in every row (kit's), or past the width."""

    shown: list[str]
    same: list[str] = field(default_factory=list)
    too_wide: list[str] = field(default_factory=list)


def kit_owned() -> set[str]:
    """kit's columns: the schema's and the run settings' (a setting gets a column once it differs between runs);
    any other column is a person's."""
    from kit.leaderboard.sheet import KIT_COLUMNS
    from kit.workspace.kernel_config import KERNEL_CONFIGS, field_specs

    return set(KIT_COLUMNS).union(*(field_specs(cls) for cls in KERNEL_CONFIGS.values()))


def score_directions(task) -> dict[str, bool]:
    """The score columns of a table of `task`'s runs, each with whether larger is better: val_accuracy, the task's
    val_<metric>, and the public and private scores, which the competition computes with the task's metric."""
    better = task.higher_is_better
    return {**ACCURACY_SCORES, task.metric_column(): better, "public_score": better, "private_score": better}


def choose_columns(header: list[str], rows: list[dict[str, str]], *, all_columns: bool = False, width: int | None = WIDTH,
                   scores: Mapping[str, bool] = ACCURACY_SCORES) -> Columns:
    """The columns to show within `width` (see the module's docstring); `scores` are always shown, as ALWAYS is."""
    if all_columns:
        return Columns(list(header))
    owned = kit_owned() | set(scores)
    differs = {c for c in header if len({r.get(c, "") for r in rows}) > 1}
    person = [c for c in header if c not in owned and any(r.get(c, "").strip() for r in rows)]
    first = [c for c in header if (c in ALWAYS or c in scores) and (c == "run" or any(r.get(c, "").strip() for r in rows))]  # not a blank one
    middle = [c for c in header if c in owned and c not in ALWAYS and c not in LATE and c in differs]
    late = [c for c in header if c in LATE and c in differs]
    order = first + person + middle + late
    same = [c for c in header if c not in order]
    chosen: list[str] = []
    used = 0
    too_wide = []
    for c in order:
        need = _width(c, rows, True) + (c in scores) + (GAP if chosen else 0)  # + the best value's "*"
        if width is None or used + need <= width or c in first:
            chosen.append(c)
            used += need
        else:
            too_wide.append(c)
    return Columns([c for c in header if c in chosen], same=same, too_wide=too_wide)


def _cut(text: str, limit: bool) -> str:
    return text[: CELL - 1] + "~" if limit and len(text) > CELL else text


def _width(column: str, rows: list[dict[str, str]], limit: bool) -> int:
    return max(len(column), *(len(_cut(r.get(column, ""), limit)) for r in rows)) if rows else len(column)


def _best(rows: list[dict[str, str]], column: str, larger: bool) -> str | None:
    """The column's best cell as written: its largest number, or its smallest where `larger` is not better."""
    values = []
    for r in rows:
        try:
            values.append((float(r.get(column, "")), r.get(column, "")))
        except ValueError:
            pass
    return (max if larger else min)(values)[1] if values else None


def render_table(header: list[str], rows: list[dict[str, str]], all_columns: bool = False, color: bool = False,
                 columns: list[str] | None = None, scores: Mapping[str, bool] = ACCURACY_SCORES) -> str:
    """A fixed-width table of `rows` (of `columns`, else those choose_columns picks); the best value of each of the
    `scores` columns (larger, or smaller where its value says larger is not better) in bold green with `color`, else
    starred. Cells are cut to fit unless every column is asked for."""
    limit = not all_columns
    columns = columns if columns is not None else choose_columns(header, rows, all_columns=all_columns, scores=scores).shown
    best = {c: _best(rows, c, scores[c]) for c in columns if c in scores}
    starred = not color and len(rows) > 1
    widths = {c: _width(c, rows, limit) + (starred and best.get(c) is not None) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip(), "  ".join("-" * widths[c] for c in columns)]
    for r in rows:
        cells = []
        for c in columns:
            text = _cut(r.get(c, ""), limit)
            cell = text.ljust(widths[c])
            if color and best.get(c) is not None and r.get(c) == best[c]:
                cell = f"\033[1;32m{cell}\033[0m"
            elif starred and best.get(c) is not None and r.get(c) == best[c]:
                cell = (text + "*").ljust(widths[c])
            cells.append(cell)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def left_out(columns: Columns, width: int) -> str:
    """The line naming the columns not shown and the flag that shows them ("" when none was left out)."""
    parts = []
    if columns.too_wide:
        parts.append(f"to fit {width} characters: {', '.join(columns.too_wide)}")
    if columns.same:
        parts.append(f"{len(columns.same)} of kit's columns the same in every run")
    return f"not shown: {'; '.join(parts)} (--all-columns shows every column)" if parts else ""
