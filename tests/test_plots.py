"""kit plot: PNG files drawn from real run records of the local backend; matplotlib stays off kit's start path."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

from kit.leaderboard.plots import rolling_mean
from tests.helpers import PROBS_TEMPLATE, install_template


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def _runs(workspace, kit_cli, count=2):
    install_template(workspace, PROBS_TEMPLATE)
    for seed in range(1, count + 1):
        result = kit_cli("push-kernel", "train", "--set", "val_rows=60", "--set", f"seed={seed}", "--wait")
        assert result.exit_code == 0, result.stderr


def test_loss_plot_of_two_runs(workspace, kit_cli):
    _runs(workspace, kit_cli)
    result = kit_cli("plot", "loss", "run-1", "run-2")
    assert result.exit_code == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == workspace / "plots" / "loss-run-1-run-2.png" and path.is_file()
    width, height = _png_size(path)
    assert 600 <= width <= 2000 and 400 <= height <= 1500
    assert path.stat().st_size > 20_000  # two panels of lines, not an empty canvas

    custom = kit_cli("plot", "loss", "run-2", "-o", "out/l.png", "--window", "5")
    assert custom.exit_code == 0 and (workspace / "out" / "l.png").is_file()


def test_scores_plot_with_intervals_and_private(workspace, kit_cli):
    _runs(workspace, kit_cli, count=3)
    assert kit_cli("submit", "run-1", "--yes").exit_code == 0
    assert kit_cli("submit", "run-2", "--yes").exit_code == 0
    assert kit_cli("practice", "close").exit_code == 0  # private scores become known
    result = kit_cli("plot", "scores")
    assert result.exit_code == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == workspace / "plots" / "scores.png"
    width, height = _png_size(path)
    assert 600 <= width <= 2000 and 200 <= height <= 1500 and path.stat().st_size > 10_000


def test_loss_plot_refuses_a_run_without_steps(workspace, kit_cli):
    _runs(workspace, kit_cli)
    assert kit_cli("ensemble", "run-1", "run-2").exit_code == 0
    result = kit_cli("plot", "loss", "run-3")
    assert result.exit_code == 1 and "run-3 has no per-step losses" in result.stderr
    empty = kit_cli("plot", "scores", cwd=workspace)
    assert empty.exit_code == 0  # runs have validation scores


def test_rolling_mean():
    assert rolling_mean([1, 2, 3, 4], 2) == [1, 1.5, 2.5, 3.5]
    assert rolling_mean([4.0], 10) == [4.0]


def test_cli_start_does_not_import_matplotlib():
    code = "import sys, kit.cli; assert 'matplotlib' not in sys.modules and 'numpy' not in sys.modules, 'heavy import'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
