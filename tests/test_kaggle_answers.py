"""Issue 25: Kaggle's real answers. The real CLI and the real kaggle client against the stand-in, which answers as
Kaggle does (403 for a kernel that does not exist, requests processed long after the client gave up).

Each test is tagged with its fault class, for bench/fault_table.py.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from kit.backends.kaggle.backend import KaggleBackend
from kit.backends.kaggle.session import KaggleSession
from kit.errors import AuthError
from kit.workspace import layout
from tests.conftest import run_kit
from tests.kaggle_standin.fixtures import FAST, init_kaggle_workspace
from tests.test_exactly_once import assert_exactly_once, fault_class, kernel, no_traceback, record, versions

SUBMISSION = b"ID,is_correct\n1,True\n2,False\n"


@pytest.fixture
def ws(kaggle_env, standin, tmp_path, monkeypatch) -> Path:
    root = init_kaggle_workspace(tmp_path, monkeypatch)
    standin.default_walk = ["COMPLETE"]
    standin.default_files = {"submission.csv": SUBMISSION, "metrics.json": b'{"val_accuracy": 0.8}'}
    standin.daily_limit = 100
    return root


# -- 10. Kaggle's answers to a kernel that does not exist ----------------------------------------------------------


@fault_class(10, "first push of a brand-new kernel: GetKernel answers 403 \"Permission 'kernels.get' was denied\"", "the run starts: one version, exit 0")
def test_a_first_push_works_when_kaggle_answers_403_for_a_new_kernel(ws, standin):
    result = run_kit("push-kernel", "train")
    assert result.exit_code == 0, result.stderr
    got = standin.calls("GetKernel")
    assert got and got[0].json["kernelSlug"] == kernel(ws).partition("/")[2]  # asked first, answered 403
    assert versions(standin) == 1 and len(standin.calls("SaveKernel")) == 1
    assert record(ws, "run-1")["remote"] == kernel(ws) and record(ws, "run-1")["status"] != "error"
    no_traceback(result)


@fault_class(10, "403 on a kernel kit pushed before", "an access error with the credentials hint; the run is not marked gone")
def test_a_403_on_a_kernel_kit_pushed_before_stays_an_access_error(ws, standin):
    assert run_kit("push-kernel", "train").exit_code == 0
    standin.kernels.clear()  # Kaggle now refuses to show it (other credentials, or it was made unreadable)
    shown = run_kit("status", "run-1")
    assert shown.exit_code == 1 and "HTTP 403" in shown.stderr and "credentials" in shown.stderr, shown.stderr
    assert record(ws, "run-1")["remote"] == kernel(ws)
    backend = KaggleBackend(layout.load(ws), KaggleSession(FAST))
    with pytest.raises(AuthError, match="HTTP 403"):
        backend.kernel_version(kernel(ws), seen=True)
    assert backend.kernel_version(kernel(ws)) is None  # never seen: 403 is "no such kernel yet"


# -- 11. requests Kaggle processes long after the client gave up ----------------------------------------------------

# The stand-in's clock and kit's windows run SCALE times Kaggle's: the client's 60 s timeout is 1.5 s here, kit's
# 300 s settle window 7.5 s, its 30 s of looking 0.75 s, and "processed 120 s after the client gave up" 3 s.
SCALE = 0.025
LATE = [20, 60, 120]


@pytest.fixture
def scaled(ws, standin, monkeypatch) -> Path:
    """kit's own defaults (the client's timeout, the settle window, the look), every duration times SCALE, and the
    stand-in's clock alike."""
    standin.time_scale = SCALE
    for name in ("KIT_KAGGLE_TIMEOUT", "KIT_KAGGLE_BACKOFF", "KIT_KAGGLE_SETTLE", "KIT_KAGGLE_LOOK", "KIT_KAGGLE_MAX_WAIT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KIT_KAGGLE_TIME_SCALE", str(SCALE))
    return ws


def _until_resolved(root: Path, run_id: str, *command: str) -> list:
    """Run `command` as a user told "kit waits for it" would, until the run has nothing pending; every answer is
    either success or that line."""
    # Bounded by time, not by a count of tries: a fast machine runs hundreds of quick `kit status` within the scaled
    # window (7.5 s) and a count ran out before the window had passed. 60 s is eight windows.
    results, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        if record(root, run_id)["pending"] is None:
            return results
        result = run_kit(*command)
        results.append(result)
        assert result.exit_code == 0 or "waiting for it; nothing is sent again before then" in result.stderr, result.stderr
        no_traceback(result)
        time.sleep(0.05)  # as a user told "kit waits for it" would, not in a tight loop
    raise AssertionError(f"{run_id} still pending after 60 s: {record(root, run_id)['pending']}")


def _processed_late(fault, seconds: float) -> None:
    assert fault.gave_up_at is not None and fault.processed_at is not None
    assert fault.processed_at - fault.gave_up_at >= seconds * SCALE * 0.95


@pytest.mark.parametrize("late", LATE)
@fault_class(11, "CreateSubmission processed 20/60/120 s after the client gave up", 'one submission, recorded once; meanwhile "waiting for it; nothing is sent again before then", with the command that looks again')
def test_a_submission_processed_late_is_never_sent_twice(scaled, standin, late):
    pushed = run_kit("push-kernel", "train")
    assert pushed.exit_code == 0 and run_kit("pull", "run-1").exit_code == 0
    fault = standin.inject("CreateSubmission", "late", seconds=late, after_gave_up=True)
    first = run_kit("submit", "run-1", "--yes")
    assert first.exit_code == 0 or ("kit submit run-1 looks again" in first.stderr and "--again" in first.stderr), first.stderr
    _until_resolved(scaled, "run-1", "submit", "run-1", "--yes")
    _processed_late(fault, late)
    assert len(standin.calls("CreateSubmission")) == 1 and len(standin.submissions) == 1
    assert_exactly_once(scaled, standin, ["run-1"])


@pytest.mark.parametrize("late", LATE)
@fault_class(11, "CreateCodeSubmission processed 20/60/120 s after the client gave up", "one code submission, recorded once")
def test_a_code_submission_processed_late_is_never_sent_twice(scaled, standin, late):
    standin.competitions["math-grader"] = True
    pushed = run_kit("push-kernel", "train", "--set", "enable_internet=false", "--set", "model=me/llama/transformers/8b/1")
    assert pushed.exit_code == 0, pushed.stderr
    assert run_kit("pull", "run-1").exit_code == 0
    fault = standin.inject("CreateCodeSubmission", "late", seconds=late, after_gave_up=True)
    first = run_kit("submit", "run-1", "--yes")
    assert first.exit_code == 0 or "kit submit run-1 looks again" in first.stderr, first.stderr
    _until_resolved(scaled, "run-1", "submit", "run-1", "--yes")
    _processed_late(fault, late)
    assert len(standin.calls("CreateCodeSubmission")) == 1 and len(standin.submissions) == 1
    assert record(scaled, "run-1")["submissions"][0]["kernel"] == f"{kernel(scaled)}/1"
    assert_exactly_once(scaled, standin, ["run-1"])


@pytest.mark.parametrize("late", LATE)
@fault_class(11, "SaveKernel processed 20/60/120 s after the client gave up", "one version (one GPU session); the run gets its kernel; meanwhile kit status names what it waits for")
def test_a_push_processed_late_is_never_sent_twice(scaled, standin, late):
    fault = standin.inject("SaveKernel", "late", seconds=late, after_gave_up=True)
    first = run_kit("push-kernel", "train")
    assert first.exit_code == 0 or "kit status run-1 looks again" in first.stderr, first.stderr
    _until_resolved(scaled, "run-1", "status", "run-1")
    _processed_late(fault, late)
    assert versions(standin) == 1 and len(standin.calls("SaveKernel")) == 1
    saved = record(scaled, "run-1")
    assert saved["remote"] == kernel(scaled) and saved["status"] != "error"


@fault_class(11, "a lost CreateSubmission that never lands: sent again only once the window has passed", "exit 1 with what kit waits for; one submission after the window")
def test_a_submission_that_never_landed_is_sent_once_the_window_has_passed(scaled, standin, monkeypatch):
    monkeypatch.setenv("KIT_KAGGLE_SETTLE", "2")  # a shorter window, to see it pass
    pushed = run_kit("push-kernel", "train")
    assert pushed.exit_code == 0 and run_kit("pull", "run-1").exit_code == 0
    standin.inject("CreateSubmission", "status", status=503)  # not processed; kit cannot know
    first = run_kit("submit", "run-1", "--yes")
    assert first.exit_code == 1 and "waiting for it; nothing is sent again before then" in first.stderr
    assert len(standin.calls("CreateSubmission")) == 1 and standin.submissions == []
    results = _until_resolved(scaled, "run-1", "submit", "run-1", "--yes")
    assert results[-1].exit_code == 0 and len(standin.submissions) == 1 and len(standin.calls("CreateSubmission")) == 2
    assert_exactly_once(scaled, standin, ["run-1"])


@fault_class(11, "`kit submit --again` while a lost submission may still land", "sent at once, as asked")
def test_again_sends_at_once_while_waiting(scaled, standin):
    pushed = run_kit("push-kernel", "train")
    assert pushed.exit_code == 0 and run_kit("pull", "run-1").exit_code == 0
    standin.inject("CreateSubmission", "status", status=503)
    assert run_kit("submit", "run-1", "--yes").exit_code == 1
    again = run_kit("submit", "run-1", "--yes", "--again")
    assert again.exit_code == 0, again.stderr
    assert "--again: not waiting" in again.stderr
    assert len(standin.submissions) == 1 and record(scaled, "run-1")["pending"] is None


# -- 14. a copied workspace ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["cp -r", "a clone (no .kit/)"])
@fault_class(14, "a workspace copied with cp -r, or cloned from a repository holding kit.toml, pushes next to the original", "the copy takes its own workspace_id before its first push and says so; two kernels, one version each")
def test_a_copied_workspace_never_pushes_to_the_originals_kernel(ws, standin, monkeypatch, how):
    import shutil

    assert run_kit("push-kernel", "train").exit_code == 0
    copy = ws.parent / "copy"
    shutil.copytree(ws, copy, symlinks=True, ignore=shutil.ignore_patterns(".kit") if how != "cp -r" else None)
    monkeypatch.chdir(copy)
    pushed = run_kit("push-kernel", "train")
    assert pushed.exit_code == 0, pushed.stderr
    assert "takes its own" in pushed.stderr and "never push to one Kaggle kernel" in pushed.stderr
    monkeypatch.chdir(ws)
    assert run_kit("push-kernel", "train").exit_code == 0
    mine, theirs = record(ws, "run-2")["remote"], record(copy, "run-2")["remote"]
    assert mine == kernel(ws, 2) and theirs == kernel(copy, 2) and mine != theirs
    assert sorted(len(k.versions) for k in standin.kernels.values()) == [1, 1, 1]
    assert record(copy, "run-1")["remote"] == kernel(ws, 1)  # the run pushed before the copy keeps its kernel
    monkeypatch.chdir(copy)
    again = run_kit("push-kernel", "train")  # once is enough: the copy's id is its own now
    assert again.exit_code == 0 and "takes its own" not in again.stderr


# -- 15. the smaller ones ------------------------------------------------------------------------------------------


@fault_class(15, "kit doctor with a key Kaggle rejects (401 on every call)", '"FAIL  credentials accepted: ... HTTP 401" (never "ok" first)')
def test_doctor_checks_the_key_with_a_call_that_needs_it(ws, standin):
    standin.reject_auth = True
    result = run_kit("doctor")
    assert result.exit_code == 1
    assert "FAIL  credentials accepted" in result.stdout and "HTTP 401" in result.stdout, result.stdout
    assert "ok  credentials accepted" not in result.stdout.replace("ok    ", "ok  ")
    standin.reject_auth = False
    assert "ok    credentials accepted: user testuser" in run_kit("doctor").stdout


@fault_class(15, "kit doctor on the local backend with no Kaggle credentials anywhere", "exit 0: the kernels build and the practice competition is there; no credentials asked for")
def test_doctor_on_the_local_backend_needs_no_kaggle_credentials(workspace, monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("KAGGLE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "nobody"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "nowhere"))
    result = run_kit("doctor")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "practice competition" in result.stdout and "credentials" not in result.stdout


@fault_class(15, "a 503 whose body is an HTML page labelled as JSON", "retried like any 5xx: the command succeeds")
def test_an_html_page_labelled_json_is_retried_like_a_5xx(ws, standin):
    standin.inject("GetAcceleratorQuotaStatistics", "html_json", status=503)
    result = run_kit("quota")
    assert result.exit_code == 0, result.stderr
    assert len(standin.calls("GetAcceleratorQuotaStatistics")) == 2


@fault_class(15, "a push killed while its kernel was being built (no remote, no message)", 'kit status: "never reached kaggle ...: kit cancel run-1 clears it"; kit cancel marks it cancelled')
def test_a_run_that_never_reached_kaggle_is_shown_with_the_command_that_clears_it(ws, standin):
    from kit.runs import store
    from kit.workspace import layout

    store.allocate(layout.load(ws), "train", "kaggle", {})  # what a push killed (SIGKILL) while building leaves
    shown = run_kit("status")
    assert shown.exit_code == 0, shown.stderr
    assert "never reached kaggle" in shown.stdout and "kit cancel run-1 clears it" in shown.stdout
    cleared = run_kit("cancel", "run-1")
    assert cleared.exit_code == 0 and "never reached kaggle" in cleared.stderr
    assert record(ws, "run-1")["status"] == "cancelled" and not standin.calls("SaveKernel")
    assert "clears it" not in run_kit("status").stdout


@fault_class(15, "kit submit --wait --timeout 2 on a score that never comes", 'exit 1 "not scored after 2s (--timeout)" after about 2 s, not 600')
def test_the_score_wait_is_a_setting(ws, standin):
    import time

    assert run_kit("push-kernel", "train").exit_code == 0 and run_kit("pull", "run-1").exit_code == 0
    started = time.monotonic()
    result = run_kit("submit", "run-1", "--yes", "--wait", "--timeout", "2")
    assert result.exit_code == 1 and "not scored after 2s" in result.stderr and "--timeout" in result.stderr, result.stderr
    assert time.monotonic() - started < 30
    assert len(standin.submissions) == 1
