"""A sweep's plan: the spec's points merged with the saved state, every point's config checked and its GPU hours
estimated against the backend's quota, shown before anything is spent."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from typing import Any

from kit.backends.base import Backend
from kit.errors import ConfigError
from kit.leaderboard import sheet
from kit.runs import store
from kit.runs.lifecycle import resolve_config
from kit.runs.store import KernelStatus, RunRecord
from kit.runs.sweep.spec import SweepSpec
from kit.runs.sweep.state import Point, SweepState, current_record, load_state, state_path
from kit.workspace.layout import Workspace


# A prior for Kaggle when no earlier run measured it: 8B QLoRA on one T4 trains about one row a second (an H100 does
# ~9, gpu-baselines.md; a T4 has about a tenth of its fp16 throughput), plus setup, validation and the test set.
PRIOR_ROWS_PER_SECOND = {"kaggle": 1.0}
PRIOR_OVERHEAD_HOURS = {"kaggle": 0.5}


def _canonical(settings: dict[str, Any]) -> str:
    return json.dumps(settings, sort_keys=True)


def merge_state(ws: Workspace, backend: Backend, spec: SweepSpec) -> SweepState:
    """The saved state of the spec's sweep, with points the spec adds appended; a changed plan is refused."""
    points = [Point(str(i + 1), p) for i, p in enumerate(spec.points())]
    if not state_path(ws, spec.name).is_file():
        return SweepState(spec.name, spec.kernel, backend.name, dict(spec.base), points)
    state = load_state(ws, spec.name)
    hint = f"name the new plan differently, or delete {state_path(ws, spec.name)} to forget the old one (its runs stay)"
    if (state.kernel, state.backend, _canonical(state.base)) != (spec.kernel, backend.name, _canonical(spec.base)):
        raise ConfigError(f"sweep {spec.name!r} was started with another kernel, backend or [base]", hint=hint)
    known = {_canonical(p.settings) for p in state.points}
    wanted = {_canonical(p.settings) for p in points}
    if not known <= wanted:
        raise ConfigError(f"sweep {spec.name!r} was started with points this spec no longer has", hint=hint)
    for point in points:
        if _canonical(point.settings) not in known:
            state.points.append(Point(str(len(state.points) + 1), point.settings))
    return state


@dataclass(frozen=True)
class PlannedPoint:
    """A point with its run (if created) and the GPU hours it is expected to spend if it is still to run."""

    point: Point
    record: RunRecord | None
    hours: float | None
    to_run: bool


@dataclass(frozen=True)
class SweepPlan:
    """What `kit sweep` is about to do, shown before anything is spent."""

    state: SweepState
    points: list[PlannedPoint]
    concurrency: int
    hours_source: str  # how the estimate was made
    gpu_hours_left: float | None  # None where the backend has no quota (local)
    session_hours: float  # the longest a run may last (the kernel's timeout)

    @property
    def to_run(self) -> list[PlannedPoint]:
        return [p for p in self.points if p.to_run]

    @property
    def hours(self) -> float | None:
        estimates = [p.hours for p in self.to_run]
        return None if any(h is None for h in estimates) else sum(h for h in estimates if h is not None)

    @property
    def over_quota(self) -> bool:
        return self.gpu_hours_left is not None and self.hours is not None and self.hours > self.gpu_hours_left

    @property
    def too_long(self) -> list[PlannedPoint]:
        """Points expected to run longer than a session may last."""
        return [p for p in self.to_run if p.hours is not None and p.hours > self.session_hours]


def plan(ws: Workspace, backend: Backend, spec: SweepSpec, concurrency: int | None = None, quota: bool = True) -> SweepPlan:
    """Expand the spec, check every point's config, and estimate the GPU hours still to spend against the quota."""
    state = merge_state(ws, backend, spec)
    configs = [resolve_config(ws, spec.kernel, {**state.base, **p.settings}, backend.name) for p in state.points]
    rates = {model: _seconds_per_row(ws, backend.name, spec.kernel, model) for model in {c.model for c in configs}}
    source = "gpu_hours_per_run in the spec" if spec.gpu_hours_per_run else "; ".join(sorted({s for _, s in rates.values()}))
    planned = []
    for point, config in zip(state.points, configs):
        record = current_record(ws, point)
        to_run = record is None or not record.remote
        hours = spec.gpu_hours_per_run or _estimate_hours(config, rates[config.model][0], backend.name)
        planned.append(PlannedPoint(point, record, hours, to_run))
    left = None
    if quota and backend.has_quota and any(p.to_run for p in planned):
        left = backend.quota().gpu_hours_left
    limit = concurrency or spec.concurrency or ws.value("sweep", "concurrency") or backend.max_concurrent_kernels
    session = max((getattr(c, "timeout_minutes", 720) for c in configs), default=720) / 60
    return SweepPlan(state, planned, limit, source, left, session)


def _trained_rows(config: Any) -> float | None:
    """Rows a train run puts through the optimizer (None when it trains on all rows, a number unknown here)."""
    if getattr(config, "max_steps", 0):
        return config.max_steps * config.batch_size * config.grad_accum
    if getattr(config, "train_rows", 0):
        return config.train_rows * config.epochs
    return None


def _seconds_per_row(ws: Workspace, backend: str, kernel: str, model: str) -> tuple[float | None, str]:
    """Wall seconds per trained row, measured on this workspace's finished runs of the same kernel and model."""
    rates = []
    for record in store.all_runs(ws):
        if (record.backend, record.kernel, record.status, record.config.get("model")) != (backend, kernel, KernelStatus.COMPLETE, model):
            continue
        metrics = sheet.read_metrics(ws, record.id)
        wall, steps = metrics.get("wall_seconds"), metrics.get("steps_this_run")
        per_step = record.config.get("batch_size", 0) * record.config.get("grad_accum", 1)
        if isinstance(wall, (int, float)) and isinstance(steps, int) and steps > 0 and per_step:
            rates.append(wall / (steps * per_step))
    if rates:
        return statistics.median(rates), f"measured on {len(rates)} finished {kernel} runs of {model}"
    if backend in PRIOR_ROWS_PER_SECOND:
        return None, f"a prior of {PRIOR_ROWS_PER_SECOND[backend]:g} trained rows/s + {PRIOR_OVERHEAD_HOURS[backend]:g} h a run (no finished runs to measure yet)"
    return None, "no finished runs of this kernel and model to measure"


def _estimate_hours(config: Any, rate: float | None, backend: str) -> float | None:
    rows = _trained_rows(config)
    if rows is None:
        return None
    if rate is not None:
        return rows * rate / 3600
    if backend in PRIOR_ROWS_PER_SECOND:
        return PRIOR_OVERHEAD_HOURS[backend] + rows / PRIOR_ROWS_PER_SECOND[backend] / 3600
    return None
