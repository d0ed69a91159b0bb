"""Filtering, sorting and grouping kit's table of runs with polars.

A layer on top of kit.leaderboard.sheet: it takes the rows the leaderboard's reader returns (text, exactly as in the
file) and never writes. Every column stays text, so a person's cells are shown as they typed them; filters,
sorts and aggregates use a column as numbers where its cells are numbers (`val_accuracy > 0.8`) and as text
otherwise (`prompt = 'grader'`). polars is imported only by the commands that analyse (~0.1 s), never at CLI start.

`--where` is a SQL expression, read by polars (`pl.sql_expr`): `val_accuracy > 0.8 AND prompt = 'grader'`, with OR,
NOT, parentheses, IN, BETWEEN, LIKE, IS NULL. A column whose cells are all numbers (blanks and n/a aside) is compared as
numbers, any other as text; a blank cell is NULL. What does not parse, names no column or compares text with a
number is refused in one line with the fix, never taken as something else.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Iterable, Mapping

from kit.errors import KitError
from kit.leaderboard.terminal import ACCURACY_SCORES, score_directions

AGGREGATES = ("mean", "best", "min", "count")


def frame(header: list[str], rows: list[dict[str, str]]) -> Any:
    """The rows as a polars DataFrame of text columns (the file's cells, unchanged), in the header's order."""
    import polars as pl

    return pl.DataFrame({c: [r.get(c, "") for r in rows] for c in header}, schema={c: pl.Utf8 for c in header})


def _number(column: str) -> Any:
    import polars as pl

    return pl.col(column).str.strip_chars().cast(pl.Float64, strict=False)


def _check_columns(df: Any, columns: Iterable[str]) -> None:
    for column in columns:
        if column not in df.columns:
            raise KitError(f"no column {column!r} in leaderboard.csv{_did_you_mean(column, df.columns)}", hint=f"columns: {', '.join(df.columns)}")


def _did_you_mean(name: str, columns: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(columns), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# Cells that say "no value" in a column of numbers: NULL like a blank, so the column still compares as numbers.
MISSING = frozenset({"", "n/a", "na", "none", "null", "-", "?"})
SYNTAX = ("SQL, as polars reads it: val_accuracy > 0.8 AND prompt = 'grader' (text in single quotes; OR, NOT, "
          "IN (8, 16), BETWEEN, LIKE '%x%', notes IS NULL; a column named like \"val_map@3\" in double quotes)")


def typed(df: Any) -> Any:
    """The text frame with each column of numbers as numbers and every blank (or n/a) cell NULL, for filtering."""
    import polars as pl

    columns = []
    for name in df.columns:
        cells = df.get_column(name).str.strip_chars()
        numbers = cells.cast(pl.Float64, strict=False)
        missing = cells.str.to_lowercase().is_in(list(MISSING))
        if numbers.is_not_null().any() and (numbers.is_not_null() | missing).all():
            columns.append(numbers.alias(name))
        else:
            columns.append(cells.replace("", None).alias(name))
    return pl.DataFrame(columns)


def where(df: Any, expression: str) -> Any:
    """The rows of the text frame `df` for which the SQL `expression` is true (NULL counts as false); a KitError with
    the fix for an expression that does not parse, names an unknown column or compares text with a number."""
    import polars as pl

    text = expression.strip()
    if not text:
        return df
    unquoted = re.sub(r"'[^']*'|\"[^\"]*\"", "''", text)
    for wrong, right in (("&&", "AND"), ("||", "OR")):  # C's and and or: SQL has no && and reads || as joining text
        if wrong in unquoted:
            raise KitError(f"cannot read the filter {text!r}: {wrong!r} is not SQL", hint=f"write {right}: {SYNTAX}")
    try:
        expr = pl.sql_expr(text)
        mask = typed(df).select(expr.alias("__keep")).to_series()
    except pl.exceptions.ColumnNotFoundError as exc:
        raise _unknown_column(df, text, str(exc)) from None
    except (pl.exceptions.SQLInterfaceError, pl.exceptions.SQLSyntaxError) as exc:
        raise KitError(f"cannot read the filter {text!r}: {_first_line(exc)}", hint=f"write {SYNTAX}") from None
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError, pl.exceptions.SchemaError) as exc:
        raise _type_mismatch(df, text, str(exc)) from None
    if mask.dtype != pl.Boolean:
        raise KitError(f"the filter {text!r} is not a condition: it gives {mask.dtype} values, not true or false",
                       hint=f"compare it with something, e.g. {text} > 0.8; {SYNTAX}")
    return df.filter(mask.fill_null(False))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _unknown_column(df: Any, text: str, message: str) -> KitError:
    match = re.search(r'unable to find column "([^"]*)"', message)
    name = match.group(1) if match else ""
    if not name:
        return KitError(f"cannot read the filter {text!r}: {message.splitlines()[0]}", hint=f"columns: {', '.join(df.columns)}")
    close = _did_you_mean(name, df.columns)
    if close:
        hint = f"columns: {', '.join(df.columns)}"
    else:  # most often a text value written without quotes: prompt = grader
        hint = f"a text value goes in single quotes ('{name}'); a column named {name!r} does not exist (columns: {', '.join(df.columns)})"
    return KitError(f"no column {name!r} in leaderboard.csv{close}, in the filter {text!r}", hint=hint)


def _type_mismatch(df: Any, text: str, message: str) -> KitError:
    names = [c for c in re.findall(r'col\("([^"]*)"\)', message) if c in df.columns]
    column = names[0] if names else ""
    if "compare string with numeric" in message and column:
        holds = "numbers" if typed(df.select(column)).dtypes[0].is_numeric() else "text"
        fix = ("compare it with a number, without quotes" if holds == "numbers"
               else f"quote the value as text ('...'), or filter a column of numbers")
        return KitError(f"the filter {text!r} compares {column!r}, a column of {holds}, with a "
                        f"{'text value' if holds == 'numbers' else 'number'}", hint=fix)
    return KitError(f"cannot apply the filter {text!r}: {message.strip().splitlines()[0]}", hint=f"write {SYNTAX}")


def sort(df: Any, column: str, ascending: bool = False) -> Any:
    """Rows by `column`, largest first unless `ascending`; numbers as numbers, blanks last; ties in the table's order
    (the earlier run first), so that --top chooses the same runs every time."""
    import polars as pl

    _check_columns(df, [column])
    numeric = df.select(_number(column).is_not_null().any()).item()
    key = _number(column) if numeric else pl.col(column).replace("", None)
    return df.with_columns(key.alias("__key")).sort("__key", descending=not ascending, nulls_last=True, maintain_order=True).drop("__key")


def group(df: Any, by: list[str], metrics: list[str] | None = None, aggregates: Iterable[str] = ("mean", "best"),
          scores: Mapping[str, bool] = ACCURACY_SCORES) -> Any:
    """One row per value of `by`: `runs`, then each metric's aggregates (mean, best, min, count of numbers),
    formatted as text like the table's other cells. Metrics default to the `scores` present; best is a column's
    max, or its min where `scores` says larger is not better (a log loss)."""
    import polars as pl

    _check_columns(df, by)
    metrics = list(metrics) if metrics else [m for m in scores if m in df.columns]
    _check_columns(df, metrics)
    unknown = [a for a in aggregates if a not in AGGREGATES]
    if unknown:
        raise KitError(f"unknown aggregate {unknown[0]!r}", hint=f"use {', '.join(AGGREGATES)}")
    exprs = [pl.len().alias("runs")]
    for m in metrics:
        for agg in aggregates:
            value = _number(m)
            best = value.max() if scores.get(m, True) else value.min()
            exprs.append({"mean": value.mean(), "best": best, "min": value.min(), "count": value.count()}[agg].alias(f"{m}_{agg}"))
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
            group_by: str = "", metrics: str = "", aggregates: str = "mean,best",
            scores: Mapping[str, bool] = ACCURACY_SCORES) -> tuple[list[str], list[dict[str, str]]]:
    """The leaderboard rows filtered, grouped and sorted as the CLI's options say (`scores`: the score columns and
    whether larger is better in each); (header, rows) of text."""
    df = frame(header, rows)
    if conditions:
        df = where(df, conditions)
    if group_by:
        keys = [k.strip() for k in group_by.split(",") if k.strip()]
        wanted = [m.strip() for m in metrics.split(",") if m.strip()]
        df = group(df, keys, wanted or None, [a.strip() for a in aggregates.split(",") if a.strip()], scores)
    if sort_by:
        df = sort(df, sort_by, ascending)
    return rows_of(df)


def select_runs(header: list[str], rows: list[dict[str, str]], conditions: str, sort_by: str = "", top: int = 0,
                ascending: bool = False) -> list[str]:
    """The run ids of the rows meeting `conditions`, best first by `sort_by` (largest first; smallest with
    `ascending`), at most `top` (0: all); pick, plots and ensemble choose runs this way, from the same table
    `kit runs` shows."""
    df = frame(header, rows)
    if conditions:
        df = where(df, conditions)
    if sort_by:
        df = sort(df, sort_by, ascending)
    chosen = df.get_column("run").to_list() if "run" in df.columns else []
    return chosen[:top] if top else chosen


def runs_where(ws: Any, conditions: str, sort_by: str = "", top: int = 0) -> list[str]:
    """select_runs on the workspace's leaderboard.csv, as the leaderboard's reader returns it."""
    from kit.leaderboard.sheet import load_table

    header, rows = load_table(ws)
    if not rows:
        raise KitError("leaderboard.csv has no runs to choose from", hint="kit push-kernel train --wait")
    # best first: a score in the task's direction (the smallest val_log_loss or public log loss is the best)
    ascending = not score_directions(ws.task).get(sort_by, True)
    return select_runs(header, rows, conditions, sort_by, top, ascending)
