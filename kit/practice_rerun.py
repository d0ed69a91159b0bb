"""A practice code competition's rerun of a submitted kernel: `python -m kit.practice_rerun COMPETITION_DIR REF`.

It does what Kaggle does with a code submission, as far as this machine can: the kernel's script, exactly as it ran
for the run, runs again in a fresh Kaggle tree (reruns/REF/ in the competition's folder) whose competition folder
holds the hidden test.csv in place of the visible one, with the run's attached sources, KAGGLE_IS_COMPETITION_RERUN
set, the internet off (a network namespace of its own where `unshare` allows one, else proxies that lead nowhere
and the Hugging Face hub offline), and the rerun time limit; then the file it wrote is scored against the hidden
solution and the pending submission completed. It runs detached, so `kit submit` returns while the rerun goes on,
as on Kaggle.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from kit.errors import SubmissionError

RERUNS = "reruns"
LOG_NAME = "log.txt"
NOWHERE = "http://127.0.0.1:9"  # the discard port: a proxy that answers nothing


def rerun_dir(comp, ref: str) -> Path:
    """The rerun's own Kaggle tree, kernel and log."""
    return comp.directory / RERUNS / ref


def lay_out(comp, ref: str, kernel_dir: Path, sources: dict[str, Path]) -> Path:
    """Write the rerun's tree: the kernel, the competition folder with the hidden test rows, the attached sources."""
    session = rerun_dir(comp, ref)
    if session.exists():
        shutil.rmtree(session)
    root = session / "kaggle"
    folder = root / "input" / "competitions" / comp.slug
    folder.mkdir(parents=True)
    hidden = {"test.csv", "sample_submission.csv"}
    for item in comp.data_dir.iterdir():
        if item.name not in hidden:
            os.symlink(item.resolve(), folder / item.name)
    for name in sorted(hidden):  # the hidden rows replace the visible ones; the solution stays out of reach
        shutil.copy2(comp.directory / "hidden" / name, folder / name)
    for name, path in sources.items():
        os.symlink(Path(path).resolve(), root / "input" / name)
    (root / "working").mkdir()
    shutil.copytree(kernel_dir, session / "kernel")
    return session


def start(comp, ref: str) -> None:
    """Start the rerun as a detached process; it outlives the `kit submit` that started it."""
    session = rerun_dir(comp, ref)
    subprocess.Popen(
        [sys.executable, "-m", "kit.practice_rerun", str(comp.directory), ref],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(session / "runner.err", "wb"),
        cwd=session,
    )


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
    from kit.backends.local_runner import last_error_line

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
    from kit.practice import PracticeCompetition

    comp = PracticeCompetition(directory)
    session = rerun_dir(comp, ref)
    record = next(r for r in comp._read_records() if r["ref"] == ref)
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
