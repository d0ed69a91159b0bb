"""One image per workspace: the first complete Kaggle run records the image it ran on in kit.toml, and later pushes
name it (docker_image, pinning type original) on the wire; pin_image=false opts out."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.conftest import run_kit
from tests.kaggle_standin.fixtures import init_kaggle_workspace


@pytest.fixture
def kaggle_workspace(kaggle_env, standin, tmp_path, monkeypatch) -> Path:
    root = init_kaggle_workspace(tmp_path, monkeypatch)
    standin.default_files = {"submission.csv": b"ID,is_correct\n1,True\n"}
    return root


def _image(root: Path) -> str:
    return tomllib.loads((root / "kit.toml").read_text())["kaggle"]["docker_image"]


def _finish(run_id: str) -> None:
    for _ in range(3):
        assert run_kit("status", run_id).exit_code == 0


def test_the_first_complete_run_pins_the_workspace_image(kaggle_workspace, standin):
    root = kaggle_workspace
    assert run_kit("push-kernel", "train").exit_code == 0
    first = standin.calls("SaveKernel")[0].json
    assert "dockerImage" not in first and "dockerImagePinningType" not in first  # nothing recorded yet
    assert _image(root) == ""
    _finish("run-1")
    assert standin.calls("GetKernel")[0].json["kernelSlug"] == first["slug"].split("/")[1]
    assert _image(root) == standin.docker_image
    assert "# the Kaggle image every kernel of this workspace runs on" in (root / "kit.toml").read_text()  # comments kept

    standin.docker_image = "gcr.io/kaggle-private-byod/python@sha256:" + "9" * 64  # Kaggle's image moved on
    assert run_kit("push-kernel", "train").exit_code == 0
    second = standin.calls("SaveKernel")[1].json
    assert second["dockerImage"] == _image(root) != standin.docker_image
    assert second["dockerImagePinningType"] == "original"
    _finish("run-2")
    assert _image(root) == "gcr.io/kaggle-private-byod/python@sha256:" + "5" * 64  # the first image stays

    assert run_kit("push-kernel", "infer", "--set", "pin_image=false").exit_code == 0
    third = standin.calls("SaveKernel")[2].json
    assert "dockerImage" not in third and "dockerImagePinningType" not in third


def test_an_opted_out_run_records_nothing(kaggle_workspace, standin):
    assert run_kit("push-kernel", "train", "--set", "pin_image=false").exit_code == 0
    pushed = len(standin.calls("GetKernel"))  # the push reads the kernel's version (exactly-once check)
    _finish("run-1")
    assert _image(kaggle_workspace) == "" and len(standin.calls("GetKernel")) == pushed  # no image lookup


def test_a_failed_image_lookup_only_warns_and_the_next_run_records_it(kaggle_workspace, standin):
    assert run_kit("push-kernel", "train").exit_code == 0
    standin.inject("GetKernel", status=404, times=1)  # the image lookup after the run, not the push's version check
    _finish("run-1")
    assert _image(kaggle_workspace) == ""
    assert run_kit("push-kernel", "train").exit_code == 0
    _finish("run-2")
    assert _image(kaggle_workspace) == standin.docker_image


def test_failed_runs_do_not_pin(kaggle_workspace, standin):
    standin.default_walk = ["RUNNING", "ERROR"]
    assert run_kit("push-kernel", "train").exit_code == 0
    pushed = len(standin.calls("GetKernel"))  # the push reads the kernel's version (exactly-once check)
    _finish("run-1")
    assert _image(kaggle_workspace) == "" and len(standin.calls("GetKernel")) == pushed  # no image lookup
