"""Running a sweep: its runs pushed a few at a time within the backend's limits, followed to the end and pulled;
the sweep's state survives interruption.

A run is created (and its id saved in its record's tags) before it is pushed, and a run already pushed is never
pushed again: resuming reads the run records, not only the state.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable

from kit.backends.base import Backend
from kit.errors import BackendError, SessionLimitError
from kit.leaderboard import sheet
from kit.runs import store
from kit.runs.lifecycle import KERNEL_DIR, build_for_workspace, create_run, pull, refresh, start_run
from kit.runs.store import KernelStatus, RunRecord
from kit.runs.sweep.plan import SweepPlan
from kit.runs.sweep.state import Point, SweepState, current_record, exclusive, save_state
from kit.workspace.kernel_config import make_config
from kit.workspace.layout import Workspace


@dataclass(frozen=True)
class SweepEvent:
    """Something the sweep did, for the CLI to report: created, pushed, waiting, finished, pulled, resumed."""

    kind: str
    point: Point
    record: RunRecord | None = None
    message: str = ""


@dataclass(frozen=True)
class SweepTiming:
    """How often the sweep polls its runs and how long it waits after the backend refuses a session."""

    poll_seconds: float = 30.0
    retry_seconds: float = 300.0


def run(
    ws: Workspace,
    backend: Backend,
    sweep_plan: SweepPlan,
    timing: SweepTiming = SweepTiming(),
    on_event: Callable[[SweepEvent], None] = lambda e: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> SweepState:
    """Keep at most `concurrency` of the sweep's runs going until every point has run and been pulled."""
    state = sweep_plan.state
    with exclusive(ws, state.name):
        save_state(ws, state)
        _reconcile(ws, backend, state, on_event)
        retry_at = 0.0
        while True:
            active: list[RunRecord] = []
            waiting: list[Point] = []
            for point in state.points:
                record = current_record(ws, point) if point.run else None
                if record is None or not record.remote:
                    waiting.append(point)
                    continue
                if not record.status.final:
                    record = refresh(ws, backend, record)
                    if record.status.final:
                        on_event(SweepEvent("finished", point, record, record.message))
                if record.status.final and not point.pulled:
                    _pull(ws, backend, state, point, record, on_event)
                if not record.status.final:
                    active.append(record)
            if not active and not waiting:
                return state
            for point in waiting:
                if len(active) >= sweep_plan.concurrency or clock() < retry_at:
                    break
                try:
                    active.append(_start(ws, backend, state, point, on_event))
                except SessionLimitError as exc:
                    # The account's sessions are busy (maybe with kernels outside this sweep): try again later.
                    retry_at = clock() + timing.retry_seconds
                    on_event(SweepEvent("waiting", point, current_record(ws, point), f"{exc.message}; trying again in {timing.retry_seconds:g}s"))
            sleep(timing.poll_seconds)


def _reconcile(ws: Workspace, backend: Backend, state: SweepState, on_event: Callable[[SweepEvent], None]) -> None:
    """Bring the state in line with the run records after an interruption: adopt runs created but not yet saved in
    the state, find runs whose push went through before the answer was recorded, and forget runs that never started."""
    tagged = {r.tags.get("sweep_point"): r for r in store.all_runs(ws) if r.tags.get("sweep") == state.name}
    for point in state.points:
        if not point.run and point.key in tagged and tagged[point.key].id not in point.earlier_runs:
            point.run = tagged[point.key].id
            save_state(ws, state)
            on_event(SweepEvent("resumed", point, tagged[point.key], "created before the interruption"))
        record = current_record(ws, point)
        if record is None or record.remote:
            continue
        if record.status is KernelStatus.ERROR:  # its push failed: the point gets a new run
            point.earlier_runs.append(point.run)
            point.run, point.pulled = "", False
            save_state(ws, state)
            continue
        remote = _pushed_remote(ws, backend, record)
        if remote:
            record.remote, record.message = remote, ""
            store.save(ws, record)
            sheet.sync(ws, [record])
            on_event(SweepEvent("resumed", point, record, "pushed before the interruption"))


def _pushed_remote(ws: Workspace, backend: Backend, record: RunRecord) -> str:
    """The remote of a run that was pushed although its record does not say so (kit stopped mid-push), else ""."""
    kernel_dir = store.run_dir(ws, record.id) / KERNEL_DIR
    try:
        json.loads((kernel_dir / "kernel-metadata.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return ""  # never built completely, so never pushed
    return backend.pushed_remote(record, kernel_dir)


def _start(ws: Workspace, backend: Backend, state: SweepState, point: Point, on_event: Callable[[SweepEvent], None]) -> RunRecord:
    record = current_record(ws, point)
    if record is None:
        tags = {"sweep": state.name, "sweep_point": point.key}
        # The record carries the point in its tags from the moment it exists, so a sweep killed before it saves
        # its state finds the run again rather than creating a second one.
        record = create_run(ws, backend, state.kernel, {**state.base, **point.settings}, tags=tags)
        point.run = record.id
        save_state(ws, state)
        on_event(SweepEvent("created", point, record))
    elif not (store.run_dir(ws, record.id) / KERNEL_DIR / "kernel-metadata.json").is_file():
        config = make_config(record.kernel, record.config)
        build_for_workspace(ws, record.kernel, config, store.run_dir(ws, record.id) / KERNEL_DIR, run_id=record.id)
    record = start_run(ws, backend, record, retry_later=(SessionLimitError,))
    on_event(SweepEvent("pushed", point, record))
    return record


def _pull(ws: Workspace, backend: Backend, state: SweepState, point: Point, record: RunRecord, on_event: Callable[[SweepEvent], None]) -> None:
    message = ""
    if record.status is not KernelStatus.CANCELLED:
        try:
            files = pull(ws, backend, record)
            message = f"{len(files)} files"
        except BackendError as exc:
            if record.status is KernelStatus.COMPLETE:
                raise
            message = f"no outputs: {exc.message}"  # a failed run may have none
    point.pulled = True
    save_state(ws, state)
    on_event(SweepEvent("pulled", point, record, message))
