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
import tempfile
import threading
import time
from pathlib import Path

from kit.backends.local_runner import children_peak_bytes, killed_message, last_error_line
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
    if code < 0:  # ended by a signal (out of memory, most likely): its log's last line is not why
        return f"Notebook Threw Exception: {killed_message(-code, children_peak_bytes())} (log: {log_path})"
    if code != 0:
        return f"Notebook Threw Exception: {last_error_line(log_path) or f'exit code {code}'} (log: {log_path})"
    return ""


def serve_kernel(session: Path, comp: PracticeCompetition) -> str:
    """An inference-server rerun of the session's kernel on the practice competition's hidden rows (serve_hidden_rows);
    the gateway writes gateway/submission.parquet. "" when it ended well, else the error Kaggle would show."""
    meta = json.loads((session / "kernel" / "kernel-metadata.json").read_text(encoding="utf-8"))
    script = session / "kernel" / meta.get("code_file", "kernel.py")
    prefix = offline_prefix()
    folder = session / "gateway"
    folder.mkdir(exist_ok=True)
    rules = comp.server or {}
    error = serve_hidden_rows([*prefix, sys.executable, str(script)], session / "kaggle" / "working", offline_env(session, isolated=bool(prefix)),
                              comp.directory / "hidden" / "test.csv", float(rules["call_seconds"]), float(rules["startup_seconds"]),
                              comp.rerun_seconds, folder, session / LOG_NAME)
    return f"{error} (log: {session / LOG_NAME})" if error else ""


def serve_hidden_rows(command: list[str], cwd: Path, env: dict, test_csv: Path, call_seconds: float, startup_seconds: float,
                      limit: float, out: Path, log_path: Path) -> str:
    """Start the kernel (`command`, with KAGGLE_IS_COMPETITION_RERUN in `env`) and play the competition's gateway
    against it (kit/practice/gateway.py, in this process, holding `test_csv`: the kernel never sees it): it must be
    serving within `startup_seconds`, each call after the first answered within `call_seconds`, the whole rerun done
    within `limit`. The gateway writes `out`/submission.parquet. Returns "" when it ended well, else the gateway's
    error class and details, or Kaggle's "Notebook Timeout"."""
    from kit.practice.gateway import SOCKET_ENV, AnswerGateway, GatewayRuntimeError

    socket_dir = Path(tempfile.mkdtemp(prefix="kit-gw-"))  # short: a Unix socket's path has ~100 characters at most
    env = {**env, SOCKET_ENV: str(socket_dir / "s")}
    started = time.time()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    # Kaggle stops a rerun at its limit wherever it is; the gateway's calls then fail and the timeout is what counts.
    timer = threading.Timer(limit, lambda: _kill(proc))
    timer.start()
    error = ""
    try:
        gateway = AnswerGateway((str(test_csv),), deadline_seconds=call_seconds, startup_limit_seconds=startup_seconds, rerun=False)
        gateway.connect(env[SOCKET_ENV], alive=lambda: proc.poll() is None, started=started)
        gateway.run(out)
    except GatewayRuntimeError as gre:
        error = f"{gre.error_type.name}: {gre.error_details or ''}".rstrip(": ")
    finally:
        timer.cancel()
        try:  # a served kernel ends once the gateway is done; one that does not is stopped, as Kaggle stops the container
            proc.wait(timeout=max(1.0, min(30.0, limit - (time.time() - started))))
        except subprocess.TimeoutExpired:
            _kill(proc)
        shutil.rmtree(socket_dir, ignore_errors=True)
    if time.time() - started >= limit:
        return f"Notebook Timeout: the rerun passed the {limit:g} s limit"
    return error


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def main(directory: Path, ref: str) -> int:
    """Rerun code submission `ref` of the competition in `directory`, score what it wrote and complete the record."""
    comp = PracticeCompetition(directory)
    session = comp.rerun_dir(ref)
    record = comp.rerun_record(ref)
    scores, error = None, ""
    try:
        if comp.server:
            error = serve_kernel(session, comp)
            output = session / "gateway" / record["file_name"]
        else:
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
