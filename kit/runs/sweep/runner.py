"""Sweeps: a TOML spec expands into runs tagged with the sweep's name, pushed a few at a time within the backend's
limits, followed to the end and pulled; the sweep's state survives interruption.

A spec:

    name = "lr-rank"            # tags every run; names the state file .kit/sweeps/lr-rank.json
    kernel = "train"
    concurrency = 2             # optional: runs at once (default 2 on Kaggle, 1 locally)
    gpu_hours_per_run = 1.5     # optional: overrides the estimate

    [base]                      # settings every run shares (over kit.toml's defaults)
    train_rows = 2000

    [grid]                      # every combination of these values ...
    learning_rate = [1e-4, 2e-4]
    r = [16, 32]

    [random]                    # ... or `count` random samples, reproducible with `seed`
    count = 6
    seed = 0
    learning_rate = { min = 1e-5, max = 1e-3, log = true }
    r = [8, 16, 32]             # a list is a set of choices

The state file maps each point to its run id. A run is created (and its id saved in its record's tags) before it
is pushed, and a run already pushed is never pushed again: resuming reads the run records, not only the state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import itertools
import json
import math
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from kit.backends.base import Backend
from kit.errors import BackendError, ConfigError, KitError, SessionLimitError, SubmissionError, WorkspaceError
from kit.fileio import atomic_write_json
from kit.leaderboard import sheet
from kit.runs import store
from kit.runs.lifecycle import KERNEL_DIR, build_for_workspace, create_run, pull, refresh, resolve_config, start_run
from kit.runs.store import KernelStatus, RunRecord
from kit.workspace import schema
from kit.workspace.kernel_config import KERNEL_CONFIGS, config_class, make_config, setting_keys, settings_table
from kit.workspace.layout import Workspace
from kit.workspace.schema import Key, Table

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# A prior for Kaggle when no earlier run measured it: 8B QLoRA on one T4 trains about one row a second (an H100 does
# ~9, gpu-baselines.md; a T4 has about a tenth of its fp16 throughput), plus setup, validation and the test set.
PRIOR_ROWS_PER_SECOND = {"kaggle": 1.0}
PRIOR_OVERHEAD_HOURS = {"kaggle": 0.5}


# ---------------------------------------------------------------------------------------------------------------
# The spec


@dataclass(frozen=True)
class Range:
    """A numeric range to sample from; `log` samples evenly in log space; ints when both ends are ints."""

    low: float
    high: float
    log: bool = False

    def sample(self, rng: random.Random) -> float | int:
        """One value drawn from the range with `rng`."""
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if isinstance(self.low, int) and isinstance(self.high, int):
            return min(self.high, max(self.low, round(value)))
        return float(f"{value:.4g}")  # 1.234e-4, not 1.2340589217e-4: it names the run in tables


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep spec: base settings and the points it varies."""

    name: str
    kernel: str
    base: dict[str, Any]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    random: dict[str, list[Any] | Range] = field(default_factory=dict)
    count: int = 0
    seed: int = 0
    concurrency: int | None = None
    gpu_hours_per_run: float | None = None

    def points(self) -> list[dict[str, Any]]:
        """The settings each run varies, in a fixed order (a larger random `count` keeps the earlier samples)."""
        if self.grid:
            keys = list(self.grid)
            return [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))]
        if self.random:
            rng = random.Random(self.seed)
            return [
                {k: (v.sample(rng) if isinstance(v, Range) else rng.choice(v)) for k, v in self.random.items()}
                for _ in range(self.count)
            ]
        return [{}]


def _plain_name(value: str) -> str:
    return "" if NAME.match(value) else "not a plain name (letters, digits, - _ .)"


def _positive(value: float) -> str:
    return "" if value > 0 else "must be above 0"


def spec_schema(kernel: str) -> dict[str, Key | Table]:
    """A sweep spec's keys and tables (one declaration each, checked by kit.workspace.schema like kit.toml); the settings in
    [base], [grid] and [random] are the kernel's run settings."""
    settings = settings_table(kernel)
    return {
        "name": Key(str, "", "tags every run and names the state file", required=True, check=_plain_name),
        "kernel": Key(str, "train", "the kernel every run builds", choices=tuple(sorted(KERNEL_CONFIGS))),
        "concurrency": Key(int, 0, "runs at once (0: 2 on Kaggle, 1 locally)", min=1),
        "gpu_hours_per_run": Key(float, 0.0, "overrides the estimate of each run's GPU hours", check=_positive),
        "base": settings,
        "grid": dataclasses.replace(settings, each="list"),
        # count and seed, then each setting as a list of choices or a { min, max, log } range (checked below)
        "random": Table({}),
    }


def load_spec(path: Path) -> SweepSpec:
    """Read and check a sweep spec; every setting is validated against the kernel's config before anything runs."""
    path = Path(path)
    try:
        text = schema.read_text(path, "sweep spec")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"no sweep spec at {path}", hint="write one: kit sweep --help shows an example") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}", hint=f"fix the TOML syntax in {path}") from None
    kernel = data.get("kernel", "train")
    if not isinstance(kernel, str) or kernel not in KERNEL_CONFIGS:
        kernel_key = spec_schema("train")["kernel"]
        schema.check_document(path, text, {"kernel": kernel}, {"kernel": kernel_key})
    layout = spec_schema(kernel)
    random_table = data.get("random", {})
    checked = schema.check_document(path, text, {k: v for k, v in data.items() if k != "random"}, layout)
    if not isinstance(random_table, dict):
        schema.check_document(path, text, {"random": random_table}, {"random": layout["random"]})
    grid: dict[str, list[Any]] = checked.get("grid", {})
    base: dict[str, Any] = checked.get("base", {})
    sampled, count, seed = _random_table(path, text, kernel, dict(random_table))
    if grid and sampled:
        raise ConfigError(f"{path}: both [grid] and [random]", hint="a sweep is a grid or random samples; split it into two sweeps")
    overlap = sorted(set(base) & (set(grid) | set(sampled)))
    if overlap:
        raise ConfigError(f"{schema.where(path, text, 'base', overlap[0])}: {overlap[0]!r} is both in [base] and varied", hint=f"remove {overlap[0]} from [base]")
    hours = checked.get("gpu_hours_per_run")
    return SweepSpec(checked["name"], kernel, base, grid, sampled, count if sampled else 0, seed, checked.get("concurrency"), float(hours) if hours else None)


RANDOM_KEYS = {
    "count": Key(int, 0, "how many random points", min=1),
    "seed": Key(int, 0, "fixes the samples"),
}


def _random_table(path: Path, text: str, kernel: str, table: dict[str, Any]) -> tuple[dict[str, list[Any] | Range], int, int]:
    """[random]: count and seed, then each setting as a list of choices or a { min, max, log } range."""
    keys = setting_keys(config_class(kernel))
    fixed = schema.check_table(path, text, "random", {k: table.pop(k) for k in list(table) if k in RANDOM_KEYS}, Table(RANDOM_KEYS))
    sampled: dict[str, list[Any] | Range] = {}
    for key, spec in table.items():
        if key not in keys:
            raise ConfigError(f"{schema.where(path, text, 'random', key)}: [random] {schema.unknown(key, keys, 'setting').message}", hint=schema.unknown(key, keys, "setting").hint)

        def check(value: Any, key: str = key) -> Any:
            try:
                return schema.coerce(key, keys[key], value)
            except ConfigError as exc:
                raise ConfigError(f"{schema.where(path, text, 'random', key)}: [random] {exc.message}", hint=exc.hint) from None

        sampled[key] = _random_values(f"{schema.where(path, text, 'random', key)}: [random]", key, spec, check)
    if sampled and "count" not in fixed:
        raise ConfigError(f"{schema.where(path, text, 'random', None)}: [random] count must be a positive integer", hint="count = 8  under [random]")
    return sampled, fixed.get("count", 0), fixed.get("seed", 0)


def _random_values(where: str, key: str, spec: Any, check: Callable[[Any], Any]) -> list[Any] | Range:
    if isinstance(spec, list) and spec:
        return [check(v) for v in spec]
    if isinstance(spec, dict):
        extra = sorted(set(spec) - {"min", "max", "log"})
        low, high = spec.get("min"), spec.get("max")
        if extra or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low > high:
            raise ConfigError(f"{where} {key} must be {{ min = A, max = B, log = true|false }} with A <= B", hint=f"{key} = {{ min = 1e-5, max = 1e-3, log = true }}")
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"{where} {key}: log must be true or false", hint=f"{key} = {{ min = 1e-5, max = 1e-3, log = true }}")
        if log and low <= 0:
            raise ConfigError(f"{where} {key} has log = true, so min must be above 0", hint="use min = 1e-6 or log = false")
        check(low)
        check(high)
        return Range(low, high, log)
    raise ConfigError(f"{where} {key} must be a list of choices or a {{ min, max }} range", hint=f"{key} = [8, 16, 32]")


# ---------------------------------------------------------------------------------------------------------------
# The state file


@dataclass
class Point:
    """One run of the sweep: the settings it varies and, once created, its run id."""

    key: str  # "1", "2", ... in the spec's order
    settings: dict[str, Any]
    run: str = ""
    pulled: bool = False
    earlier_runs: list[str] = field(default_factory=list)  # runs of this point whose push failed before they ran


@dataclass
class SweepState:
    """.kit/sweeps/NAME.json: the sweep's plan and which run each point became."""

    name: str
    kernel: str
    backend: str
    base: dict[str, Any]
    points: list[Point]
    created: str = field(default_factory=store.now)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SweepState":
        data = dict(data)
        data["points"] = [Point(**p) for p in data.get("points", [])]
        return cls(**data)


def state_path(ws: Workspace, name: str) -> Path:
    """Where a sweep's state lives."""
    return ws.state_dir / "sweeps" / f"{name}.json"


def load_state(ws: Workspace, name: str) -> SweepState:
    """A sweep's saved state, or a KitError naming the command that starts it."""
    path = state_path(ws, name)
    if not path.is_file():
        known = ", ".join(sweep_names(ws)) or "none yet"
        raise KitError(f"no sweep {name!r} in {path.parent}", hint=f"start one with kit sweep SPEC.toml (sweeps: {known})")
    try:
        return SweepState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise WorkspaceError(f"{path} is not a valid sweep state: {exc}", hint=f"delete {path} and start the sweep again") from None


def save_state(ws: Workspace, state: SweepState) -> None:
    """Write the sweep's state atomically."""
    atomic_write_json(state_path(ws, state.name), state.to_json())


def sweep_names(ws: Workspace) -> list[str]:
    """Every sweep with a state file."""
    folder = ws.state_dir / "sweeps"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


@contextlib.contextmanager
def exclusive(ws: Workspace, name: str) -> Iterator[None]:
    """Hold the sweep's lock for the block, or fail at once if another kit is running the same sweep."""
    path = state_path(ws, name).with_name(f".{name}.running")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KitError(f"sweep {name!r} is already running in another kit", hint=f"kit sweep status {name} shows its progress") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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


# ---------------------------------------------------------------------------------------------------------------
# The plan


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
        record = _current_record(ws, point)
        to_run = record is None or not record.remote
        hours = spec.gpu_hours_per_run or _estimate_hours(config, rates[config.model][0], backend.name)
        planned.append(PlannedPoint(point, record, hours, to_run))
    left = None
    if quota and backend.has_quota and any(p.to_run for p in planned):
        left = backend.quota().gpu_hours_left
    limit = concurrency or spec.concurrency or ws.value("sweep", "concurrency") or backend.max_concurrent_kernels
    session = max((getattr(c, "timeout_minutes", 720) for c in configs), default=720) / 60
    return SweepPlan(state, planned, limit, source, left, session)


def _current_record(ws: Workspace, point: Point) -> RunRecord | None:
    if not point.run:
        return None
    try:
        return store.load(ws, point.run)
    except KitError:
        return None


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


# ---------------------------------------------------------------------------------------------------------------
# Running


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
                record = _current_record(ws, point) if point.run else None
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
                    on_event(SweepEvent("waiting", point, _current_record(ws, point), f"{exc.message}; trying again in {timing.retry_seconds:g}s"))
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
        record = _current_record(ws, point)
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
    record = _current_record(ws, point)
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


# ---------------------------------------------------------------------------------------------------------------
# Progress and submitting


@dataclass(frozen=True)
class PointStatus:
    """A point of a sweep with its run's current record and validation accuracy."""

    point: Point
    record: RunRecord | None
    val_accuracy: float | None


def status(ws: Workspace, backend: Backend | None, name: str) -> list[PointStatus]:
    """Every point of the sweep with its run's state (refreshed from the backend when one is given)."""
    state = load_state(ws, name)
    out = []
    for point in state.points:
        record = _current_record(ws, point)
        if record is not None and backend is not None and not record.status.final:
            record = refresh(ws, backend, record)
        accuracy = sheet.read_metrics(ws, record.id).get("val_accuracy") if record is not None else None
        out.append(PointStatus(point, record, accuracy if isinstance(accuracy, (int, float)) else None))
    return out


def ranked(ws: Workspace, name: str) -> list[PointStatus]:
    """The sweep's complete runs that have a validation accuracy, best first (ties: the earlier run)."""
    done = [p for p in status(ws, None, name) if p.record is not None and p.record.status is KernelStatus.COMPLETE and p.val_accuracy is not None]
    return sorted(done, key=lambda p: (-p.val_accuracy, p.record.number))  # type: ignore[union-attr,operator]


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
