"""Filtering, sorting and grouping kit's table of runs with polars.

A layer on top of kit.leaderboard.sheet: it takes the rows the leaderboard's reader returns (text, exactly as in the
file) and never writes. Every column stays text, so a person's cells are shown as they typed them; comparisons
and aggregates cast a column to numbers where its cells are numbers (`val_accuracy > 0.8`) and compare text
otherwise (`prompt == grader`). polars is imported only by the commands that analyse (~0.1 s), never at CLI start.

`--where` takes `COLUMN OP VALUE` with OP one of == != > >= < <= ~ (~: contains), several joined by `and`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from kit.errors import KitError

OPS = ("==", "!=", ">=", "<=", ">", "<", "~")
_CONDITION = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(==|!=|>=|<=|>|<|~|=)\s*(.*?)\s*$")
# Columns grouped results summarise by default: the scores, higher is better.
SCORES = ("val_accuracy", "public_score", "private_score")
AGGREGATES = ("mean", "best", "min", "count")


@dataclass(frozen=True)
class Condition:
    column: str
    op: str
    value: str


def parse_where(text: str) -> list[Condition]:
    """`val_accuracy > 0.8 and prompt == grader` as conditions; KitError naming the part that does not parse."""
    conditions = []
    for part in re.split(r"\s+and\s+", text.strip()):
        match = _CONDITION.match(part)
        if not match or not match.group(3):
            raise KitError(f"cannot read the condition {part.strip()!r}",
                           hint='write COLUMN OP VALUE with OP one of == != > >= < <= ~, e.g. --where "val_accuracy > 0.8"')
        column, op, value = match.groups()
        conditions.append(Condition(column, "==" if op == "=" else op, value.strip().strip("'\"")))
    return conditions


def frame(header: list[str], rows: list[dict[str, str]]) -> Any:
    """The rows as a polars DataFrame of text columns (the file's cells, unchanged), in the header's order."""
    import polars as pl

    return pl.DataFrame({c: [r.get(c, "") for r in rows] for c in header}, schema={c: pl.Utf8 for c in header})


def _number(column: str) -> Any:
    import polars as pl

    return pl.col(column).str.strip_chars().cast(pl.Float64, strict=False)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_columns(df: Any, columns: Iterable[str]) -> None:
    for column in columns:
        if column not in df.columns:
            raise KitError(f"no column {column!r} in leaderboard.csv", hint=f"columns: {', '.join(df.columns)}")


def _expression(cond: Condition) -> Any:
    import polars as pl

    if cond.op == "~":
        return pl.col(cond.column).str.contains(cond.value, literal=True)
    if _is_number(cond.value):
        left, right = _number(cond.column), float(cond.value)
    else:
        left, right = pl.col(cond.column), cond.value
    result = {"==": left == right, "!=": left != right, ">": left > right, ">=": left >= right,
              "<": left < right, "<=": left <= right}[cond.op]
    return result.fill_null(False)  # a blank or non-numeric cell matches no numeric condition


def where(df: Any, conditions: list[Condition]) -> Any:
    """The rows meeting every condition."""
    _check_columns(df, [c.column for c in conditions])
    for cond in conditions:
        df = df.filter(_expression(cond))
    return df


def sort(df: Any, column: str, ascending: bool = False) -> Any:
    """Rows by `column`, best (largest) first unless `ascending`; numbers as numbers, blanks last."""
    import polars as pl

    _check_columns(df, [column])
    numeric = df.select(_number(column).is_not_null().any()).item()
    key = _number(column) if numeric else pl.col(column).replace("", None)
    return df.with_columns(key.alias("__key")).sort("__key", descending=not ascending, nulls_last=True).drop("__key")


def group(df: Any, by: list[str], metrics: list[str] | None = None, aggregates: Iterable[str] = ("mean", "best")) -> Any:
    """One row per value of `by`: `runs`, then each metric's aggregates (mean, best = max, min, count of
    numbers), formatted as text like the table's other cells. Metrics default to the scores present."""
    import polars as pl

    _check_columns(df, by)
    metrics = list(metrics) if metrics else [m for m in SCORES if m in df.columns]
    _check_columns(df, metrics)
    unknown = [a for a in aggregates if a not in AGGREGATES]
    if unknown:
        raise KitError(f"unknown aggregate {unknown[0]!r}", hint=f"use {', '.join(AGGREGATES)}")
    exprs = [pl.len().alias("runs")]
    for m in metrics:
        for agg in aggregates:
            value = _number(m)
            exprs.append({"mean": value.mean(), "best": value.max(), "min": value.min(), "count": value.count()}[agg].alias(f"{m}_{agg}"))
    out = df.group_by(by, maintain_order=True).agg(exprs)
    return out.with_columns([pl.col(c).map_elements(_text, return_dtype=pl.Utf8) for c in out.columns if c not in by])


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def rows_of(df: Any) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows of text) for the table renderer and --json."""
    return list(df.columns), [{k: ("" if v is None else str(v)) for k, v in row.items()} for row in df.iter_rows(named=True)]


def analyse(header: list[str], rows: list[dict[str, str]], *, conditions: str = "", sort_by: str = "", ascending: bool = False,
            group_by: str = "", metrics: str = "", aggregates: str = "mean,best") -> tuple[list[str], list[dict[str, str]]]:
    """The leaderboard rows filtered, grouped and sorted as the CLI's options say; (header, rows) of text."""
    df = frame(header, rows)
    if conditions:
        df = where(df, parse_where(conditions))
    if group_by:
        keys = [k.strip() for k in group_by.split(",") if k.strip()]
        wanted = [m.strip() for m in metrics.split(",") if m.strip()]
        df = group(df, keys, wanted or None, [a.strip() for a in aggregates.split(",") if a.strip()])
    if sort_by:
        df = sort(df, sort_by, ascending)
    return rows_of(df)


def select_runs(header: list[str], rows: list[dict[str, str]], conditions: str, sort_by: str = "", top: int = 0) -> list[str]:
    """The run ids of the rows meeting `conditions`, best first by `sort_by`, at most `top` (0: all); pick, plots
    and ensemble choose runs this way, from the same table `kit leaderboard` shows."""
    df = frame(header, rows)
    if conditions:
        df = where(df, parse_where(conditions))
    if sort_by:
        df = sort(df, sort_by)
    chosen = df.get_column("run").to_list() if "run" in df.columns else []
    return chosen[:top] if top else chosen


def runs_where(ws: Any, conditions: str, sort_by: str = "", top: int = 0) -> list[str]:
    """select_runs on the workspace's leaderboard.csv, as the leaderboard's reader returns it."""
    from kit.leaderboard.sheet import load_table

    header, rows = load_table(ws)
    if not rows:
        raise KitError("leaderboard.csv has no runs to choose from", hint="kit push-kernel train --wait")
    return select_runs(header, rows, conditions, sort_by, top)
