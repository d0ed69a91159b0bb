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


# -- what is drawn (issue 29): the figures' artists, not only a PNG of some size ------------------------------------

# A train run of four steps, as a smoke run logs them: too few for a rolling mean to smooth anything.
SHORT_TEMPLATE = PROBS_TEMPLATE.replace("n, peak, warmup = 120,", "n, peak, warmup = 4,").replace("(n - warmup)", "max(1, n - warmup)")


def test_scores_plot_draws_the_majority_baseline_and_marks_ensembles(workspace, kit_cli):
    from kit.leaderboard.plots import scores_figure
    from kit.workspace import layout

    _runs(workspace, kit_cli, count=2)
    assert kit_cli("ensemble", "run-1", "run-2").exit_code == 0
    fig = scores_figure(layout.load())
    ax = fig.axes[0]
    labels = {t.get_text() for t in ax.get_yticklabels()}
    assert labels == {"run-1", "run-2", "run-3  [ensemble of run-1+run-2]"}
    # The baseline: a vertical line at the validation rows' majority share, named in the legend.
    with open(workspace / "submissions" / "run-1" / "val_predictions.csv") as fh:
        truth = [line.split(",")[1] == "True" for line in fh.read().splitlines()[1:]]
    share = max(sum(truth), len(truth) - sum(truth)) / len(truth)
    majority = [line for line in ax.get_lines() if "the majority class" in line.get_label()]
    assert len(majority) == 1 and list(majority[0].get_xdata()) == [share, share]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("always ") and "(the majority class)" in t for t in legend)
    assert "validation (95% interval), ensemble" in legend  # the ensemble's point is drawn apart, as a diamond
    diamonds = [line for line in ax.get_lines() if line.get_marker() == "D"]
    assert diamonds and list(diamonds[0].get_ydata()) == [0.15]  # the bottom row (run-3), validation offset


def test_loss_title_promises_faint_raw_values_only_where_they_are_drawn(workspace, kit_cli):
    from kit.leaderboard.plots import loss_figure
    from kit.workspace import layout

    install_template(workspace, SHORT_TEMPLATE)
    assert kit_cli("push-kernel", "train", "--set", "val_rows=60", "--wait").exit_code == 0
    install_template(workspace, PROBS_TEMPLATE)
    assert kit_cli("push-kernel", "train", "--set", "val_rows=60", "--wait").exit_code == 0
    ws = layout.load()
    short = loss_figure(ws, ["run-1"]).axes[0]
    assert len(short.get_lines()) == 1 and all(line.get_alpha() in (None, 1) for line in short.get_lines())
    assert short.get_title() == "training loss per step" and "faint" not in short.get_title()
    long = loss_figure(ws, ["run-2"]).axes[0]
    faint = [line for line in long.get_lines() if line.get_alpha() == 0.25]
    assert len(faint) == 1 and len(faint[0].get_xdata()) == 120
    assert long.get_title() == "training loss per step (rolling mean; raw values faint)"


def test_plot_without_matplotlib_names_the_extra(workspace, kit_cli, monkeypatch):
    _runs(workspace, kit_cli, count=1)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError, as when not installed
    for args in (("plot", "scores"), ("plot", "loss", "run-1")):
        result = kit_cli(*args)
        assert result.exit_code == 1
        assert result.stderr.splitlines() == [
            "error: kit plot needs matplotlib, which is not installed (it comes with kit's [plots] extra)",
            "hint: pip install -e '.[plots]' in kit's folder (or pip install matplotlib)",
        ]
