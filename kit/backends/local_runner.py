"""The detached process that runs one local kernel and records its state: `python -m kit.backends.local_runner
SESSION SCRIPT`. It outlives the `kit` command that started it, so `--detach` works."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from kit.backends.local import LOG_NAME, STATE_NAME
from kit.fileio import atomic_write_json
from kit.progress import human_bytes
from kit.runs.store import now


def detect_gpu() -> str:
    """The first GPU's name as nvidia-smi reports it, or "cpu"."""
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
            names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
            if names:
                return f"{names[0]} x{len(names)}" if len(names) > 1 else names[0]
        except (OSError, subprocess.SubprocessError):
            pass
    return "cpu"


def last_error_line(log: Path) -> str:
    """The line of the log a person reads first on a failure: the exception line of the last traceback."""
    try:
        lines = [line.rstrip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return ""
    for line in reversed(lines):
        if not line.startswith((" ", "\t")) and ("Error" in line or "Exception" in line or line.startswith("KeyboardInterrupt")):
            return line[:300]
    return lines[-1][:300] if lines else ""


def killed_message(signum: int, peak_bytes: int | None) -> str:
    """What happened to a kernel a signal ended, in words. SIGKILL is what the kernel's out-of-memory killer sends,
    so it is named as the likely cause; the log's last lines are what the kernel was doing, not why it stopped."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    peak = f" (peak memory {human_bytes(peak_bytes)})" if peak_bytes else ""
    likely = ", likely out of memory: the system's out-of-memory killer sends it" if signum == signal.SIGKILL else ""
    return f"the kernel was killed by signal {signum} ({name}){likely}{peak}"


def children_peak_bytes() -> int | None:
    """The largest resident size any finished child of this process reached (the kernel), where the system says."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


# What a kernel never sees of the environment it was started from: Kaggle's credentials and settings (KAGGLE_KEY,
# KAGGLE_API_TOKEN, KAGGLE_CONFIG_DIR, ...), and anything named like a secret (HF_TOKEN, OPENAI_API_KEY,
# AWS_SECRET_ACCESS_KEY, DB_PASSWORD, ...). A kernel is code a template or a workspace may have changed; on Kaggle
# it gets no credentials either.
SECRET_NAME = re.compile(r"^KAGGLE_|TOKEN|SECRET|PASSW|CREDENTIAL|(^|_)(API)?KEYS?($|_)|APIKEY", re.IGNORECASE)


def kernel_environment(environ: dict[str, str]) -> dict[str, str]:
    """`environ` without credentials (SECRET_NAME): what a local kernel is started with."""
    return {name: value for name, value in environ.items() if not SECRET_NAME.search(name)}


def main(session: Path, script: str) -> int:
    state = {"status": "running", "started": now(), "runner_pid": os.getpid(), "gpu": detect_gpu()}
    env = dict(kernel_environment(dict(os.environ)), KIT_KAGGLE_ROOT=str(session / "kaggle"), PYTHONUNBUFFERED="1")
    if (session / "cancel").exists():
        atomic_write_json(session / STATE_NAME, {**state, "status": "cancelled", "finished": now()})
        return 0
    with open(session / LOG_NAME, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, str(session / "kernel" / script)],
            cwd=session / "kaggle" / "working",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        state["kernel_pid"] = proc.pid
        atomic_write_json(session / STATE_NAME, state)
        # If the runner itself is terminated, take the kernel down with it rather than orphan it.
        signal.signal(signal.SIGTERM, lambda *_: os.killpg(proc.pid, signal.SIGTERM))
        code = proc.wait()
    if (session / "cancel").exists():
        final = {"status": "cancelled", "message": "cancelled by the user"}
    elif code == 0:
        final = {"status": "complete", "message": ""}
    elif code < 0:  # ended by a signal: the last line of its log says nothing about why
        final = {"status": "error", "message": killed_message(-code, children_peak_bytes())}
    else:
        final = {"status": "error", "message": last_error_line(session / LOG_NAME) or f"kernel exited with code {code}"}
    atomic_write_json(session / STATE_NAME, {**state, **final, "returncode": code, "finished": now()})
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
