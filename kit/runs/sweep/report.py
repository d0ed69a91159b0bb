"""A sweep's progress and its best runs: each point with its run's state and validation accuracy, and submitting
the K best within the day's limit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kit.backends.base import Backend
from kit.errors import KitError, SubmissionError
from kit.leaderboard import sheet
from kit.runs.lifecycle import refresh
from kit.runs.store import KernelStatus, RunRecord
from kit.runs.sweep.state import Point, current_record, load_state
from kit.task import run_metric
from kit.workspace.layout import Workspace


@dataclass(frozen=True)
class PointStatus:
    """A point of a sweep with its run's current record and validation score (the task's metric: accuracy for the
    binary is_correct task)."""

    point: Point
    record: RunRecord | None
    val_metric: float | None  # the task's metric (--json names it by the task's column: val_accuracy, val_log_loss, ...)


def status(ws: Workspace, backend: Backend | None, name: str) -> list[PointStatus]:
    """Every point of the sweep with its run's state (refreshed from the backend when one is given)."""
    state = load_state(ws, name)
    out = []
    for point in state.points:
        record = current_record(ws, point)
        if record is not None and backend is not None and not record.status.final:
            record = refresh(ws, backend, record)
        value = run_metric(sheet.read_metrics(ws, record.id), ws.task) if record is not None else None
        out.append(PointStatus(point, record, value))
    return out


def ranked(ws: Workspace, name: str) -> list[PointStatus]:
    """The sweep's complete runs that have a validation score on the task's metric, best first in its direction
    (the lowest log loss first; ties: the earlier run)."""
    done = [p for p in status(ws, None, name) if p.record is not None and p.record.status is KernelStatus.COMPLETE and p.val_metric is not None]
    sign = -1 if ws.task.higher_is_better else 1
    return sorted(done, key=lambda p: (sign * p.val_metric, p.record.number))  # type: ignore[union-attr,operator]


@dataclass(frozen=True)
class TopPick:
    """One of the K best runs and what `kit sweep submit` does with it."""

    status: PointStatus
    action: str  # "submit", "submitted" (already, earlier), "skip" (no file, or no submissions left)
    reason: str = ""
    plan: Any = None  # kit.submissions.submit.SubmitPlan when action == "submit"


def pick_top(ws: Workspace, backend: Backend, name: str, k: int) -> list[TopPick]:
    """The K best runs by validation accuracy and whether each can be submitted today; nothing is sent."""
    from kit.submissions.submit import prepare

    if k < 1:
        raise KitError(f"--top must be at least 1, not {k}", hint=f"kit sweep submit {name} --top 2")
    best = ranked(ws, name)
    if not best:
        raise KitError(f"sweep {name!r} has no complete run with a validation accuracy yet", hint=f"kit sweep status {name}")
    left = backend.submissions_left_today()
    picks: list[TopPick] = []
    for entry in best[:k]:
        record = entry.record
        assert record is not None
        if any(s.status != "error" for s in record.submissions):
            picks.append(TopPick(entry, "submitted", f"already submitted as {record.submissions[-1].ref}"))
            continue
        if left is not None and left <= 0:
            picks.append(TopPick(entry, "skip", "no submissions left today"))
            continue
        try:
            submit_plan = prepare(ws, backend, record.id)
        except SubmissionError as exc:
            picks.append(TopPick(entry, "skip", exc.message))
            continue
        picks.append(TopPick(entry, "submit", plan=submit_plan))
        if left is not None:
            left -= 1
    return picks


def submit_top(ws: Workspace, backend: Backend, picks: list[TopPick], message: str = "") -> list[tuple[TopPick, Any]]:
    """Submit the picks marked "submit", re-checking the day's limit before each; returns (pick, SubmissionRecord)."""
    from kit.submissions.submit import submit

    done = []
    for pick in picks:
        if pick.action != "submit":
            continue
        left = backend.submissions_left_today()
        if left is not None and left <= 0:  # someone else spent one since the picks were made: never go over
            break
        done.append((pick, submit(ws, backend, pick.plan, message)))
    return done


def describe(settings: dict[str, Any]) -> str:
    """`learning_rate=0.0002 r=16`: a point's settings on one line."""
    return " ".join(f"{k}={v}" for k, v in settings.items()) or "(base settings)"
