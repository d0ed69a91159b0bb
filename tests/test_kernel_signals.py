"""A kernel killed by a signal (SIGKILL, as the out-of-memory killer sends) is reported as killed, not as failing
with the last warning its log happens to end with; the log's tail stays as context."""

from __future__ import annotations

import json
import os
import signal
import time

from tests.helpers import install_template

# Logs a warning (the kind transformers prints while loading), holds some memory, then waits to be killed.
WARN_THEN_WAIT = '''"""Test kernel: a warning, then a long wait."""

CONFIG: dict = {}  # kit:config

import time

def main(config):
    held = bytearray(64 * 1024 * 1024)  # a peak the runner can report
    print("Failed to load CPU gemm_4bit_forward from kernels-community: Set trust_remote_code=True", flush=True)
    print("loaded", flush=True)
    time.sleep(120)

if __name__ == "__main__":
    main(CONFIG)
'''


def _kill_kernel_when_loaded(workspace, run_id: str, signum: int) -> None:
    session = workspace / ".kit" / "local" / run_id
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        log = session / "log.txt"
        if log.is_file() and "loaded" in log.read_text():
            break
        time.sleep(0.2)
    state = json.loads((session / "state.json").read_text())
    os.kill(state["kernel_pid"], signum)


def test_a_kernel_killed_by_sigkill_is_reported_as_killed(workspace, kit_cli):
    install_template(workspace, WARN_THEN_WAIT)
    assert kit_cli("push-kernel", "train", "--detach").exit_code == 0
    _kill_kernel_when_loaded(workspace, "run-1", signal.SIGKILL)
    result = kit_cli("wait", "run-1")
    assert result.exit_code == 1
    error = next(line for line in result.stderr.splitlines() if line.startswith("error: "))
    assert error.startswith("error: run-1 failed: the kernel was killed by signal 9 (SIGKILL), likely out of memory")
    assert "peak memory" in error and "MB" in error
    assert "trust_remote_code" not in error
    assert "run-1's log, last lines (context):\nFailed to load CPU gemm_4bit_forward" in result.stderr  # the tail stays
    status = kit_cli("status", "run-1")
    assert "killed by signal 9 (SIGKILL), likely out of memory" in status.stdout
    record = json.loads((workspace / "submissions" / "run-1" / "run.json").read_text())
    assert record["status"] == "error" and record["message"].startswith("the kernel was killed by signal 9")


def test_another_signal_is_named_without_guessing_memory(workspace, kit_cli):
    install_template(workspace, WARN_THEN_WAIT)
    assert kit_cli("push-kernel", "train", "--detach").exit_code == 0
    _kill_kernel_when_loaded(workspace, "run-1", signal.SIGTERM)
    result = kit_cli("wait", "run-1")
    assert result.exit_code == 1
    assert "error: run-1 failed: the kernel was killed by signal 15 (SIGTERM)" in result.stderr
    assert "out of memory" not in result.stderr
