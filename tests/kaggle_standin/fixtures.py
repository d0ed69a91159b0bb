"""pytest fixtures: a running stand-in, and an environment that points the real kaggle client at it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from kit.backends.kaggle.backend import KaggleBackend
from kit.backends.kaggle.session import KaggleSession, RetryPolicy
from kit.runs.store import RunRecord
from kit.workspace.layout import Workspace
from tests.kaggle_standin.server import PracticeScorer, StandIn

# Short waits so fault tests stay fast; the timeout still gives a hung request 1.5 s.
FAST = RetryPolicy(timeout=1.5, attempts=3, backoff=0.01, max_wait=2.0)


def serve(server: StandIn) -> Iterator[StandIn]:
    """Run `server` (a StandIn or a subclass with its own faults) for one test."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def standin() -> Iterator[StandIn]:
    yield from serve(StandIn())


@pytest.fixture
def kaggle_env(standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake credentials in a fresh KAGGLE_CONFIG_DIR and HOME; the client's requests go to the stand-in."""
    for name in list(os.environ):
        if name.startswith("KAGGLE_") or name.lower() in ("no_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    config = tmp_path / "kaggle-config"
    home.mkdir()
    config.mkdir()
    (config / "kaggle.json").write_text(json.dumps({"username": "testuser", "key": "testkey0123456789"}))
    (config / "kaggle.json").chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the client keeps resumable-upload state under the temp dir
    monkeypatch.setattr(tempfile, "tempdir", None)
    for key, value in standin.env().items():
        monkeypatch.setenv(key, value)
    return config


def init_kaggle_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A new Kaggle-backend workspace (kit init) as the cwd, with short timeouts and retries for fault tests."""
    from tests.conftest import run_kit

    root = tmp_path / "ws"
    root.mkdir()
    monkeypatch.delenv("KIT_WORKSPACE", raising=False)
    monkeypatch.chdir(root)
    for key, value in {"KIT_KAGGLE_TIMEOUT": "1.5", "KIT_KAGGLE_ATTEMPTS": "3", "KIT_KAGGLE_BACKOFF": "0.01"}.items():
        monkeypatch.setenv(key, value)
    result = run_kit("init", "--backend", "kaggle", "--competition", "math-grader")
    assert result.exit_code == 0, result.stderr
    return root


@pytest.fixture
def kaggle_ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    (root / "submissions").mkdir(parents=True)
    return Workspace(root=root, competition="math-grader", backend="kaggle")


@pytest.fixture
def backend(kaggle_env: Path, kaggle_ws: Workspace) -> KaggleBackend:
    return KaggleBackend(kaggle_ws, KaggleSession(FAST))


def make_run(remote: str = "", run_id: str = "run-1") -> RunRecord:
    return RunRecord(id=run_id, kernel="train", backend="kaggle", config={}, remote=remote)


def build_kernel_folder(folder: Path, slug: str = "kit-math-grader-run-1", owner: str = "USERNAME", **meta) -> Path:
    """A kernel folder as kit/build/script.py writes it: kernel.py + kernel-metadata.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.py").write_text("# kit kernel\nprint('training')\n")
    data = {
        "id": f"{owner}/{slug}",
        "title": slug.replace("-", " "),
        "code_file": "kernel.py",
        "language": "python",
        "kernel_type": "script",
        "is_private": True,
        "enable_gpu": True,
        "enable_tpu": False,
        "enable_internet": False,
        "machine_shape": "NvidiaTeslaT4",
        "session_timeout_seconds": 3600,
        "competition_sources": ["math-grader"],
        "dataset_sources": ["testuser/kit-offline-wheels"],
        "kernel_sources": [f"{owner}/kit-math-grader-run-0"],
        "model_sources": [],
        "keywords": [],
    }
    data.update(meta)
    (folder / "kernel-metadata.json").write_text(json.dumps(data, indent=2))
    return folder


def serve_practice(standin: StandIn, practice: Path, slug: str) -> PracticeScorer:
    """Serve a practice competition of any shape (a folder `kit practice init --task SHAPE` made) as the Kaggle
    competition `slug`: its data files and sample submission, uploads scored by its task's metric."""
    scorer = PracticeScorer(Path(practice))
    standin.competitions = {slug: False}
    standin.competition_files = scorer.files()
    standin.scorer = scorer
    return scorer
