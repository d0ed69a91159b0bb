"""A sweep's saved state: .kit/sweeps/NAME.json maps each point to its run id, written atomically after every
change; a lock keeps a second kit from running the same sweep."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from kit.errors import KitError, WorkspaceError
from kit.fileio import atomic_write_json
from kit.runs import store
from kit.runs.store import RunRecord
from kit.workspace.layout import Workspace


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


def current_record(ws: Workspace, point: Point) -> RunRecord | None:
    """The record of the point's run; None before it has one, or when its record cannot be read."""
    if not point.run:
        return None
    try:
        return store.load(ws, point.run)
    except KitError:
        return None
