"""Sweeps against the Kaggle stand-in: the real CLI and client, a server that enforces two GPU sessions per account."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest

from kit.runs import store
from kit.workspace import layout
from tests.conftest import run_kit
from tests.kaggle_standin.fixtures import init_kaggle_workspace, serve
from tests.kaggle_standin.server import StandIn

LIMIT = "Maximum batch GPU session count of 2 reached"
FINAL = ("COMPLETE", "ERROR")


class CappedStandIn(StandIn):
    """Kaggle's rule: a push is refused while two GPU sessions run, counting one started outside kit. That one runs
    until the stand-in has refused `outside_refusals` pushes: an event, not a clock, so a loaded machine cannot let
    it end before kit's second push (which a one-second window once did)."""

    def __init__(self) -> None:
        super().__init__()
        self.outside_refusals = 0  # a session of the same account that kit did not start, running until this many refusals
        self.refused = 0
        self.most_at_once = 0
        self._cap_lock = threading.Lock()

    def active(self) -> int:
        mine = sum(1 for k in self.kernels.values() if k.walk[min(k.polls, len(k.walk) - 1)] not in FINAL)
        return mine + (1 if self.refused < self.outside_refusals else 0)

    def _rpc_SaveKernel(self, body):
        with self._cap_lock:
            if body["slug"] not in self.kernels and self.active() >= 2:
                self.refused += 1
                self.push_error = LIMIT
            try:
                answer = super()._rpc_SaveKernel(body)
            finally:
                self.push_error = ""
            self.most_at_once = max(self.most_at_once, self.active())
            return answer


@pytest.fixture
def standin() -> Iterator[CappedStandIn]:
    yield from serve(CappedStandIn())


@pytest.fixture
def kaggle_workspace(kaggle_env, standin, tmp_path, monkeypatch) -> Path:
    root = init_kaggle_workspace(tmp_path, monkeypatch)
    standin.default_walk = ["QUEUED", "RUNNING", "RUNNING", "RUNNING", "COMPLETE"]
    standin.default_files = {"submission.csv": b"ID,is_correct\n1,True\n2,False\n", "metrics.json": b'{"val_accuracy": 0.8}'}
    (root / "sweep.toml").write_text('name = "cap"\n[base]\ntrain_rows = 100\n[grid]\nlearning_rate = [1e-4, 2e-4, 3e-4, 4e-4]\n')
    return root


def test_session_cap_refusals_are_retried_not_failed(kaggle_workspace, standin):
    standin.outside_refusals = 2  # someone's notebook holds one of the two sessions until kit has been refused twice
    result = run_kit("sweep", "sweep.toml", "--yes", "--poll", "0.05", "--retry-after", "0.1")
    assert result.exit_code == 0, result.stderr
    assert "2 at a time" in result.stderr  # Kaggle's default
    assert standin.refused >= 2 and "waiting" in result.stderr and LIMIT in result.stderr
    assert standin.most_at_once <= 2
    records = store.all_runs(layout.load(kaggle_workspace))
    # every refused push was tried again as the same run: four runs, no failed ones left behind
    assert [r.id for r in records] == ["run-1", "run-2", "run-3", "run-4"]
    assert all(r.status.value == "complete" and r.message == "" for r in records)
    accepted = {c.json["slug"] for c in standin.calls("SaveKernel")}
    wsid = layout.load(kaggle_workspace).workspace_id
    assert accepted == {f"testuser/kit-math-grader-{wsid}-run-{i}" for i in range(1, 5)}
    assert len(standin.calls("SaveKernel")) == 4 + standin.refused
    assert all((kaggle_workspace / "submissions" / r.id / "metrics.json").is_file() for r in records)


def test_plan_shows_quota_and_refuses_to_overspend(kaggle_workspace, standin):
    dry = run_kit("sweep", "sweep.toml", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "20.0 h left this week" in dry.stderr and "about 2.1 GPU hours" in dry.stderr
    standin.gpu_seconds_used = 107_000  # 0.3 h left
    over = run_kit("sweep", "sweep.toml", "--yes")
    assert over.exit_code == 1 and "left this week" in over.stderr and "--allow-over-quota" in over.stderr
    assert not standin.calls("SaveKernel")


def test_a_run_pushed_before_kit_was_killed_is_adopted_not_pushed_twice(kaggle_workspace, standin):
    from kit.backends.registry import get_backend
    from kit.runs.lifecycle import create_run
    from kit.runs.sweep.spec import load_spec

    ws = layout.load(kaggle_workspace)
    backend = get_backend(ws)
    spec = load_spec(kaggle_workspace / "sweep.toml")
    record = create_run(ws, backend, "train", {**spec.base, **spec.points()[0]}, tags={"sweep": "cap", "sweep_point": "1"})
    backend.push(record, store.run_dir(ws, record.id) / "kernel")  # Kaggle started it; the record never heard
    result = run_kit("sweep", "sweep.toml", "--yes", "--poll", "0.05", "--retry-after", "0.1")
    assert result.exit_code == 0, result.stderr
    slugs = [c.json["slug"] for c in standin.calls("SaveKernel")]
    assert sorted(slugs) == [f"testuser/kit-math-grader-{ws.workspace_id}-run-{i}" for i in range(1, 5)]  # run-1 once
    assert store.load(ws, "run-1").remote == f"testuser/kit-math-grader-{ws.workspace_id}-run-1"
