"""Sweeps on the local backend: spec checks, expansion, the concurrency cap, leaderboard rows, resuming after an
interruption without pushing a run twice, status, and submitting the best runs."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.backends.base import Backend, Quota
from kit.errors import ConfigError
from kit.runs import store
from kit.runs.sweep.spec import Range, load_spec
from kit.workspace import layout
from tests.conftest import run_kit
from tests.helpers import install_template

# A train kernel that takes `warmup_steps / 10` seconds, records when it ran, and scores by its settings, so a test
# knows which runs overlapped and which one is best.
TIMED_TEMPLATE = '''"""Test kernel: sleep, then write outputs."""

CONFIG: dict = {}  # kit:config

import csv
import json
import time

from runtime.paths import competition_dir, working_dir

def main(config):
    started = time.time()
    time.sleep(config["warmup_steps"] / 10)
    with open(competition_dir(config["competition"]) / "test.csv", newline="") as fh:
        ids = [row["ID"] for row in csv.DictReader(fh)]
    with open(working_dir() / "submission.csv", "w") as fh:
        fh.write("ID,is_correct\\n" + "".join(f"{i},False\\n" for i in ids))
    accuracy = 0.5 + config["learning_rate"] * 100 + config["r"] / 1000
    (working_dir() / "metrics.json").write_text(json.dumps(
        {"val_accuracy": accuracy, "val_rows": 10, "kernel_started": started, "kernel_finished": time.time()}))

if __name__ == "__main__":
    main(CONFIG)
'''

GRID = """\
name = "lr-rank"
kernel = "train"

[base]
train_rows = 100
warmup_steps = {warmup}

[grid]
learning_rate = [1e-4, 2e-4]
r = [8, 16]
"""


@pytest.fixture
def sweep_ws(workspace: Path) -> Path:
    install_template(workspace, TIMED_TEMPLATE)
    return workspace


def write_spec(root: Path, warmup: int = 12, text: str | None = None) -> Path:
    path = root / "sweep.toml"
    path.write_text(text if text is not None else GRID.format(warmup=warmup))
    return path


def sweep_records(root: Path, name: str = "lr-rank") -> list[store.RunRecord]:
    return [r for r in store.all_runs(layout.load(root)) if r.tags.get("sweep") == name]


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at once; an interval ending when another starts does not overlap it."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def iso_seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


# ------------------------------------------------------------------------------------------------ the spec


def test_grid_and_random_specs_expand_reproducibly(tmp_path):
    grid = load_spec(write_spec(tmp_path, 1))
    assert grid.points() == [
        {"learning_rate": 1e-4, "r": 8}, {"learning_rate": 1e-4, "r": 16}, {"learning_rate": 2e-4, "r": 8}, {"learning_rate": 2e-4, "r": 16},
    ]
    assert grid.base == {"train_rows": 100, "warmup_steps": 1}
    text = """name = "rnd"\n[random]\ncount = COUNT\nseed = 7\nlearning_rate = { min = 1e-5, max = 1e-3, log = true }\nr = [8, 16, 32]\nwarmup_steps = { min = 0, max = 20 }\n"""
    six = load_spec(write_spec(tmp_path, text=text.replace("COUNT", "6")))
    assert isinstance(six.random["learning_rate"], Range)
    points = six.points()
    assert points == six.points() and len(points) == 6
    assert all(1e-5 <= p["learning_rate"] <= 1e-3 and p["r"] in (8, 16, 32) and isinstance(p["warmup_steps"], int) for p in points)
    assert len({p["learning_rate"] for p in points}) == 6
    # more samples keep the earlier ones, so a sweep can grow
    assert load_spec(write_spec(tmp_path, text=text.replace("COUNT", "9"))).points()[:6] == points


@pytest.mark.parametrize("text, message", [
    ('name = "x"\n[grid]\nlearning_rat = [1e-4]\n', "unknown setting 'learning_rat'"),
    ('name = "x"\n[grid]\nr = [8, "big"]\n', "bad value 'big' for 'r'"),
    ('name = "x"\n[base]\nlr_scheduler = "cosin"\n', "bad value 'cosin' for 'lr_scheduler'"),
    ('name = "x"\nconcurency = 2\n', "unknown key 'concurency'"),
    ('name = "a b"\n', "not a plain name"),
    ('name = "x"\n[grid]\nr = [8]\n[random]\ncount = 2\nlearning_rate = [1e-4]\n', "both [grid] and [random]"),
    ('name = "x"\n[random]\ncount = 2\nlearning_rate = { min = 0, max = 1e-3, log = true }\n', "min must be above 0"),
    ('name = "x"\n[base]\nr = 8\n[grid]\nr = [8, 16]\n', "'r' is both in [base] and varied"),
])
def test_bad_specs_name_the_problem(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_spec(write_spec(tmp_path, text=text))
    assert message in info.value.message and info.value.hint


def test_plan_is_shown_and_nothing_runs_without_yes(sweep_ws):
    spec = write_spec(sweep_ws, 1)
    dry = run_kit("sweep", str(spec), "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "sweep lr-rank: 4 runs of train on local, 1 at a time; 4 to push" in dry.stderr
    assert "learning_rate=0.0002 r=16" in dry.stderr and "no quota" in dry.stderr
    refused = run_kit("sweep", str(spec), input="n\n")
    assert refused.exit_code == 1 and "nothing pushed" in refused.stderr
    assert not sweep_records(sweep_ws) and not (sweep_ws / ".kit" / "sweeps" / "lr-rank.json").exists()


def _spends_nothing(*args, **kwargs):
    raise AssertionError("planning a sweep must not push, poll or submit anything")


def contract_only_backend(**capabilities):
    """A Backend that implements only the abstract methods (each fails the test if a plan calls it) plus the given
    capabilities; named "local" so that the configs resolve as on this machine."""
    body = {"name": "local", "warnings": [], **dict.fromkeys(Backend.__abstractmethods__, _spends_nothing), **capabilities}
    return type("ContractOnlyBackend", (Backend,), body)()


def test_a_backend_without_quota_plans_with_no_quota_and_its_own_concurrency(sweep_ws):
    from kit.runs.sweep.plan import plan as plan_sweep

    ws = layout.load(sweep_ws)
    spec = load_spec(write_spec(sweep_ws, 1))
    bare = plan_sweep(ws, contract_only_backend(), spec)
    # no has_quota: quota() is never asked (the default would refuse), and nothing is over a quota it does not have
    assert bare.gpu_hours_left is None and not bare.over_quota
    assert bare.concurrency == 1 and len(bare.to_run) == 4

    metered = contract_only_backend(
        has_quota=True, max_concurrent_kernels=3,
        quota=lambda self: Quota(gpu_hours_used=9.5, gpu_hours_total=10.0, refresh="", submissions_left_today=None),
    )
    planned = plan_sweep(ws, metered, dataclasses.replace(spec, gpu_hours_per_run=0.25))
    assert planned.gpu_hours_left == 0.5 and planned.hours == 1.0 and planned.over_quota
    assert planned.concurrency == 3


# ------------------------------------------------------------------------------------------------ running


def test_four_runs_two_at_a_time_all_on_the_leaderboard(sweep_ws):
    result = run_kit("sweep", str(write_spec(sweep_ws, 12)), "--concurrency", "2", "--yes", "--poll", "0.1")
    assert result.exit_code == 0, result.stderr
    records = sweep_records(sweep_ws)
    assert [r.id for r in records] == ["run-1", "run-2", "run-3", "run-4"]
    assert all(r.status.value == "complete" and r.tags["sweep"] == "lr-rank" for r in records)
    assert sorted(r.tags["sweep_point"] for r in records) == ["1", "2", "3", "4"]
    # From the run records (to the second: a run that ends in the second another starts is not counted twice) ...
    assert max_overlap([(iso_seconds(r.started), iso_seconds(r.finished)) for r in records]) <= 2
    # ... and from the kernels' own clocks, to the microsecond: two at once, never three.
    metrics = [json.loads((sweep_ws / "submissions" / r.id / "metrics.json").read_text()) for r in records]
    kernel_times = [(m["kernel_started"], m["kernel_finished"]) for m in metrics]
    assert max_overlap(kernel_times) == 2
    with open(sweep_ws / "leaderboard.csv", newline="") as fh:
        rows = {row["run"]: row for row in csv.DictReader(fh)}
    assert set(rows) == {"run-1", "run-2", "run-3", "run-4"}
    assert {rows[r]["sweep"] for r in rows} == {"lr-rank"}
    assert rows["run-4"]["learning_rate"] == "0.0002" and rows["run-4"]["r"] == "16" and rows["run-4"]["val_accuracy"]
    assert "run-4" in result.stdout and "0.5360" in result.stdout  # the summary table


def test_local_default_is_one_at_a_time(sweep_ws):
    result = run_kit("sweep", str(write_spec(sweep_ws, 3)), "--yes", "--poll", "0.05")
    assert result.exit_code == 0, result.stderr
    metrics = [json.loads((sweep_ws / "submissions" / f"run-{i}" / "metrics.json").read_text()) for i in range(1, 5)]
    assert max_overlap([(m["kernel_started"], m["kernel_finished"]) for m in metrics]) == 1


def test_a_killed_sweep_resumes_without_pushing_a_run_twice(sweep_ws):
    spec = write_spec(sweep_ws, 15)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kit", "sweep", str(spec), "--yes", "--concurrency", "2", "--poll", "0.1"],
        cwd=sweep_ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while len(sweep_records(sweep_ws)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up: the state file and records are all there is
    proc.wait()
    before = {r.id for r in sweep_records(sweep_ws)}
    assert 2 <= len(before) < 4

    resumed = run_kit("sweep", str(spec), "--yes", "--concurrency", "2", "--poll", "0.1")
    assert resumed.exit_code == 0, resumed.stderr
    assert "to push" in resumed.stderr
    records = sweep_records(sweep_ws)
    assert len(records) == 4 and sorted(r.tags["sweep_point"] for r in records) == ["1", "2", "3", "4"]
    assert before <= {r.id for r in records}
    assert all(r.status.value == "complete" for r in records)
    for r in records:  # each run's kernel ran exactly once
        log = (sweep_ws / ".kit" / "local" / r.id / "log.txt")
        state = json.loads((sweep_ws / ".kit" / "local" / r.id / "state.json").read_text())
        assert state["status"] == "complete" and log.exists()
    state = json.loads((sweep_ws / ".kit" / "sweeps" / "lr-rank.json").read_text())
    assert sorted(p["run"] for p in state["points"]) == sorted(r.id for r in records)
    assert all(p["pulled"] for p in state["points"])

    again = run_kit("sweep", str(spec), "--yes", "--poll", "0.1")
    assert again.exit_code == 0 and "0 to push" in again.stderr
    assert len(sweep_records(sweep_ws)) == 4


def test_a_sweep_stopped_between_creating_and_pushing_a_run_pushes_that_run(sweep_ws):
    """Interrupted right after run-N was created (its id saved) and before its push: the resume pushes run-N."""
    from kit.backends.registry import get_backend
    from kit.runs.sweep import runner
    from kit.runs.sweep.plan import plan as plan_sweep

    ws = layout.load(sweep_ws)
    backend = get_backend(ws)
    plan = plan_sweep(ws, backend, load_spec(write_spec(sweep_ws, 1)), concurrency=2)

    def stop_after_first_create(event):
        if event.kind == "created":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run(ws, backend, plan, runner.SweepTiming(0.05, 0.05), on_event=stop_after_first_create)
    record = store.load(ws, "run-1")
    assert record.remote == "" and record.status.value == "queued"
    assert run_kit("status").exit_code == 0  # a created, unstarted run does not break kit status

    events = []
    plan = plan_sweep(ws, backend, load_spec(write_spec(sweep_ws, 1)), concurrency=2)
    assert [p.record.id if p.record else None for p in plan.to_run] == ["run-1", None, None, None]
    runner.run(ws, backend, plan, runner.SweepTiming(0.05, 0.05), on_event=events.append)
    assert [r.id for r in sweep_records(sweep_ws)] == ["run-1", "run-2", "run-3", "run-4"]
    assert [e.record.id for e in events if e.kind == "pushed"] == ["run-1", "run-2", "run-3", "run-4"]


def test_a_run_pushed_but_not_recorded_is_adopted_not_pushed_again(sweep_ws):
    """Killed after the backend started the run but before its remote was saved: the resume finds it running."""
    from kit.backends.registry import get_backend
    from kit.runs.lifecycle import create_run
    from kit.runs.sweep import runner
    from kit.runs.sweep.plan import plan as plan_sweep

    ws = layout.load(sweep_ws)
    backend = get_backend(ws)
    spec = load_spec(write_spec(sweep_ws, 1))
    record = create_run(ws, backend, "train", {**spec.base, **spec.points()[0]}, tags={"sweep": "lr-rank", "sweep_point": "1"})
    backend.push(record, store.run_dir(ws, record.id) / "kernel")  # the push went out; the record never heard
    events = []
    runner.run(ws, backend, plan_sweep(ws, backend, spec, concurrency=2), runner.SweepTiming(0.05, 0.05), on_event=events.append)
    assert [(e.kind, e.record.id) for e in events if e.kind in ("resumed", "pushed")][:2] == [("resumed", "run-1"), ("resumed", "run-1")]
    assert [e.record.id for e in events if e.kind == "pushed"] == ["run-2", "run-3", "run-4"]
    assert len(sweep_records(sweep_ws)) == 4


def test_a_changed_plan_is_refused_and_a_running_sweep_is_not_run_twice(sweep_ws):
    from kit.runs.sweep.state import exclusive

    spec = write_spec(sweep_ws, 1)
    assert run_kit("sweep", str(spec), "--yes", "--poll", "0.05").exit_code == 0
    spec.write_text(GRID.format(warmup=1).replace("r = [8, 16]", "r = [8, 32]"))
    changed = run_kit("sweep", str(spec), "--yes")
    assert changed.exit_code == 1 and "points this spec no longer has" in changed.stderr
    ws = layout.load(sweep_ws)
    with exclusive(ws, "lr-rank"):
        spec.write_text(GRID.format(warmup=1))
        busy = run_kit("sweep", str(spec), "--yes")
    assert busy.exit_code == 1 and "already running in another kit" in busy.stderr


# ------------------------------------------------------------------------------------------------ status and submit


def test_status_and_submit_the_top_k_within_the_day(sweep_ws):
    assert run_kit("sweep", str(write_spec(sweep_ws, 1)), "--yes", "--concurrency", "2", "--poll", "0.05").exit_code == 0
    status = run_kit("sweep", "status", "lr-rank")
    assert status.exit_code == 0, status.stderr
    assert "4 complete" in status.stderr and "0.5360" in status.stdout
    assert run_kit("sweep", "status").stdout.strip() == "lr-rank\t4/4 done"

    # The practice competition allows 3 a day; spend 2 by hand first, so one is left.
    for run_id in ("run-1", "run-2"):
        assert run_kit("submit", run_id, "--yes").exit_code == 0
    result = run_kit("sweep", "submit", "lr-rank", "--top", "3", "--yes")
    assert result.exit_code == 0, result.stderr
    # best first: run-4 (lr 2e-4, r 16), run-3 (lr 2e-4, r 8), run-2 (already submitted)
    assert result.stdout.count("submission") == 1 and result.stdout.startswith("run-4")
    assert "run-3    val_accuracy 0.5280  skip      no submissions left today" in result.stderr
    assert "run-2    val_accuracy 0.5260  submitted" in result.stderr
    ws = layout.load(sweep_ws)
    assert [len(store.load(ws, f"run-{i}").submissions) for i in range(1, 5)] == [1, 1, 0, 1]

    none_left = run_kit("sweep", "submit", "lr-rank", "--top", "3", "--yes")
    assert none_left.exit_code == 1 and "nothing to submit" in none_left.stderr
    assert sum(len(store.load(ws, f"run-{i}").submissions) for i in range(1, 5)) == 3


def test_unknown_sweep_names_the_command_that_starts_one(sweep_ws):
    result = run_kit("sweep", "status", "nope")
    assert result.exit_code == 1 and "no sweep 'nope'" in result.stderr and "kit sweep SPEC.toml" in result.stderr
