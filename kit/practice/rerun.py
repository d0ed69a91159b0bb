"""A practice code competition's rerun of a submitted kernel: `python -m kit.practice.rerun COMPETITION_DIR REF`.

It does what Kaggle does with a code submission, as far as this machine can: the kernel's script, exactly as it ran
for the run, runs again in a fresh Kaggle tree (reruns/REF/ in the competition's folder) whose competition folder
holds the hidden test.csv in place of the visible one, with the run's attached sources, KAGGLE_IS_COMPETITION_RERUN
set, the internet off (a network namespace of its own where `unshare` allows one, else proxies that lead nowhere
and the Hugging Face hub offline), and the rerun time limit; then the file it wrote is scored against the hidden
solution and the pending submission completed. kit/practice/competition.py lays out the tree and starts this
module detached, so `kit submit` returns while the rerun goes on, as on Kaggle.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from kit.backends.local_runner import last_error_line
from kit.errors import SubmissionError
from kit.practice.competition import PracticeCompetition

LOG_NAME = "log.txt"
NOWHERE = "http://127.0.0.1:9"  # the discard port: a proxy that answers nothing


def offline_prefix() -> list[str]:
    """`unshare` arguments that give a command a network namespace of its own (no network at all), where allowed."""
    if not shutil.which("unshare"):
        return []
    for prefix in (["unshare", "-rn"], ["unshare", "-n"]):
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return []


def offline_env(session: Path, isolated: bool) -> dict[str, str]:
    """The rerun's environment: Kaggle's rerun flag, the tree moved to the session, and without a network namespace
    every way out closed that the kernel's libraries honour."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(KIT_KAGGLE_ROOT=str(session / "kaggle"), KAGGLE_IS_COMPETITION_RERUN="1", PYTHONUNBUFFERED="1")
    if not isolated:
        env.update(HTTP_PROXY=NOWHERE, HTTPS_PROXY=NOWHERE, http_proxy=NOWHERE, https_proxy=NOWHERE, NO_PROXY="",
                   HF_HUB_OFFLINE="1", PIP_NO_INDEX="1")
    return env


def run_kernel(session: Path, limit: float) -> str:
    """Run the session's kernel offline within `limit` seconds; "" when it ended well, else Kaggle's kind of error."""
    meta = json.loads((session / "kernel" / "kernel-metadata.json").read_text(encoding="utf-8"))
    script = session / "kernel" / meta.get("code_file", "kernel.py")
    prefix = offline_prefix()
    log_path = session / LOG_NAME
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [*prefix, sys.executable, str(script)],
            cwd=session / "kaggle" / "working",
            env=offline_env(session, isolated=bool(prefix)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return f"Notebook Timeout: the rerun passed the {limit:g} s limit (log: {log_path})"
    if code != 0:
        return f"Notebook Threw Exception: {last_error_line(log_path) or f'exit code {code}'} (log: {log_path})"
    return ""


def main(directory: Path, ref: str) -> int:
    """Rerun code submission `ref` of the competition in `directory`, score what it wrote and complete the record."""
    comp = PracticeCompetition(directory)
    session = comp.rerun_dir(ref)
    record = comp.rerun_record(ref)
    scores, error = None, ""
    try:
        error = run_kernel(session, comp.rerun_seconds)
        output = session / "kaggle" / "working" / record["file_name"]
        if not error and not output.is_file():
            error = f"Submission CSV Not Found: the kernel wrote no {record['file_name']} (log: {session / LOG_NAME})"
        if not error:
            scores = comp.score(output)
    except SubmissionError as exc:
        error = f"Submission Scoring Error: {exc.message}"
    except Exception as exc:  # the submission must not stay pending forever because the rerun itself broke
        error = f"rerun failed: {type(exc).__name__}: {exc}"
    comp.finish_rerun(ref, scores, error)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
