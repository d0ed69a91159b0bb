"""Runs: every push is a run `run-N` with a record at submissions/run-N/run.json."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from kit.errors import RunNotFoundError, WorkspaceError
from kit.fileio import atomic_write_json, atomic_write_text, locked
from kit.workspace.layout import Workspace

RUN_ID = re.compile(r"^run-(\d+)$")
RECORD = "run.json"


class KernelStatus(str, enum.Enum):
    """Where a run's kernel is; `final` says whether it can still change."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (KernelStatus.COMPLETE, KernelStatus.ERROR, KernelStatus.CANCELLED)


def now() -> str:
    """The current UTC time as an ISO-8601 string, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class SubmissionRecord:
    """One submission of a run's file to the competition."""

    ref: str
    date: str
    message: str
    file_sha256: str
    status: str = "pending"
    public_score: float | None = None
    private_score: float | None = None
    error: str = ""
    kernel: str = ""  # code competitions: the kernel version submitted, owner/slug/N (or a local session)
    # The competition instance the ref belongs to (Backend.competition_instance): a practice competition made again
    # restarts its refs at 1, so a ref alone does not name a submission. "" in records made before it was kept.
    competition: str = ""


@dataclass
class Intent:
    """A request that spends something (a push, a submission), written to the run's record before it is sent.

    If the answer is lost (timeout, 5xx, dropped connection, Ctrl-C, a crash) the intent stays, and kit asks the
    backend what happened since `at` before it acts on the run again (kit/runs/intent.py): what it finds is recorded,
    never done twice. `unresolved` says why kit could not tell yet ("" while the request is in flight).
    """

    action: str  # "push" | "submit"
    at: str  # when the request was about to be sent, ISO-8601 UTC
    file: str = ""  # the file sent: submission.csv, or the kernel's script
    sha256: str = ""
    size: int = 0
    description: str = ""  # a submission's description on the competition; starts with the run's tag
    message: str = ""  # the user's -m
    target: str = ""  # a push: the kernel it creates or updates (owner/slug)
    version_before: int | None = None  # a push: the kernel's version before it (None: no such kernel yet)
    competition: str = ""  # a submission: the competition instance it goes to (Backend.competition_instance)
    unresolved: str = ""
    lost_at: str = ""  # when its answer was lost, ISO-8601 UTC ("": not known; `at` stands in)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Intent":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class RunRecord:
    """Everything known about one run: what was pushed, where, and what came back."""

    id: str
    kernel: str
    backend: str
    config: dict[str, Any]
    status: KernelStatus = KernelStatus.QUEUED
    remote: str = ""
    remote_version: int = 0  # the kernel version the push created on Kaggle (0: unknown or not Kaggle)
    created: str = field(default_factory=now)
    started: str = ""
    finished: str = ""
    gpu: str = ""
    message: str = ""
    outputs: list[str] = field(default_factory=list)
    submissions: list[SubmissionRecord] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    pending: Intent | None = None  # a push or submission whose outcome is not known yet

    @property
    def number(self) -> int:
        return int(RUN_ID.match(self.id).group(1))  # type: ignore[union-attr]

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunRecord":
        data = dict(data)
        data["status"] = KernelStatus(data.get("status", "queued"))
        data["submissions"] = [SubmissionRecord(**s) for s in data.get("submissions", [])]
        data["pending"] = Intent.from_json(data["pending"]) if isinstance(data.get("pending"), dict) else None
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def run_dir(ws: Workspace, run_id: str) -> Path:
    """The folder of a run's record and outputs."""
    return ws.submissions_dir / run_id


def check_run_id(run_id: str) -> str:
    """`run_id` if it looks like run-N; accepts a bare number too."""
    if run_id.isdigit():
        run_id = f"run-{run_id}"
    if not RUN_ID.match(run_id):
        raise RunNotFoundError(f"{run_id!r} is not a run id (expected run-N)", hint="kit status lists the runs")
    return run_id


def allocate(ws: Workspace, kernel: str, backend: str, config: dict[str, Any], tags: dict[str, str] | None = None) -> RunRecord:
    """Create the next run `run-N` (N never reused, even after a run's folder is deleted) and save its record."""
    ws.submissions_dir.mkdir(parents=True, exist_ok=True)
    counter = ws.submissions_dir / ".last-run"
    with locked(counter):
        last = int(counter.read_text().strip() or 0) if counter.exists() else 0
        for path in ws.submissions_dir.iterdir():
            m = RUN_ID.match(path.name)
            if m:
                last = max(last, int(m.group(1)))
        record = RunRecord(id=f"run-{last + 1}", kernel=kernel, backend=backend, config=config, tags=dict(tags or {}))
        run_dir(ws, record.id).mkdir()
        save(ws, record)
        atomic_write_text(counter, f"{last + 1}\n")
    return record


def save(ws: Workspace, record: RunRecord) -> None:
    """Write a run's record atomically."""
    atomic_write_json(run_dir(ws, record.id) / RECORD, record.to_json())


def update(ws: Workspace, run_id: str, change: Callable[[RunRecord], Any]) -> RunRecord:
    """Load run `run_id`'s record, apply `change` to it and save it, under the record's lock: two commands that
    change one run (a submit and a kit scores, a pull and a kit status) never lose each other's change."""
    with locked(run_dir(ws, run_id) / RECORD):
        record = load(ws, run_id)
        change(record)
        save(ws, record)
    return record


def _say_waiting(run_id: str, holder: str) -> None:
    print(f"{run_id}: another kit command is working on it ({holder or 'pid unknown'}); waiting for it to finish", file=sys.stderr, flush=True)


@contextlib.contextmanager
def action(ws: Workspace, run_id: str, what: str, on_wait: Callable[[str, str], None] = _say_waiting, wait: bool = True) -> Iterator[None]:
    """Hold run `run_id`'s action lock for a command that changes it on the backend (push, submit): a second
    command on the same run waits here (and says so) until the first is done; other runs go on in parallel.
    With `wait=False` a held lock raises kit.fileio.LockBusy instead of waiting."""
    run_id = check_run_id(run_id)
    holder = f"pid {os.getpid()}: kit {what} {run_id}"
    with locked(run_dir(ws, run_id) / "action", holder=holder, on_wait=lambda h: on_wait(run_id, h), wait=wait):
        yield


def load(ws: Workspace, run_id: str) -> RunRecord:
    """Read a run's record, or a RunNotFoundError naming the command that lists runs, or a DamagedRunError naming
    the file, what is wrong with it and the fix."""
    run_id = check_run_id(run_id)
    path = run_dir(ws, run_id) / RECORD
    if not path.is_file():
        raise RunNotFoundError(f"no run {run_id} in {ws.submissions_dir}", hint="kit status lists the runs")
    return read_record(path, run_id)


class DamagedRunError(WorkspaceError):
    """A run.json that cannot be read as a run record; only its own run is affected."""

    def __init__(self, run_id: str, path: Path, problem: str):
        super().__init__(
            f"{path}: {problem}",
            hint=f"restore it (git checkout -- {path}) or repair it by hand; other runs are not affected",
        )
        self.run_id, self.path, self.problem = run_id, path, problem


def read_record(path: Path, run_id: str) -> RunRecord:
    """A run record read from `path`, its shape checked first, so a damaged file is one DamagedRunError (never a
    traceback later, in whatever command first touches a field)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DamagedRunError(run_id, path, f"byte {exc.start} is not UTF-8 text") from None
    except OSError as exc:
        raise DamagedRunError(run_id, path, f"cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        what = "ends early (truncated?)" if exc.pos >= len(text.rstrip()) else exc.msg
        raise DamagedRunError(run_id, path, f"line {exc.lineno}: not valid JSON: {what}") from None
    problem = record_problem(data, run_id)
    if problem:
        raise DamagedRunError(run_id, path, problem)
    try:
        return RunRecord.from_json(data)
    except (TypeError, ValueError) as exc:
        raise DamagedRunError(run_id, path, f"not a run record: {exc}") from None


def _type_problem(name: str, value: Any, annotation: Any) -> str:
    """What is wrong with a field's JSON value for its annotation ("" when it fits or the annotation is not simple)."""
    wanted = {"str": str, "dict[str, Any]": dict, "dict[str, str]": dict, "list[str]": list, "float | None": (int, float, type(None))}
    kind = wanted.get(annotation if isinstance(annotation, str) else getattr(annotation, "__name__", ""))
    if kind is None or (isinstance(value, kind) and not isinstance(value, bool)):
        return ""
    return f"{name} is {json.dumps(value)[:40]}, expected {'an object' if kind is dict else 'a list' if kind is list else 'text' if kind is str else 'a number or null'}"


def record_problem(data: Any, run_id: str) -> str:
    """What makes `data` (a parsed run.json) not a record of `run_id`, or ""."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("id") != run_id:
        return f"id is {data.get('id')!r}, expected {run_id!r} (the folder's name)"
    for f in dataclasses.fields(RunRecord):
        if f.name in data and f.name not in ("status", "submissions"):
            problem = _type_problem(f.name, data[f.name], f.type)
            if problem:
                return problem
        elif f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            return f"{f.name} is missing"
    if data.get("status", "queued") not in {s.value for s in KernelStatus}:
        return f"status is {data.get('status')!r}, expected one of {', '.join(s.value for s in KernelStatus)}"
    subs = data.get("submissions", [])
    if not isinstance(subs, list) or not all(isinstance(s, dict) for s in subs):
        return "submissions is not a list of objects"
    for i, sub in enumerate(subs, start=1):
        for f in dataclasses.fields(SubmissionRecord):
            if f.name in sub:
                problem = _type_problem(f.name, sub[f.name], f.type)
                if problem:
                    return f"submission {i}: {problem}"
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                return f"submission {i}: {f.name} is missing"
    return ""


def scan(ws: Workspace) -> tuple[list[RunRecord], list[DamagedRunError]]:
    """Every run with a record, oldest first, and the runs whose record is damaged (each named with its fix)."""
    if not ws.submissions_dir.is_dir():
        return [], []
    ids = [p.name for p in ws.submissions_dir.iterdir() if RUN_ID.match(p.name) and (p / RECORD).is_file()]
    good: list[RunRecord] = []
    damaged: list[DamagedRunError] = []
    for run_id in sorted(ids, key=lambda i: int(i.split("-")[1])):
        try:
            good.append(read_record(run_dir(ws, run_id) / RECORD, run_id))
        except DamagedRunError as exc:
            damaged.append(exc)
    return good, damaged


def all_runs(ws: Workspace) -> list[RunRecord]:
    """Every run with a readable record, oldest first. A damaged record affects only its own run: it is left out
    here (scan() and `kit status` name it with its fix), so that other runs' status, scores and submits go on."""
    return scan(ws)[0]
