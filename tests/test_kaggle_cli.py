"""`kit` commands end to end on the Kaggle backend: the real CLI, the real kaggle client, the stand-in server."""

from __future__ import annotations

import csv
import json
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.conftest import run_kit
from tests.kaggle_standin.fixtures import init_kaggle_workspace

SUBMISSION = b"ID,is_correct\n1,True\n2,False\n"


@pytest.fixture
def kaggle_workspace(kaggle_env, standin, tmp_path, monkeypatch) -> Path:
    root = init_kaggle_workspace(tmp_path, monkeypatch)
    standin.default_files = {"submission.csv": SUBMISSION, "metrics.json": b'{"val_accuracy": 0.8}', "adapter/adapter_model.bin": b"\0" * 64}
    return root


def workspace_id(root: Path) -> str:
    """The id kit init recorded in kit.toml, part of every kernel's name."""
    return tomllib.loads((root / "kit.toml").read_text())["kaggle"]["workspace_id"]


def leaderboard_rows(root: Path) -> list[dict[str, str]]:
    with open(root / "leaderboard.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_push_status_pull_submit_scores(kaggle_workspace, standin):
    root = kaggle_workspace
    # internet off: the model comes from Kaggle, attached as a model source
    pushed = run_kit("push-kernel", "train", "--set", "enable_internet=false", "--set", "model=me/llama/transformers/8b/1")
    assert pushed.exit_code == 0, pushed.stderr
    assert pushed.stdout.strip() == "run-1"
    save, = standin.calls("SaveKernel")
    script = (root / "submissions" / "run-1" / "kernel" / "kernel.py").read_text()
    assert save.json["text"] == script
    assert save.json["slug"] == f"testuser/kit-math-grader-{workspace_id(root)}-run-1"
    assert save.json["isPrivate"] is True and save.json["enableInternet"] is False
    assert save.json["modelDataSources"] == ["me/llama/transformers/8b/1"]
    assert save.json["machineShape"] == "NvidiaTeslaT4" and save.json["competitionDataSources"] == ["math-grader"]
    assert "testkey" not in script and "testkey" not in json.dumps(save.json)

    states = [run_kit("status", "run-1").stdout.split()[2] for _ in range(3)]
    assert states == ["queued", "running", "complete"]

    pulled = run_kit("pull", "run-1")
    assert pulled.exit_code == 0, pulled.stderr
    assert (root / "submissions" / "run-1" / "submission.csv").read_bytes() == SUBMISSION
    assert not (root / "submissions" / "run-1" / "adapter").exists()  # only with --all

    submitted = run_kit("submit", "run-1", "--yes", "-m", "first try")
    assert submitted.exit_code == 0, submitted.stderr
    assert "submission 41000001" in submitted.stdout
    assert len(standin.calls("CreateSubmission")) == 1
    assert standin.calls("PUT")[0].body == SUBMISSION
    # The day's limit was asked before the upload.
    names = [r.method_name or r.method for r in standin.requests]
    assert names.index("GetSubmissionLimits") < names.index("StartSubmissionUpload")

    again = run_kit("submit", "run-1", "--yes")
    assert again.exit_code == 1 and "already submitted" in again.stderr
    assert len(standin.calls("CreateSubmission")) == 1  # never the same file twice by accident

    standin.score(41000001, "0.81234")
    assert run_kit("scores").exit_code == 0
    row, = leaderboard_rows(root)
    assert float(row["public_score"]) == pytest.approx(0.81234)
    assert row["private_score"] == ""
    standin.reveal_private(41000001, "0.79")
    assert run_kit("scores").exit_code == 0
    row, = leaderboard_rows(root)
    assert float(row["private_score"]) == pytest.approx(0.79)


def test_bad_submission_never_reaches_kaggle(kaggle_workspace, standin):
    standin.default_files = {"submission.csv": b"ID,is_correct\n1,maybe\n"}
    assert run_kit("push-kernel", "train").exit_code == 0
    for _ in range(3):
        run_kit("status", "run-1")
    assert run_kit("pull", "run-1").exit_code == 0
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 1 and result.stderr.startswith("error: ")
    assert standin.calls("StartSubmissionUpload") == [] and standin.calls("CreateSubmission") == []


def test_wait_shows_failure_message_and_log_tail(kaggle_workspace, standin):
    standin.default_walk = ["RUNNING", "ERROR"]
    standin.default_log = json.dumps([{"stream_name": "stderr", "time": 1, "data": "torch.OutOfMemoryError: CUDA out of memory\n"}])
    pushed = run_kit("push-kernel", "train")
    standin.kernels[f"testuser/kit-math-grader-{workspace_id(kaggle_workspace)}-run-1"].failure_message = "Your notebook tried to allocate more memory than is available."
    assert pushed.exit_code == 0
    result = run_kit("status", "run-1")
    result = run_kit("status", "run-1")
    assert "error" in result.stdout and "allocate more memory" in result.stdout
    assert "CUDA out of memory" in result.stdout


def test_gpu_session_limit_is_one_line_with_a_hint(kaggle_workspace, standin):
    standin.push_error = "Maximum batch GPU session count of 2 reached"
    result = run_kit("push-kernel", "train")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith("error: Kaggle refused the push") and "hint: " in result.stderr
    assert "Traceback" not in result.stderr


def test_401_through_the_cli(kaggle_workspace, standin):
    standin.reject_auth = True
    result = run_kit("push-kernel", "train")
    assert result.exit_code == 1 and "401" in result.stderr and "kaggle.json" in result.stderr


def test_quota_command(kaggle_workspace, standin):
    result = run_kit("quota")
    assert result.exit_code == 0, result.stderr
    lines = dict(line.split("\t") for line in result.stdout.splitlines())
    assert lines["gpu_hours_used"] == "10.0" and lines["gpu_hours_left"] == "20.0" and lines["submissions_left_today"] == "5"


def test_doctor_names_the_rules_url(kaggle_workspace, standin):
    ok = run_kit("doctor")
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert "FAIL" not in ok.stdout and "credentials accepted: user testuser" in ok.stdout
    standin.rules_accepted = False
    result = run_kit("doctor")
    assert result.exit_code == 1
    assert "FAIL  competition rules accepted" in result.stdout
    assert "https://www.kaggle.com/competitions/math-grader/rules" in result.stdout


def test_doctor_refuses_a_kernels_package_that_shadows_hugging_faces_kernels(kaggle_workspace, standin):
    """A workspace from an older kit has kernels/__init__.py: doctor names it and the fix, and its kernels,
    which spell the runtime `kernels.runtime`, still build."""
    kernels = kaggle_workspace / "kernels"
    (kernels / "__init__.py").write_text('"""Kernel templates."""\n')
    train = kernels / "train.py"
    train.write_text(train.read_text().replace("from runtime.", "from kernels.runtime."))
    result = run_kit("doctor")
    assert result.exit_code == 1
    assert "FAIL  kernels/ is not a package" in result.stdout and "delete kernels/__init__.py" in result.stdout
    assert "ok    train kernel builds" in result.stdout
    built = run_kit("build", "train", "-o", "out")
    assert built.exit_code == 0, built.stderr
    assert "kernels.runtime" not in (kaggle_workspace / "out" / "kernel.py").read_text()  # inlined, not left as imports


def fake_wheel(folder: Path, name: str, version: str = "0.1") -> Path:
    """A tiny valid wheel, so pip can 'download' it from a local folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    dist = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(f"{name}/__init__.py", "")
        whl.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        whl.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{dist}/RECORD", "")
    return path


def test_deps_push_creates_then_versions_the_dataset(kaggle_workspace, standin, tmp_path):
    wheels = tmp_path / "wheels"
    fake_wheel(wheels, "kitfakea")
    fake_wheel(wheels, "kitfakeb")
    result = run_kit("deps", "push", "--packages", "kitfakea,kitfakeb", "--find-links", str(wheels))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "testuser/kit-offline-wheels"
    create, = standin.calls("CreateDataset")
    assert create.json["ownerSlug"] == "testuser" and create.json["slug"] == "kit-offline-wheels" and create.json["isPrivate"] is True
    uploaded = sorted(standin.blobs[f["token"]] is not None for f in create.json["files"])
    assert uploaded == [True, True, True]
    names = sorted(r.json["name"] for r in standin.calls("StartBlobUpload"))
    assert names == ["kit-wheels.json", "kitfakea-0.1-py3-none-any.whl", "kitfakeb-0.1-py3-none-any.whl"]  # the manifest: which image
    meta = json.loads((kaggle_workspace / ".kit" / "deps" / "dataset-metadata.json").read_text())
    assert meta["id"] == "testuser/kit-offline-wheels" and "testkey" not in json.dumps(meta)

    again = run_kit("deps", "push", "--packages", "kitfakea,kitfakeb", "--find-links", str(wheels))
    assert again.exit_code == 0, again.stderr
    assert "new version of" in again.stderr
    assert len(standin.calls("CreateDatasetVersion")) == 1 and len(standin.datasets["testuser/kit-offline-wheels"]["versions"]) == 2
