"""Shared fixtures: a workspace with a small practice competition, and the CLI run in-process."""

from __future__ import annotations

import io
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

# The Kaggle stand-in's fixtures (standin, kaggle_env, kaggle_ws, backend) for every test module that asks for them.
pytest_plugins = ["tests.kaggle_standin.fixtures"]


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def run_kit(*args: str, cwd: Path | None = None, input: str | None = None) -> Result:
    """Run `kit ARGS` in-process through its real entry point; return exit code and output."""
    from kit.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_cwd, old_stdin = Path.cwd(), sys.stdin
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        sys.stdin = io.StringIO(input or "")
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(old_cwd)
        sys.stdin = old_stdin
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def kit_cli():
    return run_kit


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch) -> Path:
    """A fresh workspace (kit init) with a small practice competition, as the cwd."""
    monkeypatch.delenv("KIT_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run_kit("init").exit_code == 0
    result = run_kit("practice", "init", "--train-rows", "300", "--test-rows", "40", "--daily-limit", "3")
    assert result.exit_code == 0, result.stderr
    return tmp_path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama and its tokenizer in a folder, as a kernel's `model` setting loads it (made once a session)."""
    from tests.test_kernel_runtime import make_model, make_tokenizer

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = make_tokenizer()
    make_model(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
