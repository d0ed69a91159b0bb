"""leaderboard.csv: one row per run, the table a person reads to compare runs and choose finals.

kit owns the columns of SCHEMA and rewrites them from the run records; any other column is a person's and
survives every rewrite, as do rows kit does not know. Writes are atomic and locked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from kit.fileio import atomic_write_text, locked
from kit.leaderboard.csvfile import read_table, render_table
from kit.leaderboard.stats import wilson_interval
from kit.runs.store import RunRecord, all_runs, run_dir
from kit.workspace.layout import Workspace


@dataclass(frozen=True)
class Column:
    """A column kit owns: its name and how to compute it from a run."""

    name: str
    value: Callable[["RunView"], Any]
    help: str = ""


@dataclass(frozen=True)
class RunView:
    """A run with its outputs read once, for computing its leaderboard row."""

    record: RunRecord
    metrics: dict
    lineage: str = ""
    public_rows: int = 0  # the competition's public split, for the public score's interval
    plan: dict = field(default_factory=dict)  # plan.json's decisions as pulled ({} for a run without one)

    @property
    def latest(self):
        return self.record.submissions[-1] if self.record.submissions else None


def _setting(key: str) -> Callable[[RunView], Any]:
    return lambda v: v.record.config.get(key, "")


def _sub(attr: str) -> Callable[[RunView], Any]:
    return lambda v: getattr(v.latest, attr) if v.latest is not None else ""


def _metric(*keys: str) -> Callable[[RunView], Any]:
    def get(v: RunView) -> Any:
        for key in keys:
            value = v.metrics.get(key)
            if value is not None:
                return value
        return ""

    return get


def _interval(score: Any, rows: Any) -> str:
    """A score's 95% interval as "low-high" (Wilson), or "" without a score or a row count."""
    if not isinstance(score, (int, float)) or not isinstance(rows, int) or rows <= 0:
        return ""
    low, high = wilson_interval(float(score), rows)
    return f"{low:.4f}-{high:.4f}"


def _val_interval(v: RunView) -> str:
    rows = v.metrics.get("val_rows")
    return _interval(v.metrics.get("val_accuracy"), int(rows) if isinstance(rows, (int, float)) else None)


def _public_interval(v: RunView) -> str:
    return _interval(v.latest.public_score if v.latest is not None else None, v.public_rows)


def _gpu_minutes(v: RunView) -> Any:
    seconds = v.metrics.get("wall_seconds") or v.metrics.get("wall_time_s")
    return round(seconds / 60, 1) if isinstance(seconds, (int, float)) and v.record.gpu not in ("", "cpu") else ""


def _planned(name: str) -> Callable[[RunView], Any]:
    """A decision of the run's plan.json, as the plan's table prints it (on/off for a yes or no)."""
    def get(v: RunView) -> Any:
        value = v.plan.get(name, {}).get("value", "") if isinstance(v.plan.get(name), dict) else ""
        return ("on" if value else "off") if isinstance(value, bool) else value

    return get


SCHEMA: list[Column] = [
    Column("run", lambda v: v.record.id),
    Column("kernel", lambda v: v.record.kernel),
    Column("created", lambda v: v.record.created),
    Column("status", lambda v: v.record.status.value),
    Column("backend", lambda v: v.record.backend),
    Column("model", _setting("model")),
    Column("prompt", _setting("prompt")),
    Column("train_rows", _setting("train_rows")),
    Column("data_offset", _setting("data_offset")),
    Column("r", _setting("r")),
    Column("lora_alpha", _setting("lora_alpha")),
    Column("learning_rate", _setting("learning_rate")),
    Column("lr_scheduler", _setting("lr_scheduler")),
    Column("batch_size", _setting("batch_size")),
    Column("grad_accum", _setting("grad_accum")),
    Column("max_steps", _setting("max_steps")),
    Column("resume_from", lambda v: v.record.config.get("resume_from") or v.record.config.get("adapter_run") or ""),
    Column("val_accuracy", _metric("val_accuracy")),
    Column("val_rows", _metric("val_rows")),
    Column("val_ci95", _val_interval, "95% interval of val_accuracy"),
    Column("submission_ref", _sub("ref")),
    Column("submitted", _sub("date")),
    Column("public_score", _sub("public_score")),
    Column("public_ci95", _public_interval, "95% interval of public_score from the public split's size"),
    Column("private_score", _sub("private_score")),
    Column("gpu", lambda v: v.record.gpu),
    Column("gpu_minutes", _gpu_minutes),
    # The plan's choices that tell runs on different machines apart (plan.json; the settings say only "auto").
    Column("plan_engine", _planned("engine"), "the engine that ran (plan.json)"),
    Column("plan_dtype", _planned("dtype"), "the compute dtype that ran (plan.json)"),
    Column("plan_packing", _planned("packing"), "rows packed back to back (plan.json)"),
    Column("plan_compile", _planned("compile"), "decoder layers compiled (plan.json; train runs)"),
    Column("plan_checkpointing", _planned("checkpointing"), "activations recomputed (plan.json; train runs)"),
    Column("sweep", lambda v: v.record.tags.get("sweep", "")),
    Column("lineage", lambda v: v.lineage, "the runs whose adapter this run continues, oldest first: run-3>run-7>run-9"),
]
KIT_COLUMNS = [c.name for c in SCHEMA]
# Columns kit writes only when asked (kit pick --mark), never from run records.
MARK_COLUMNS = ["final"]


def read_metrics(ws: Workspace, run_id: str) -> dict:
    """A run's metrics.json as pulled, or {}."""
    try:
        return json.loads((run_dir(ws, run_id) / "metrics.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def read_plan(ws: Workspace, run_id: str) -> dict:
    """The decisions of a run's plan.json as pulled, or {}."""
    try:
        decisions = json.loads((run_dir(ws, run_id) / "plan.json").read_text(encoding="utf-8")).get("decisions", {})
    except (FileNotFoundError, json.JSONDecodeError, AttributeError):
        return {}
    return decisions if isinstance(decisions, dict) else {}


def row_for(ws: Workspace, record: RunRecord, public_rows: int, records: dict[str, RunRecord]) -> dict[str, Any]:
    """The leaderboard row kit computes for a run (`records`: every run by id, for its lineage)."""
    view = RunView(record, read_metrics(ws, record.id), lineage=lineage(record, records), public_rows=public_rows,
                   plan=read_plan(ws, record.id))
    row = {c.name: _fmt(c.value(view)) for c in SCHEMA}
    column = ws.task.metric_column()
    if column not in row:  # the task's metric beside val_accuracy: val_log_loss, val_map@3, ...
        from kit.task import run_metric

        row[column] = _fmt(run_metric(view.metrics, ws.task))
    return row


def lineage(record: RunRecord, records: dict[str, RunRecord]) -> str:
    """`run-3>run-7>run-9` for a run that continues run-7, which continued run-3; "" for a run of one phase."""
    chain = [record.id]
    parent = record.config.get("resume_from") or record.config.get("adapter_run") or ""
    while parent and parent not in chain:
        chain.append(parent)
        source = records.get(parent)
        if source is None:  # a deleted or unreadable ancestor still shows by name, and ends the chain
            break
        parent = source.config.get("resume_from") or source.config.get("adapter_run") or ""
    return ">".join(reversed(chain)) if len(chain) > 1 else ""


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a leaderboard file ([] and [] if there is none); a file kit cannot read without
    losing a cell is refused in one line naming the file, the line and the fix (kit.leaderboard.csvfile)."""
    table = read_table(path)
    return table.header, table.rows


def check(ws: Workspace) -> None:
    """Refuse now, before anything is spent, a leaderboard.csv that the write after a push or submission would refuse."""
    read_table(ws.leaderboard_path)


def update(path: Path, changes: dict[str, dict[str, Any]], *, add_columns: Iterable[str] = ()) -> None:
    """Merge `changes` (run id -> column -> value) into the leaderboard under a lock, atomically.

    Existing columns keep their order, unknown columns and rows are kept (every cell as it was); new kit columns
    are appended."""
    with locked(path):
        _merge(path, changes, add_columns)


def _merge(path: Path, changes: dict[str, dict[str, Any]], add_columns: Iterable[str] = ()) -> None:
    """update() for a caller that holds the leaderboard's lock."""
    table = read_table(path)
    header, rows = table.header, table.rows
    for name in [*KIT_COLUMNS, *add_columns, *(k for c in changes.values() for k in c)]:
        if name not in header:
            # a task's metric column goes beside val_accuracy, where a reader compares them
            beside = name.startswith("val_") and name not in KIT_COLUMNS and "val_accuracy" in header
            at = header.index("val_accuracy") + 1 if beside else len(header)
            header.insert(at, name)
    by_run = {row["run"]: row for row in rows}
    for run_id, values in changes.items():
        row = by_run.get(run_id)
        if row is None:
            row = {"run": run_id}
            rows.append(row)
            by_run[run_id] = row
        row.update({k: _fmt(v) for k, v in values.items()})
    rows.sort(key=_run_sort_key)
    atomic_write_text(path, render_table(table))


def _run_sort_key(row: dict[str, str]) -> tuple[int, str]:
    run = row.get("run", "")
    number = run.split("-", 1)[-1]
    return (int(number), run) if run.startswith("run-") and number.isdigit() else (1 << 30, run)


def differing_settings(records: Iterable[RunRecord]) -> list[str]:
    """Settings (beyond kit's fixed columns) whose values differ between runs: the ones that tell runs apart."""
    values: dict[str, set[str]] = {}
    order: list[str] = []
    for record in records:
        for key, value in record.config.items():
            if key not in values:
                values[key] = set()
                order.append(key)
            values[key].add(_fmt(value))
    return [k for k in order if len(values[k]) > 1 and k not in KIT_COLUMNS]


def sync(ws: Workspace, records: Iterable[RunRecord] | None = None) -> None:
    """Rewrite kit's columns for `records` (default: every run) from their run records and outputs, plus a column
    for every other setting that differs between runs (filled in for every run).

    The records are read from disk while the leaderboard's lock is held: a row is never written from a copy older
    than the one a parallel writer (a `kit submit` beside a `kit scores`) has already put there. `records` only
    says which rows to rewrite; a record not saved yet is taken as given."""
    given = list(records) if records is not None else None
    with locked(ws.leaderboard_path):
        everyone = all_runs(ws)
        by_id = {r.id: r for r in everyone}
        for r in given or []:
            by_id.setdefault(r.id, r)
        chosen = everyone if given is None else [by_id[r.id] for r in given]
        extra = differing_settings(by_id.values())
        public_rows = ws.split_sizes()[0]
        changes: dict[str, dict[str, Any]] = {r.id: {k: r.config.get(k, "") for k in extra} for r in by_id.values()}
        for r in chosen:
            changes[r.id].update(row_for(ws, r, public_rows, by_id))
        _merge(ws.leaderboard_path, changes)


def load_table(ws: Workspace) -> tuple[list[str], list[dict[str, str]]]:
    """The leaderboard as it is on disk (header, rows)."""
    return read(ws.leaderboard_path)
