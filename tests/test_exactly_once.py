"""Issue 14: every push and submission happens once or not at all, is credited to the right run, and survives
hangs, retries, Ctrl-C and parallel commands. The real CLI and the real kaggle client against the stand-in, which
injects the faults; each test asserts on the requests on the wire and the files kit wrote.

Each test is tagged with its fault class (`FAULT_CLASS`), and bench/fault_table.py turns a run of this module
into the table of bench/RESULTS.md.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import run_kit
from tests.kaggle_standin.fixtures import init_kaggle_workspace

SUBMISSION = b"ID,is_correct\n1,True\n2,False\n"


def kernel(root: Path, n: int = 1) -> str:
    """The Kaggle kernel of run-n (its slug carries the workspace's id)."""
    import tomllib

    return f"testuser/kit-math-grader-{tomllib.loads((root / 'kit.toml').read_text())['kaggle']['workspace_id']}-run-{n}"


def fault_class(number: int, scenario: str, sees: str):
    """Tag a test with the issue's fault class, the scenario it tries and what the user sees (bench/fault_table.py)."""
    return pytest.mark.fault(number=number, scenario=scenario, sees=sees)


@pytest.fixture
def ws(kaggle_env, standin, tmp_path, monkeypatch) -> Path:
    root = init_kaggle_workspace(tmp_path, monkeypatch)
    monkeypatch.setenv("KIT_KAGGLE_SETTLE", "0.5")
    standin.default_walk = ["COMPLETE"]
    standin.default_files = {"submission.csv": SUBMISSION, "metrics.json": b'{"val_accuracy": 0.8}'}
    standin.daily_limit = 100
    return root


def finished_runs(count: int) -> list[str]:
    """`count` runs pushed, complete and pulled: each has submissions/run-N/submission.csv."""
    ids = []
    for _ in range(count):
        pushed = run_kit("push-kernel", "train")
        assert pushed.exit_code == 0, pushed.stderr
        run_id = pushed.stdout.strip()
        pulled = run_kit("pull", run_id)
        assert pulled.exit_code == 0, pulled.stderr
        ids.append(run_id)
    return ids


def record(root: Path, run_id: str) -> dict:
    return json.loads((root / "submissions" / run_id / "run.json").read_text())


def refs(root: Path, run_id: str) -> list[str]:
    return [s["ref"] for s in record(root, run_id)["submissions"]]


def board(root: Path) -> dict[str, dict[str, str]]:
    with open(root / "leaderboard.csv", newline="") as fh:
        return {row["run"]: row for row in csv.DictReader(fh)}


def server_refs_of(standin, run_id: str) -> list[str]:
    """The refs of the submissions the stand-in holds for `run_id` (kit's descriptions start with its tag)."""
    return [str(s.ref) for s in standin.submissions if s.description.startswith(f"kit {run_id} ")]


def no_traceback(*results) -> None:
    for result in results:
        text = result.stderr if hasattr(result, "stderr") else result
        assert "Traceback" not in text, text


def assert_exactly_once(root: Path, standin, run_ids: list[str]) -> None:
    """Every run has exactly the submissions the server holds for it, each once; the leaderboard agrees."""
    rows = board(root)
    credited = []
    for run_id in run_ids:
        mine = refs(root, run_id)
        assert mine == server_refs_of(standin, run_id), (run_id, mine, [(s.ref, s.description) for s in standin.submissions])
        assert record(root, run_id)["pending"] is None
        credited += mine
        assert rows[run_id]["submission_ref"] == (mine[-1] if mine else "")
    assert len(credited) == len(set(credited))  # no ref credited twice, to one run or two


def kit_process(root: Path, *args: str) -> subprocess.Popen:
    """`kit ARGS` as its own process (the environment points it at the stand-in), for Ctrl-C and parallel runs."""
    return subprocess.Popen([sys.executable, "-m", "kit", *args], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "KIT_PROGRESS": "0"})


# -- 1. a score credited to the wrong run ------------------------------------------------------------------------


@fault_class(1, "503 (not processed) on run-2's CreateSubmission after run-1 submitted with the same -m", "run-2 gets its own new submission; run-1's is never credited to it")
def test_503_after_another_runs_same_message_is_not_credited_to_it(ws, standin):
    finished_runs(2)
    assert run_kit("submit", "run-1", "-m", "baseline", "--yes").exit_code == 0
    standin.inject("CreateSubmission", "status", status=503)
    result = run_kit("submit", "run-2", "-m", "baseline", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "asking kaggle whether the submission went through" in result.stderr
    assert len(standin.submissions) == 2 and len(standin.calls("CreateSubmission")) == 3
    assert refs(ws, "run-1") == ["41000001"] and refs(ws, "run-2") == ["41000002"]
    assert_exactly_once(ws, standin, ["run-1", "run-2"])
    assert [s.description for s in standin.submissions] == [
        f"kit run-1 {record(ws, 'run-1')['submissions'][0]['file_sha256'][:8]}: baseline",
        f"kit run-2 {record(ws, 'run-2')['submissions'][0]['file_sha256'][:8]}: baseline",
    ]


@fault_class(1, "503 after CreateSubmission was processed, same -m as another run", 'the submission is found by its run tag, file and time and recorded once')
def test_processed_503_is_found_and_credited_to_its_own_run(ws, standin):
    finished_runs(2)
    assert run_kit("submit", "run-1", "-m", "baseline", "--yes").exit_code == 0
    standin.inject("CreateSubmission", "status", status=503, apply=True)
    result = run_kit("submit", "run-2", "-m", "baseline", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "recorded" not in result.stderr or "submitted again" not in result.stderr
    assert len(standin.submissions) == 2 and len(standin.calls("CreateSubmission")) == 2
    assert refs(ws, "run-2") == ["41000002"]
    assert_exactly_once(ws, standin, ["run-1", "run-2"])


@fault_class(1, "--again with a lost answer: the old ref is never recorded twice", 'each --again records only the new ref')
def test_again_with_a_lost_answer_records_the_new_ref_only(ws, standin):
    finished_runs(1)
    assert run_kit("submit", "run-1", "--yes").exit_code == 0
    standin.inject("CreateSubmission", "hang", seconds=3)
    result = run_kit("submit", "run-1", "--yes", "--again")
    assert result.exit_code == 0, result.stderr
    assert refs(ws, "run-1") == ["41000001", "41000002"]
    standin.inject("CreateSubmission", "status", status=503)
    result = run_kit("submit", "run-1", "--yes", "--again")
    assert result.exit_code == 0, result.stderr
    assert refs(ws, "run-1") == ["41000001", "41000002", "41000003"]
    assert_exactly_once(ws, standin, ["run-1"])


# -- 2. double submissions ---------------------------------------------------------------------------------------


@fault_class(2, "CreateSubmission processed, answered after the client's timeout", '"asking kaggle whether the submission went through", then the one ref')
def test_slow_create_submission_is_found_not_sent_again(ws, standin):
    finished_runs(1)
    standin.inject("CreateSubmission", "hang", seconds=4)
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 0, result.stderr
    assert len(standin.calls("CreateSubmission")) == 1 and len(standin.submissions) == 1
    assert "went through" not in result.stdout and "submission 41000001" in result.stdout
    assert_exactly_once(ws, standin, ["run-1"])
    no_traceback(result)


@fault_class(2, "CreateSubmission that lands on the server after the client gave up", '"not there yet; looking again in 4s", then the one ref')
def test_submission_landing_after_the_timeout_is_waited_for(ws, standin, monkeypatch):
    finished_runs(1)
    monkeypatch.setenv("KIT_KAGGLE_SETTLE", "4")  # the window runs from the lost answer (the 1.5 s timeout): the request lands 1 s into it
    standin.inject("CreateSubmission", "late", seconds=2.5)
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "looking again" in result.stderr
    assert len(standin.calls("CreateSubmission")) == 1 and len(standin.submissions) == 1
    assert_exactly_once(ws, standin, ["run-1"])


@pytest.mark.parametrize("apply", [True, False], ids=["processed", "not-processed"])
@fault_class(2, "empty 200 answer to CreateSubmission", 'found when it happened, sent again when it did not; one submission')
def test_empty_answer_to_create_submission(ws, standin, apply):
    finished_runs(1)
    standin.inject("CreateSubmission", "empty", apply=apply)
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 0, result.stderr
    assert len(standin.submissions) == 1 and len(standin.calls("CreateSubmission")) == (1 if apply else 2)
    assert_exactly_once(ws, standin, ["run-1"])


@fault_class(2, "connection dropped after CreateSubmission was processed", 'found and recorded; one submission')
def test_dropped_connection_after_create_submission(ws, standin):
    finished_runs(1)
    standin.inject("CreateSubmission", "drop")
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 0, result.stderr
    assert len(standin.submissions) == 1 and len(standin.calls("CreateSubmission")) == 1
    assert_exactly_once(ws, standin, ["run-1"])


@fault_class(2, "CreateSubmission fails 5xx every time (not processed)", 'exit 1: "none went through ... nothing was spent"')
def test_submission_failing_every_time_spends_nothing_and_says_so(ws, standin):
    finished_runs(1)
    standin.inject("CreateSubmission", "status", status=500, times=10)
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 1
    assert "none went through" in result.stderr and "nothing was spent" in result.stderr
    assert standin.submissions == [] and refs(ws, "run-1") == [] and record(ws, "run-1")["pending"] is None
    no_traceback(result)


@fault_class(2, "Kaggle cannot be asked after a lost answer: unresolved, shown by kit status, resolved later", 'exit 1 naming `kit submit run-1`; the next kit status records it')
def test_unresolved_submission_is_shown_then_resolved(ws, standin):
    finished_runs(1)
    standin.inject("CreateSubmission", "hang", seconds=3)
    standin.inject("ListSubmissions", "status", status=503, times=3)
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 1 and "may have gone through" in result.stderr and "kit submit run-1" in result.stderr
    assert record(ws, "run-1")["pending"]["unresolved"]
    shown = run_kit("status")
    assert shown.exit_code == 0, shown.stderr
    assert "resolves it" not in shown.stdout  # Kaggle answers again: kit status resolved it on the way
    assert "went through as submission 41000001" in shown.stderr
    assert_exactly_once(ws, standin, ["run-1"])
    again = run_kit("submit", "run-1", "--yes")
    assert again.exit_code == 1 and "already submitted" in again.stderr
    assert len(standin.submissions) == 1


@fault_class(2, "kit status while Kaggle still cannot be asked: the intent and its command are listed", 'kit status: "unresolved submission ... kit submit run-1 resolves it"')
def test_status_lists_an_unresolved_intent_with_its_command(ws, standin):
    finished_runs(1)
    standin.inject("CreateSubmission", "hang", seconds=3)
    standin.inject("ListSubmissions", "status", status=503, times=6)
    assert run_kit("submit", "run-1", "--yes").exit_code == 1
    shown = run_kit("status", "run-1")
    assert shown.exit_code == 0, shown.stderr
    assert "unresolved submission of submission.csv" in shown.stdout and "kit submit run-1 resolves it" in shown.stdout
    resolved = run_kit("submit", "run-1", "--yes")
    assert resolved.exit_code == 0, resolved.stderr
    assert "recorded, not submitted again" in resolved.stderr
    assert len(standin.submissions) == 1 and len(standin.calls("CreateSubmission")) == 1
    assert_exactly_once(ws, standin, ["run-1"])


@fault_class(2, "five parallel `kit submit run-1 --yes`", 'one submits; four wait ("another kit command is working on it") then "already submitted"')
def test_parallel_submits_of_one_run_spend_one(ws, standin):
    finished_runs(1)
    standin.inject("CreateSubmission", "hang", seconds=1.0)  # keep the first one busy while the others queue
    procs = [kit_process(ws, "submit", "run-1", "--yes") for _ in range(5)]
    outs = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in outs)
    assert codes == [0, 1, 1, 1, 1], outs
    assert len(standin.submissions) == 1 and len(standin.calls("CreateSubmission")) == 1
    refused = [err for code, _, err in outs if code == 1]
    assert all("already submitted" in err for err in refused), refused
    no_traceback(*(err for _, _, err in outs))
    assert_exactly_once(ws, standin, ["run-1"])


STEPS = ["GetSubmissionLimits", "StartSubmissionUpload", "PUT", "CreateSubmission"]


@pytest.mark.parametrize("step", STEPS)
@fault_class(2, "Ctrl-C (SIGINT) at each step of `kit submit`, then the same command again", 'exit 130 "interrupted" with the command to run; the rerun records or sends exactly one')
def test_ctrl_c_at_each_step_then_rerun_spends_one(ws, standin, step):
    finished_runs(1)
    fault = standin.inject(step, "hang", seconds=30)  # the request is done; kit is interrupted while it waits
    proc = kit_process(ws, "submit", "run-1", "--yes")
    assert fault.served.wait(60), proc.communicate()
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    _, err = proc.communicate()
    assert code == 130, err
    assert "interrupted" in err and "Traceback" not in err
    standin.faults.clear()
    again = run_kit("submit", "run-1", "--yes")
    assert again.exit_code == 0, again.stderr
    assert len(standin.submissions) == 1
    assert len(standin.calls("CreateSubmission")) == (1 if step == "CreateSubmission" else len(standin.calls("CreateSubmission")))
    assert_exactly_once(ws, standin, ["run-1"])


@fault_class(2, "kit dies between Kaggle's answer and writing it down", "exit 130; the rerun finds the submission and records it, sends nothing")
def test_crash_after_the_answer_before_the_record_is_reconciled(ws, standin, monkeypatch):
    """kit dies between Kaggle's answer and writing it down (a KeyboardInterrupt injected into the write)."""
    finished_runs(1)
    from kit.runs import intent

    real = intent.record_found_submissions

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(intent, "record_found_submissions", crash)
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 130 and "Traceback" not in result.stderr
    monkeypatch.setattr(intent, "record_found_submissions", real)
    assert record(ws, "run-1")["pending"]["action"] == "submit" and len(standin.submissions) == 1
    again = run_kit("submit", "run-1", "--yes")
    assert again.exit_code == 0, again.stderr
    assert len(standin.submissions) == 1 and len(standin.calls("CreateSubmission")) == 1
    assert_exactly_once(ws, standin, ["run-1"])


@pytest.mark.parametrize("fault", ["hang", "status"], ids=["answer-lost", "503-not-processed"])
@fault_class(2, "code competition: a lost or failed answer to CreateCodeSubmission", "one submission of the run's kernel version, recorded once")
def test_code_submission_with_a_lost_answer_is_made_once(ws, standin, fault):
    standin.competitions["math-grader"] = True
    # internet off: the model comes from Kaggle Models (a versioned handle needs no lookup)
    pushed = run_kit("push-kernel", "train", "--set", "enable_internet=false", "--set", "model=me/llama/transformers/8b/1")
    assert pushed.exit_code == 0, pushed.stderr
    assert run_kit("pull", "run-1").exit_code == 0
    standin.inject("CreateCodeSubmission", fault, seconds=3)
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 0, result.stderr
    assert len(standin.submissions) == 1
    assert len(standin.calls("CreateCodeSubmission")) == (1 if fault == "hang" else 2)
    assert record(ws, "run-1")["submissions"][0]["kernel"] == f"{kernel(ws)}/1"
    assert_exactly_once(ws, standin, ["run-1"])


# -- 3. double pushes --------------------------------------------------------------------------------------------


def versions(standin) -> int:
    """Kernel versions started on the stand-in, all kernels together (each one a paid session)."""
    return sum(len(k.versions) for k in standin.kernels.values())


@fault_class(3, "SaveKernel processed, answered after the client's timeout", 'one version; the run has its kernel')
def test_slow_save_kernel_is_one_version(ws, standin):
    standin.inject("SaveKernel", "hang", seconds=4)
    result = run_kit("push-kernel", "train")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "run-1"
    assert versions(standin) == 1 and len(standin.calls("SaveKernel")) == 1
    assert record(ws, "run-1")["remote"] == kernel(ws) and record(ws, "run-1")["pending"] is None


@fault_class(3, "SaveKernel that always times out", 'one version found by GetKernel; exit 0 with the run started')
def test_save_kernel_that_always_times_out_is_one_version(ws, standin):
    standin.inject("SaveKernel", "hang", seconds=4, times=10)
    result = run_kit("push-kernel", "train")
    assert result.exit_code == 0, result.stderr
    assert versions(standin) == 1 and len(standin.calls("SaveKernel")) == 1


@fault_class(3, "SaveKernel that lands after the client gave up", '"looking again", then one version')
def test_save_kernel_landing_late_is_waited_for(ws, standin, monkeypatch):
    monkeypatch.setenv("KIT_KAGGLE_SETTLE", "4")
    standin.inject("SaveKernel", "late", seconds=2.5)
    result = run_kit("push-kernel", "train")
    assert result.exit_code == 0, result.stderr
    assert versions(standin) == 1 and len(standin.calls("SaveKernel")) == 1
    assert record(ws, "run-1")["remote"] == kernel(ws)


@fault_class(3, "SaveKernel landing after a client timeout longer than the settle window", '"looking again", then one version')
def test_the_settle_window_runs_from_the_lost_answer_not_from_the_send(ws, standin, monkeypatch):
    """Kaggle's default client timeout (60 s) outlasts the settle window (10 s): counted from the send, the window
    was over before kit could look, and a push landing just after the timeout was sent again."""
    monkeypatch.setenv("KIT_KAGGLE_TIMEOUT", "3")
    monkeypatch.setenv("KIT_KAGGLE_SETTLE", "2")
    standin.inject("SaveKernel", "late", seconds=3.5)  # lands half a second after the client gave up
    result = run_kit("push-kernel", "train")
    assert result.exit_code == 0, result.stderr
    assert versions(standin) == 1 and len(standin.calls("SaveKernel")) == 1
    assert "looking again" in result.stderr


@pytest.mark.parametrize("apply", [True, False], ids=["processed", "not-processed"])
@fault_class(3, "empty 200 answer to SaveKernel", 'found when it happened, pushed again when it did not; one version')
def test_empty_answer_to_save_kernel(ws, standin, apply):
    standin.inject("SaveKernel", "empty", apply=apply)
    result = run_kit("push-kernel", "train")
    assert result.exit_code == 0, result.stderr
    assert versions(standin) == 1 and len(standin.calls("SaveKernel")) == (1 if apply else 2)
    assert record(ws, "run-1")["remote"] == kernel(ws)


@fault_class(3, "empty 200 answer to SaveKernel every time (nothing started): no phantom run", 'exit 1 "none went through"; the run is marked error, no kernel')
def test_save_kernel_answering_empty_every_time_is_no_phantom_run(ws, standin):
    standin.inject("SaveKernel", "empty", times=10)
    result = run_kit("push-kernel", "train")
    assert result.exit_code == 1 and "none went through" in result.stderr
    assert versions(standin) == 0
    saved = record(ws, "run-1")
    assert saved["status"] == "error" and saved["remote"] == "" and saved["pending"] is None
    no_traceback(result)


@pytest.mark.parametrize("apply", [True, False], ids=["processed", "not-processed"])
@fault_class(3, "503 answer to SaveKernel", 'one version either way')
def test_503_on_save_kernel(ws, standin, apply):
    standin.inject("SaveKernel", "status", status=503, apply=apply)
    result = run_kit("push-kernel", "train")
    assert result.exit_code == 0, result.stderr
    assert versions(standin) == 1 and len(standin.calls("SaveKernel")) == (1 if apply else 2)


@pytest.mark.parametrize("step", ["GetKernel", "SaveKernel"])
@fault_class(3, "Ctrl-C (SIGINT) during `kit push-kernel`, then kit status", 'exit 130; kit status records the started kernel, or marks the run "nothing runs"')
def test_ctrl_c_during_push_is_resolved_by_status(ws, standin, step):
    fault = standin.inject(step, "hang", seconds=30)
    proc = kit_process(ws, "push-kernel", "train")
    assert fault.served.wait(60), proc.communicate()
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    _, err = proc.communicate()
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    assert ("kit status run-1" if step == "SaveKernel" else "kit push-kernel train starts a new run") in err
    standin.faults.clear()
    shown = run_kit("status", "run-1")
    assert shown.exit_code == 0, shown.stderr
    saved = record(ws, "run-1")
    assert saved["pending"] is None
    if step == "SaveKernel":  # it did start: recorded, never pushed again
        assert saved["remote"] == kernel(ws) and versions(standin) == 1
    else:  # interrupted before the push: nothing runs, and the run says so
        assert saved["status"] == "error" and "nothing runs" in saved["message"] and versions(standin) == 0
    assert len(standin.calls("SaveKernel")) == (1 if step == "SaveKernel" else 0)


# -- 6. parallel writers -----------------------------------------------------------------------------------------


@fault_class(6, "20 parallel `kit submit` on different runs + 10 `kit scores`", "20 submissions, every row's ref and score as in its run.json; a person's column kept")
def test_parallel_submits_and_scores_lose_no_row(ws, standin):
    ids = finished_runs(20)
    standin.auto_score = "0.75"
    (ws / "leaderboard.csv").write_text((ws / "leaderboard.csv").read_text().replace("run,", "note,run,", 1).replace("\nrun-", "\nmine,run-"))
    procs = [kit_process(ws, "submit", run_id, "--yes") for run_id in ids]
    procs += [kit_process(ws, "scores") for _ in range(10)]
    outs = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert [code for code, _, _ in outs] == [0] * 30, [err for code, _, err in outs if code]
    no_traceback(*(err for _, _, err in outs))
    assert len(standin.submissions) == 20
    assert_exactly_once(ws, standin, ids)
    rows = board(ws)
    for run_id in ids:  # every row says what its record says, without another sync
        sub = record(ws, run_id)["submissions"][-1]
        assert rows[run_id]["submission_ref"] == sub["ref"]
        assert rows[run_id]["public_score"] == ("" if sub["public_score"] is None else f"{sub['public_score']:.6g}")
        assert rows[run_id]["note"] == "mine"  # a person's column survives every writer


# -- 8. silence and wrong hints ----------------------------------------------------------------------------------


@fault_class(8, "Retry-After on a 429 is announced, with the wait", '"Kaggle asked to wait 30s (Retry-After); waiting 3s before try 2 of 3"')
def test_retry_after_is_announced(ws, standin, monkeypatch):
    monkeypatch.setenv("KIT_KAGGLE_MAX_WAIT", "3")
    standin.inject("GetSubmissionLimits", "status", status=429, retry_after="30")
    result = run_kit("quota")
    assert result.exit_code == 0, result.stderr
    assert "Kaggle asked to wait 30s (Retry-After); waiting 3s" in result.stderr


@fault_class(8, "a hung answer is announced while kit waits for it", '"waiting for Kaggle\'s answer (3s of at most 5s)"')
def test_hung_answer_is_announced(ws, standin, monkeypatch):
    monkeypatch.setenv("KIT_KAGGLE_TIMEOUT", "5")
    standin.inject("GetSubmissionLimits", "hang", seconds=4)
    result = run_kit("quota")
    assert result.exit_code == 0, result.stderr
    assert "waiting for Kaggle's answer (3s of at most 5s)" in result.stderr


@fault_class(8, "a pending score is waited for on stderr (kit submit --wait)", '"waiting for its score (up to 10 min ...)", then "complete, public 0.81234"')
def test_pending_score_wait_is_shown(ws, standin):
    finished_runs(1)
    timer = threading.Timer(1.0, lambda: standin.score(41000001, "0.81234"))
    timer.start()
    result = run_kit("submit", "run-1", "--yes", "--wait")
    timer.cancel()
    assert result.exit_code == 0, result.stderr
    assert "waiting for its score" in result.stderr and "complete, public 0.81234" in result.stderr


@fault_class(8, "kit pull on a running run names kit wait, which follows it and pulls", '"hint: kit wait run-1 follows it ..."; kit wait pulls the outputs')
def test_pull_of_a_running_run_points_to_kit_wait(ws, standin):
    standin.default_walk = ["RUNNING", "RUNNING", "COMPLETE"]
    assert run_kit("push-kernel", "train").exit_code == 0
    pulled = run_kit("pull", "run-1")
    assert pulled.exit_code == 1 and "hint: kit wait run-1" in pulled.stderr and "push-kernel" not in pulled.stderr
    waited = run_kit("wait", "run-1")
    assert waited.exit_code == 0, waited.stderr
    assert (ws / "submissions" / "run-1" / "submission.csv").read_bytes() == SUBMISSION
    assert len(standin.calls("SaveKernel")) == 1  # following it never pushes


@pytest.mark.parametrize("end", ["ERROR", "CANCEL_ACKNOWLEDGED"])
@fault_class(8, "kit wait and --wait exit non-zero on a run that fails or is cancelled", 'exit 1 with the failure or "was cancelled" and a hint')
def test_wait_exits_non_zero_on_error_or_cancel(ws, standin, end):
    standin.default_walk = ["RUNNING", end]
    pushed = run_kit("push-kernel", "train", "--wait")
    assert pushed.exit_code == 1 and ("failed" in pushed.stderr or "cancelled" in pushed.stderr), pushed.stderr
    waited = run_kit("wait", "run-1")
    assert waited.exit_code == 1 and "hint: " in waited.stderr
    no_traceback(pushed, waited)
