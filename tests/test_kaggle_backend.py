"""The Kaggle backend driven through the real kaggle client against the stand-in, asserting on the wire."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kit.backends.kaggle.backend import KaggleBackend, kernel_status
from kit.backends.kaggle.session import KaggleSession, RetryPolicy, credential_source
from kit.errors import AuthError, BackendError, ConfigError, OutcomeUnknownError
from kit.runs.store import KernelStatus
from tests.kaggle_standin.fixtures import FAST, build_kernel_folder, make_run


# -- push ---------------------------------------------------------------------------------------------------------


def test_push_sends_save_kernel_with_metadata_and_script(backend, standin, tmp_path):
    folder = build_kernel_folder(tmp_path / "built")
    remote = backend.push(make_run(), folder)
    assert remote == "testuser/kit-math-grader-run-1"
    [call] = standin.calls("SaveKernel")
    body = call.json
    assert body["slug"] == "testuser/kit-math-grader-run-1"
    assert body["newTitle"] == "kit math grader run 1"
    assert body["text"] == (folder / "kernel.py").read_text()
    assert body["isPrivate"] is True and body["enableGpu"] is True and body["enableInternet"] is False
    assert body["machineShape"] == "NvidiaTeslaT4"
    assert body["sessionTimeoutSeconds"] == 3600
    assert body["competitionDataSources"] == ["math-grader"]
    assert body["datasetDataSources"] == ["testuser/kit-offline-wheels"]
    assert body["kernelDataSources"] == ["testuser/kit-math-grader-run-0"]  # the placeholder owner filled in
    assert call.headers["Authorization"].startswith("Basic ")
    # The filled-in metadata is what was pushed, and holds no credential.
    written = (folder / "kernel-metadata.json").read_text()
    assert '"testuser/kit-math-grader-run-1"' in written and "testkey" not in written


def test_push_refuses_a_run_that_was_already_pushed(backend, standin, tmp_path):
    folder = build_kernel_folder(tmp_path / "built")
    with pytest.raises(BackendError, match="second paid session"):
        backend.push(make_run(remote="testuser/kit-math-grader-run-1"), folder)
    assert standin.calls("SaveKernel") == []


def test_push_refuses_a_title_that_does_not_slugify_to_the_slug(backend, standin, tmp_path):
    folder = build_kernel_folder(tmp_path / "built", title="Something Else Entirely")
    with pytest.raises(ConfigError, match="does not slugify"):
        backend.push(make_run(), folder)
    assert standin.calls("SaveKernel") == []


def test_push_warns_about_p100(backend, standin, tmp_path):
    backend.push(make_run(), build_kernel_folder(tmp_path / "built", machine_shape="NvidiaTeslaP100"))
    assert any("P100" in w for w in backend.warnings)


def test_soft_push_error_becomes_backend_error(backend, standin, tmp_path):
    standin.push_error = "Maximum batch GPU session count of 2 reached"
    with pytest.raises(BackendError, match="Maximum batch GPU session count") as info:
        backend.push(make_run(), build_kernel_folder(tmp_path / "built"))
    assert "two GPU kernels" in info.value.hint
    assert len(standin.calls("SaveKernel")) == 1  # a soft error is not retried: it would fail the same way


def test_invalid_sources_are_reported(backend, standin, tmp_path):
    standin.invalid_dataset_sources = ["testuser/kit-offline-wheels"]
    with pytest.raises(BackendError, match="dataset sources testuser/kit-offline-wheels"):
        backend.push(make_run(), build_kernel_folder(tmp_path / "built"))


def test_hung_push_is_never_sent_again_by_the_backend(backend, standin, tmp_path):
    # Kaggle started the kernel but the answer never came: the backend says it cannot tell, and sends nothing more
    # (kit/runs/intent.py reconciles; tests/test_exactly_once.py drives that end to end).
    standin.inject("SaveKernel", "hang", seconds=5)
    with pytest.raises(OutcomeUnknownError, match="no answer"):
        backend.push(make_run(), build_kernel_folder(tmp_path / "built"))
    assert len(standin.calls("SaveKernel")) == 1
    assert backend.kernel_version("testuser/kit-math-grader-run-1") == 1


def test_push_503_is_not_retried_blindly(backend, standin, tmp_path):
    standin.inject("SaveKernel", "status", status=503)
    with pytest.raises(OutcomeUnknownError, match="HTTP 503"):
        backend.push(make_run(), build_kernel_folder(tmp_path / "built"))
    assert len(standin.calls("SaveKernel")) == 1


def test_kernel_version_is_none_for_an_unknown_kernel(backend, standin, tmp_path):
    assert backend.kernel_version("testuser/kit-math-grader-run-9") is None
    assert standin.calls("GetKernel")[0].json == {"userName": "testuser", "kernelSlug": "kit-math-grader-run-9"}


# -- status, logs, outputs ----------------------------------------------------------------------------------------


def pushed(backend, tmp_path, standin, **kernel):
    remote = backend.push(make_run(), build_kernel_folder(tmp_path / "built"))
    for key, value in kernel.items():
        setattr(standin.kernels[remote], key, value)
    return make_run(remote=remote)


def test_status_walks_queued_running_complete(backend, standin, tmp_path):
    run = pushed(backend, tmp_path, standin)
    seen = [backend.status(run).status for _ in range(4)]
    assert seen == [KernelStatus.QUEUED, KernelStatus.RUNNING, KernelStatus.COMPLETE, KernelStatus.COMPLETE]
    body = standin.calls("GetKernelSessionStatus")[0].json
    assert body == {"userName": "testuser", "kernelSlug": "kit-math-grader-run-1"}


def test_status_error_carries_failure_message(backend, standin, tmp_path):
    run = pushed(backend, tmp_path, standin, walk=["RUNNING", "ERROR"], failure_message="CUDA out of memory")
    assert backend.status(run).status is KernelStatus.RUNNING
    state = backend.status(run)
    assert state.status is KernelStatus.ERROR and state.message == "CUDA out of memory"


def test_kaggle_statuses_map_to_kit():
    assert kernel_status("CANCEL_ACKNOWLEDGED") is KernelStatus.CANCELLED
    assert kernel_status("NEW_SCRIPT") is KernelStatus.QUEUED


def test_logs_are_plain_text(backend, standin, tmp_path):
    log = json.dumps([{"stream_name": "stdout", "time": 1.0, "data": "step 1 loss 0.7\n"},
                      {"stream_name": "stderr", "time": 2.0, "data": "warning\n"}])
    run = pushed(backend, tmp_path, standin, log=log)
    assert backend.logs(run) == "step 1 loss 0.7\nwarning\n"


OUTPUTS = {
    "submission.csv": b"ID,is_correct\n1,True\n",
    "test_probs.csv": b"ID,p\n1,0.9\n",
    "val_predictions.csv": b"ID,p,label\n",
    "metrics.json": b'{"accuracy": 0.8}',
    "config.json": b"{}",
    "train.log": b"log line\n",
    **{f"checkpoints/step-{i}/adapter.bin": bytes([i]) * 100 for i in range(30)},
}


def test_download_paginates_and_keeps_only_needed_files(backend, standin, tmp_path):
    run = pushed(backend, tmp_path, standin, files=dict(OUTPUTS), log='[{"data": "hello\\n"}]')
    names = backend.download(run, tmp_path / "out")
    assert sorted(names) == sorted(["submission.csv", "test_probs.csv", "val_predictions.csv", "metrics.json", "config.json", "train.log", "kernel.log"])
    assert (tmp_path / "out" / "submission.csv").read_bytes() == OUTPUTS["submission.csv"]
    assert (tmp_path / "out" / "kernel.log").read_text() == "hello\n"
    pages = standin.calls("ListKernelSessionOutput")
    assert len(pages) == 1 + 36 // 100 and pages[0].json["pageSize"] == 100
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_download_all_files_follows_every_page(backend, standin, tmp_path):
    run = pushed(backend, tmp_path, standin, files=dict(OUTPUTS))
    backend_small = backend
    files, _ = backend_small.output_files(run, page_size=7)
    assert len(files) == len(OUTPUTS)
    tokens = [c.json.get("pageToken") for c in standin.calls("ListKernelSessionOutput")]
    assert tokens == ["", "7", "14", "21", "28", "35"]
    names = backend.download(run, tmp_path / "out", all_files=True)
    assert len(names) == len(OUTPUTS)
    assert (tmp_path / "out" / "checkpoints/step-29/adapter.bin").read_bytes() == bytes([29]) * 100


def test_interrupted_download_resumes_and_loses_nothing(kaggle_env, kaggle_ws, standin, tmp_path):
    once = KaggleBackend(kaggle_ws, KaggleSession(RetryPolicy(timeout=1.5, attempts=1, backoff=0.01)))
    metrics = json.dumps({"accuracy": 0.8, "padding": "x" * 200_000}).encode()
    run = pushed(once, tmp_path, standin, files={"submission.csv": b"x" * 1000, "metrics.json": metrics})
    standin.inject("GET", "cut")  # metrics.json comes first: half of it arrives, then the connection drops
    with pytest.raises(BackendError):
        once.download(run, tmp_path / "out")
    assert not (tmp_path / "out" / "metrics.json").exists()  # never a half file under the real name
    part = (tmp_path / "out" / "metrics.json.part").stat().st_size
    assert 0 < part < len(metrics)
    names = once.download(run, tmp_path / "out")
    assert (tmp_path / "out" / "metrics.json").read_bytes() == metrics
    assert (tmp_path / "out" / "submission.csv").read_bytes() == b"x" * 1000
    assert "submission.csv" in names and not (tmp_path / "out" / "metrics.json.part").exists()
    resumed = [r for r in standin.calls("GET") if r.path.endswith("metrics.json")][-1]
    assert resumed.headers.get("Range") == f"bytes={part}-"
    # A third call downloads nothing again.
    before = len(standin.calls("GET"))
    once.download(run, tmp_path / "out")
    assert len(standin.calls("GET")) == before


def test_cancel_of_running_kernel_says_what_to_do(backend, standin, tmp_path):
    run = pushed(backend, tmp_path, standin, walk=["RUNNING"])
    with pytest.raises(BackendError, match="cannot stop") as info:
        backend.cancel(run)
    assert "https://www.kaggle.com/code/testuser/kit-math-grader-run-1" in info.value.hint


def test_cancel_of_finished_kernel_is_silent(backend, standin, tmp_path):
    run = pushed(backend, tmp_path, standin, walk=["COMPLETE"])
    before = len(standin.requests)
    backend.cancel(run)  # raises nothing: there is nothing to stop
    asked = [r.method_name for r in standin.requests[before:]]
    assert asked == ["GetKernelSessionStatus"]  # it looked, and sent nothing that changes anything
    assert len(standin.kernels[run.remote].versions) == 1


# -- faults -------------------------------------------------------------------------------------------------------


def test_429_waits_for_retry_after(kaggle_env, kaggle_ws, standin, tmp_path):
    waits = []
    backend = KaggleBackend(kaggle_ws, KaggleSession(FAST, sleep=waits.append))
    run = pushed(backend, tmp_path, standin)
    standin.inject("GetKernelSessionStatus", "status", status=429, retry_after="1", times=2)
    assert backend.status(run).status is KernelStatus.QUEUED
    assert waits == [1.0, 1.0]
    assert len(standin.calls("GetKernelSessionStatus")) == 3


def test_429_really_sleeps_retry_after(backend, standin, tmp_path):
    run = pushed(backend, tmp_path, standin)
    standin.inject("GetKernelSessionStatus", "status", status=429, retry_after="1")
    backend.status(run)
    first, second = standin.calls("GetKernelSessionStatus")
    assert second.at - first.at >= 1.0  # the retry came no sooner than Retry-After asked


def test_503_is_retried_then_gives_up(backend, standin, tmp_path):
    run = pushed(backend, tmp_path, standin)
    standin.inject("GetKernelSessionStatus", "status", status=503, times=10)
    with pytest.raises(BackendError, match="HTTP 503"):
        backend.status(run)
    assert len(standin.calls("GetKernelSessionStatus")) == FAST.attempts


def test_hung_response_times_out(backend, standin, tmp_path):
    run = pushed(backend, tmp_path, standin)
    standin.inject("GetKernelSessionStatus", "hang", seconds=30, times=10)
    start = time.monotonic()
    with pytest.raises(BackendError, match="timed out"):
        backend.status(run)
    assert time.monotonic() - start < FAST.attempts * (FAST.timeout + 1)


def test_401_is_auth_error(backend, standin, tmp_path):
    run = make_run(remote="testuser/some-kernel")
    standin.reject_auth = True
    with pytest.raises(AuthError, match="401") as info:
        backend.status(run)
    assert "kaggle.json" in info.value.hint and "KAGGLE_API_TOKEN" in info.value.hint


def test_html_body_is_a_clear_error(backend, standin, tmp_path):
    run = make_run(remote="testuser/some-kernel")
    standin.inject("GetKernelSessionStatus", "html")
    with pytest.raises(BackendError, match="not JSON"):
        backend.status(run)


def test_missing_credentials_is_auth_error_naming_the_fix(backend, kaggle_env, standin):
    (kaggle_env / "kaggle.json").unlink()
    assert credential_source() is None
    with pytest.raises(AuthError, match="no Kaggle credentials") as info:
        backend.status(make_run(remote="testuser/some-kernel"))
    assert "~/.kaggle/kaggle.json" in info.value.hint
    assert standin.requests == []


def test_access_token_is_introspected_and_sent_as_bearer(backend, kaggle_env, standin, monkeypatch):
    (kaggle_env / "kaggle.json").unlink()
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_abc123")
    standin.tokens["KGAT_abc123"] = "tokenuser"
    assert credential_source() == "KAGGLE_API_TOKEN"
    assert backend.session.username == "tokenuser"
    backend.submissions_left_today()
    assert standin.calls("IntrospectToken")[0].json == {"token": "KGAT_abc123"}
    assert standin.calls("GetSubmissionLimits")[0].headers["Authorization"] == "Bearer KGAT_abc123"


def test_import_kit_backend_stays_light():
    modules = "kit.backends.registry, kit.backends.kaggle.backend, kit.backends.kaggle.doctor, kit.backends.kaggle.deps, kit.backends.kaggle.upload"
    code = f"import sys, {modules}; print('kaggle' in sys.modules or 'requests' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "False", out.stderr


# -- competition --------------------------------------------------------------------------------------------------


def write_submission(tmp_path: Path) -> Path:
    path = tmp_path / "submission.csv"
    path.write_text("ID,is_correct\n1,True\n2,False\n")
    return path


def test_submit_runs_the_three_steps(backend, standin, tmp_path):
    file = write_submission(tmp_path)
    result = backend.submit(file, "kit run-1 abc123")
    start, = standin.calls("StartSubmissionUpload")
    assert start.json["competitionName"] == "math-grader"
    assert start.json["fileName"] == "submission.csv" and start.json["contentLength"] == file.stat().st_size
    put, = standin.calls("PUT")
    assert put.body == file.read_bytes() and "Authorization" not in put.headers
    create, = standin.calls("CreateSubmission")
    assert create.json == {"competitionName": "math-grader", "blobFileTokens": "sub-blob-1", "submissionDescription": "kit run-1 abc123"}
    assert result.ref == "41000001" and result.status == "pending"
    assert [r.rpc.rpartition("/")[2] or r.method for r in standin.requests] == ["StartSubmissionUpload", "PUT", "CreateSubmission"]


def test_failed_blob_upload_is_retried_and_submits_once(backend, standin, tmp_path):
    standin.inject("PUT", "status", status=500)
    result = backend.submit(write_submission(tmp_path), "kit run-1 abc123")
    assert len(standin.calls("PUT")) == 2
    assert len(standin.calls("CreateSubmission")) == 1
    assert [s.ref for s in standin.submissions] == [int(result.ref)]


def test_blob_upload_that_keeps_failing_submits_nothing(backend, standin, tmp_path):
    standin.inject("PUT", "status", status=500, times=10)
    with pytest.raises(BackendError, match="nothing was submitted"):
        backend.submit(write_submission(tmp_path), "kit run-1 abc123")
    assert standin.calls("CreateSubmission") == [] and standin.submissions == []


def test_lost_submit_answer_is_not_sent_again_by_the_backend(backend, standin, tmp_path):
    standin.inject("CreateSubmission", "hang", seconds=10)
    with pytest.raises(OutcomeUnknownError):
        backend.submit(write_submission(tmp_path), "kit run-1 abc123")
    assert len(standin.submissions) == 1 and len(standin.calls("CreateSubmission")) == 1
    listed, = backend.submissions()
    assert (listed.file_name, listed.size, listed.description) == ("submission.csv", write_submission(tmp_path).stat().st_size, "kit run-1 abc123")


def test_submit_429_before_anything_is_retried(backend, standin, tmp_path):
    standin.inject("StartSubmissionUpload", "status", status=429, retry_after="0")
    backend.submit(write_submission(tmp_path), "kit run-1 abc123")
    assert len(standin.calls("StartSubmissionUpload")) == 2 and len(standin.submissions) == 1


def test_rules_not_accepted_is_auth_error_with_the_url(backend, standin, tmp_path):
    standin.rules_accepted = False
    with pytest.raises(AuthError, match="rules") as info:
        backend.submissions_left_today()
    assert "https://www.kaggle.com/competitions/math-grader/rules" in info.value.hint
    with pytest.raises(AuthError):
        backend.submit(write_submission(tmp_path), "kit run-1 abc123")
    assert standin.calls("PUT") == []


def test_submissions_scores_and_private_reveal(backend, standin, tmp_path):
    standin.daily_limit = 100
    for i in range(25):  # more than one page of 20
        backend.submit(write_submission(tmp_path), f"kit run-{i}")
    first = standin.submissions[0]
    standin.score(first.ref, "0.81234")
    subs = {s.ref: s for s in backend.submissions(page_size=10)}
    assert len(subs) == 25
    assert [c.json.get("pageToken") for c in standin.calls("ListSubmissions")] == ["", "10", "20"]
    assert subs[str(first.ref)].status == "complete" and subs[str(first.ref)].public_score == pytest.approx(0.81234)
    assert subs[str(first.ref)].private_score is None
    assert subs[str(standin.submissions[1].ref)].status == "pending"
    standin.reveal_private(first.ref, "0.79")
    assert backend.submission(str(first.ref)).private_score == pytest.approx(0.79)


def test_submissions_left_today(backend, standin, tmp_path):
    assert backend.submissions_left_today() == 5
    backend.submit(write_submission(tmp_path), "kit run-1")
    assert backend.submissions_left_today() == 4
    assert standin.calls("GetSubmissionLimits")[0].json == {"competitionName": "math-grader"}


def test_quota(backend, standin):
    quota = backend.quota()
    assert quota.gpu_hours_used == pytest.approx(10.0) and quota.gpu_hours_left == pytest.approx(20.0)
    assert quota.refresh.startswith("2030-01-06") and quota.submissions_left_today == 5


def test_sample_submission_is_downloaded_once(backend, standin):
    path = backend.sample_submission()
    assert path.read_bytes() == standin.competition_files["sample_submission.csv"]
    assert backend.sample_submission() == path
    assert len(standin.calls("DownloadDataFile")) == 1
    assert standin.calls("DownloadDataFile")[0].json == {"competitionName": "math-grader", "fileName": "sample_submission.csv"}
