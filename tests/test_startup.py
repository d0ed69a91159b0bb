"""kit's start stays light: the CLI's path imports no torch, transformers, numpy, pandas or polars (commands that
need them import them inside)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "peft", "numpy", "pandas", "polars", "matplotlib", "kaggle", "requests")

# Runs kit's real entry point in a fresh interpreter, then reports which heavy packages were imported.
PROBE = """
import json, sys
from kit.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))
print("HEAVY=" + json.dumps(heavy))
"""


def _imported(args: list[str], cwd: Path) -> list[str]:
    code = f"HEAVY = {HEAVY!r}\n{PROBE}"
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    line = next(l for l in done.stdout.splitlines() if l.startswith("HEAVY="))
    return json.loads(line.removeprefix("HEAVY="))


@pytest.mark.parametrize("args", [["--help"], ["status"], ["leaderboard"], ["build", "train", "--help-settings"]])
def test_the_cli_path_imports_nothing_heavy(tmp_path, args):
    from tests.conftest import run_kit

    assert run_kit("init", cwd=tmp_path).exit_code == 0
    assert _imported(args, tmp_path) == []


def test_the_probe_sees_a_heavy_import(tmp_path):
    """The probe itself can fail: a command that does import numpy is reported."""
    code = f"HEAVY = {HEAVY!r}\nimport numpy\n{PROBE}"
    done = subprocess.run([sys.executable, "-c", code, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert 'HEAVY=["numpy"]' in done.stdout
