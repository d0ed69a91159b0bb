"""Where a kernel reads its inputs and writes its outputs: Kaggle's tree, movable with KIT_KAGGLE_ROOT."""

from __future__ import annotations

import os
from pathlib import Path


def kaggle_root() -> Path:
    """The root of the Kaggle tree: /kaggle on Kaggle, anywhere else when KIT_KAGGLE_ROOT is set."""
    return Path(os.environ.get("KIT_KAGGLE_ROOT", "/kaggle"))


def input_dir() -> Path:
    """Read-only inputs: competition data and attached sources."""
    return kaggle_root() / "input"


def working_dir() -> Path:
    """Outputs that Kaggle saves (and kit pulls) at the end of the session."""
    path = kaggle_root() / "working"
    path.mkdir(parents=True, exist_ok=True)
    return path


def competition_dir(slug: str) -> Path:
    """The competition's files: /kaggle/input/competitions/<slug>, or /kaggle/input/<slug> on older images."""
    for candidate in (input_dir() / "competitions" / slug, input_dir() / slug):
        if (candidate / "train.csv").is_file() or (candidate / "test.csv").is_file():
            return candidate
    raise FileNotFoundError(
        f"competition data for {slug!r} not found under {input_dir()}; attach the competition as a source"
    )


def find_source(run_id: str) -> Path:
    """The attached output of an earlier run (its kernel slug ends with the run id), searched two levels deep."""
    root = input_dir()
    for depth in ("*", "*/*", "*/*/*"):
        for path in sorted(root.glob(depth)):
            if path.is_dir() and (path.name == run_id or path.name.endswith("-" + run_id)):
                return path
    raise FileNotFoundError(f"the output of {run_id} is not attached under {root}; push with it as a kernel source")
