"""Following a run: off a terminal a wait prints where the run is at least every KIT_PROGRESS_EVERY seconds (from
the kernel's own step lines), `kit status` of a running run shows its last step, and Ctrl-C stops kit following
(exit 130, the run goes on, the command that follows it again), never "failed"."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from kit.runs.follow import last_progress
from runtime.environment import step_line
from tests.conftest import run_kit
from tests.helpers import RERUN_TEMPLATE, install_template

# Logs four training steps as the train kernel does (runtime.environment.step_line), `pause` seconds apart.
STEPS_TEMPLATE = '''"""Test kernel: training steps logged slowly."""

CONFIG: dict = {}  # kit:config

import csv
import json
import os
import time

from runtime.environment import step_line
from runtime.paths import competition_dir, working_dir

def main(config):
    pause = float(os.environ.get("KIT_TEST_STEP_SECONDS", "1"))
    for s in range(1, 5):
        time.sleep(pause)
        print(step_line(s, 4, s, 0.7 - 0.05 * s, 1e-4, 900, pause * s), flush=True)
    with open(competition_dir(config["competition"]) / "test.csv", newline="") as fh:
        ids = [row["ID"] for row in csv.DictReader(fh)]
    with open(working_dir() / "submission.csv", "w") as fh:
        fh.write("ID,is_correct\\n" + "".join(f"{i},False\\n" for i in ids))
    (working_dir() / "metrics.json").write_text(json.dumps({"val_accuracy": 0.6, "val_rows": 10}))

if __name__ == "__main__":
    main(CONFIG)
'''

PROGRESS_LINE = re.compile(r"^run-1  running\s+\d\d:\d\d  step (\d)/4, loss 0\.\d{4}, \d+\.\d rows/s, training (about \d\d:\d\d left|done)$", re.M)


def test_the_kernels_step_line_is_read_back():
    progress = last_progress("loading\n" + step_line(3, 40, 13, 0.61234, 2e-4, 812.4, 30.0) + "\nnext\n", {"batch_size": 8, "grad_accum": 2})
    assert (progress.step, progress.steps, progress.loss, progress.elapsed) == (3, 40, 0.6123, 30.0)
    assert progress.rows_per_second == 3 * 16 / 30.0 and progress.seconds_left == 10.0 * 37
    assert progress.line() == "step 3/40, loss 0.6123, 1.6 rows/s, training about 06:10 left"
    assert last_progress("no steps yet\n", {}) is None


def test_a_wait_off_a_terminal_prints_progress_lines(workspace, kit_cli, monkeypatch):
    install_template(workspace, STEPS_TEMPLATE)
    monkeypatch.setenv("KIT_PROGRESS", "0")
    monkeypatch.setenv("KIT_PROGRESS_EVERY", "0.5")
    monkeypatch.setenv("KIT_TEST_STEP_SECONDS", "1.5")
    result = kit_cli("push-kernel", "train", "--wait")
    assert result.exit_code == 0, result.stderr
    steps = [int(m.group(1)) for m in PROGRESS_LINE.finditer(result.stderr)]
    assert len(steps) >= 3 and steps == sorted(steps) and steps[-1] >= 3, result.stderr
    assert "run-1 complete after" in result.stderr


def test_without_the_setting_lines_come_a_minute_apart(workspace, kit_cli, monkeypatch):
    install_template(workspace, STEPS_TEMPLATE)
    monkeypatch.setenv("KIT_PROGRESS", "0")
    monkeypatch.delenv("KIT_PROGRESS_EVERY", raising=False)
    monkeypatch.setenv("KIT_TEST_STEP_SECONDS", "0.2")
    result = kit_cli("push-kernel", "train", "--wait")
    assert result.exit_code == 0 and not PROGRESS_LINE.search(result.stderr)  # a short run: only its state changes


def test_status_of_a_running_run_shows_its_last_step(workspace, kit_cli, monkeypatch):
    install_template(workspace, STEPS_TEMPLATE)
    monkeypatch.setenv("KIT_TEST_STEP_SECONDS", "2")
    assert kit_cli("push-kernel", "train", "--detach").exit_code == 0
    log = workspace / ".kit" / "local" / "run-1" / "log.txt"
    deadline = time.monotonic() + 60
    while not (log.is_file() and "step 1/4" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    shown = kit_cli("status", "run-1")
    assert re.search(r"running .* step [1-4]/4, loss 0\.\d{4}, [\d.]+ rows/s, training", shown.stdout), shown.stdout
    listing = kit_cli("status")
    assert "step " in listing.stdout and "rows/s" in listing.stdout
    data = json.loads(kit_cli("status", "run-1", "--json").stdout)[0]
    if data["status"] == "running":
        assert data["progress"]["steps"] == 4 and isinstance(data["progress"]["loss"], float)
    assert kit_cli("wait", "run-1").exit_code == 0


# -- Ctrl-C --------------------------------------------------------------------------------------------------------


class Kit:
    """`kit ARGS` as its own process, its stderr collected line by line, so that a test can press Ctrl-C on cue."""

    def __init__(self, root: Path, *args: str, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen([sys.executable, "-m", "kit", *args], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, "KIT_PROGRESS": "0", **(env or {})})
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stderr.readline, "")), daemon=True)
        self.reader.start()

    def wait_for(self, text: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline and self.proc.poll() is None, "".join(self.lines)
            time.sleep(0.1)

    def ctrl_c(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=60)
        self.reader.join(timeout=10)
        return code, "".join(self.lines)


def test_ctrl_c_stops_following_not_the_run(workspace, monkeypatch):
    install_template(workspace, STEPS_TEMPLATE)
    kit = Kit(workspace, "push-kernel", "train", "--wait", env={"KIT_TEST_STEP_SECONDS": "1.5"})
    kit.wait_for("run-1  running")
    code, err = kit.ctrl_c()
    assert code == 130, err
    assert "run-1: kit stopped following it after" in err and "the run goes on" in err
    assert "hint: kit wait run-1 follows it again" in err
    assert "failed" not in err and "error:" not in err and "Traceback" not in err
    monkeypatch.setenv("KIT_TEST_STEP_SECONDS", "1.5")
    again = run_kit("wait", "run-1")  # the run went on and finishes
    assert again.exit_code == 0 and "run-1 complete" in again.stderr


def test_ctrl_c_during_a_sweep_exits_130_and_leaves_its_runs(workspace):
    install_template(workspace, STEPS_TEMPLATE)
    (workspace / "sweep.toml").write_text('name = "s"\nkernel = "train"\n[grid]\nseed = [1, 2]\n')
    kit = Kit(workspace, "sweep", "sweep.toml", "--yes", env={"KIT_TEST_STEP_SECONDS": "2"})
    kit.wait_for("pushed")
    code, err = kit.ctrl_c()
    assert code == 130, err
    assert "sweep s: kit stopped it after" in err and "runs already pushed go on" in err and "hint: kit sweep sweep.toml resumes it" in err
    assert "error:" not in err and "Traceback" not in err
    run_kit("cancel", "run-1")


def test_status_mentions_a_submission_whose_wait_was_interrupted(workspace, monkeypatch):
    assert run_kit("practice", "init", "--code", "--force", "--train-rows", "200", "--test-rows", "40", "--rerun-limit", "20").exit_code == 0
    install_template(workspace, RERUN_TEMPLATE)
    assert run_kit("push-kernel", "train", "--set", "enable_internet=false", "--wait").exit_code == 0
    kit = Kit(workspace, "submit", "run-1", "--yes", "--wait", env={"KIT_TEST_RERUN": "slow"})  # the rerun takes its time
    kit.wait_for("waiting for its score")
    code, err = kit.ctrl_c()
    assert code == 130, err
    assert "run-1 submission 1: kit stopped waiting for its score after" in err and "the submission was made" in err
    assert "hint: kit scores fetches its score" in err
    assert "failed" not in err and "error:" not in err
    shown = run_kit("status")
    assert shown.exit_code == 0
    assert "submission 1 of " in shown.stdout and "is pending (not scored yet): kit scores fetches its score" in shown.stdout


def test_ctrl_c_stops_following_a_log_not_the_run(workspace):
    install_template(workspace, STEPS_TEMPLATE)
    assert run_kit("push-kernel", "train", "--detach").exit_code == 0
    kit = Kit(workspace, "logs", "run-1", "-f", env={"KIT_TEST_STEP_SECONDS": "1.5"})
    time.sleep(2)
    code, err = kit.ctrl_c()
    assert code == 130, err
    assert "run-1: kit stopped following its log; the run goes on" in err and "hint: kit logs run-1 -f follows it again" in err
    assert "error:" not in err and "Traceback" not in err
    run_kit("cancel", "run-1")
