"""Names a Kaggle user cannot confuse: `kit runs` is kit's table of your runs (leaderboard.csv), `kit board` the
competition's leaderboard; `kit leaderboard` (the old name of `kit runs`) keeps working with a notice. `kit sweep`'s
usage names its `run` subcommand, which `kit sweep SPEC.toml` stands for."""

from __future__ import annotations

from tests.helpers import CONSTANT_TEMPLATE, install_template

NOTICE = ("note: kit leaderboard is now kit runs (your runs, kit's table leaderboard.csv); "
          "the competition's leaderboard is kit board\n")


def test_runs_is_kits_table_and_leaderboard_still_works_with_a_notice(workspace, kit_cli):
    install_template(workspace, CONSTANT_TEMPLATE)
    assert kit_cli("push-kernel", "train", "--wait").exit_code == 0
    runs = kit_cli("runs", "--all-columns")
    old = kit_cli("leaderboard", "--all-columns")
    assert runs.exit_code == old.exit_code == 0
    assert runs.stdout == old.stdout and "run-1" in runs.stdout
    assert old.stderr == runs.stderr + NOTICE and "kit leaderboard" not in runs.stderr
    assert kit_cli("leaderboard", "--json").stdout == kit_cli("runs", "--json").stdout


def test_the_help_tells_the_two_tables_apart(workspace, kit_cli):
    top = kit_cli("--help").stdout
    listed = [line.split()[0] for line in top.splitlines() if line.startswith("  ") and not line.startswith("    ")]
    assert "runs" in listed and "board" in listed and "leaderboard" not in listed
    assert "kit runs                           your runs with their settings and scores (kit's table, leaderboard.csv)" in top
    assert "kit board                          the competition's leaderboard (its public board)" in top
    assert "Not the competition's leaderboard: that is `kit board`" in " ".join(kit_cli("runs", "--help").stdout.split())
    board = " ".join(kit_cli("board", "--help").stdout.split())
    assert "The competition's leaderboard" in board and "kaggle competitions leaderboard" in board and "kit runs" in board


def test_sweep_help_names_its_run_subcommand_in_the_usage(workspace, kit_cli):
    shown = kit_cli("sweep", "--help").stdout
    usage = " ".join(shown.split("\n\n")[0].split())
    assert usage.startswith("Usage: kit sweep [run] SPEC.toml [OPTIONS] | status [NAME] | submit NAME")
    assert "kit sweep run SPEC.toml [--yes]" in shown and "kit sweep SPEC.toml is the same command" in shown
    assert "  run  " in shown  # and the subcommand itself is listed
