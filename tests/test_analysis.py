"""kit leaderboard --where/--sort/--group-by on polars: cells shown as the file has them, the file untouched."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import run_kit

# A leaderboard a person has edited: an extra column (notes), a number written 0.80, a blank score, a text cell.
TABLE = (
    "run,kernel,status,prompt,val_accuracy,public_score,notes\n"
    "run-1,train,complete,grader,0.80,0.79,first\n"
    "run-2,train,complete,grader,0.7512,,\"lr 2e-4, r=16\"\n"
    "run-3,train,error,plain,,,oom\n"
    "run-4,train,complete,plain,0.91,0.88,best so far\n"
    "run-5,infer,complete,plain,n/a,0.5,\n"
)


@pytest.fixture
def table(tmp_path, monkeypatch):
    monkeypatch.delenv("KIT_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run_kit("init").exit_code == 0
    path = tmp_path / "leaderboard.csv"
    path.write_bytes(TABLE.encode())
    return path


def rows(*args: str) -> list[dict[str, str]]:
    result = run_kit("leaderboard", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_where_compares_numbers_as_numbers_and_keeps_cells_as_typed(table):
    got = rows("--where", "val_accuracy > 0.78")
    assert [r["run"] for r in got] == ["run-1", "run-4"]
    assert got[0]["val_accuracy"] == 0.8 and got[0]["notes"] == "first"  # --json: a cell that spells a number is one
    assert [r["run"] for r in rows("--where", "prompt = 'plain' and status != 'error'")] == ["run-4", "run-5"]
    assert [r["run"] for r in rows("--where", "notes LIKE '%r=16%'")] == ["run-2"]
    assert [r["run"] for r in rows("--where", "public_score <= 0.79")] == ["run-1", "run-5"]  # blanks match no number
    assert table.read_bytes() == TABLE.encode()


def test_sort_puts_the_best_first_and_blanks_last(table):
    assert [r["run"] for r in rows("--sort", "val_accuracy")] == ["run-4", "run-1", "run-2", "run-3", "run-5"]
    assert [r["run"] for r in rows("--sort", "val_accuracy", "--ascending")][:3] == ["run-2", "run-1", "run-4"]
    assert [r["run"] for r in rows("--sort", "prompt", "--ascending")][:2] == ["run-1", "run-2"]


def test_group_by_gives_mean_and_best_per_group(table):
    got = {r["prompt"]: r for r in rows("--group-by", "prompt")}
    assert got["grader"]["runs"] == 2
    assert got["grader"]["val_accuracy_mean"] == pytest.approx((0.80 + 0.7512) / 2)
    assert got["grader"]["val_accuracy_best"] == 0.8 and got["grader"]["public_score_best"] == 0.79
    assert got["plain"]["val_accuracy_mean"] == 0.91  # the blank and the n/a cells are not numbers
    counted = rows("--where", "kernel = 'train'", "--group-by", "prompt", "--metric", "public_score", "--agg", "count,min")
    assert counted == [{"prompt": "grader", "runs": 2, "public_score_count": 1, "public_score_min": 0.79},
                       {"prompt": "plain", "runs": 2, "public_score_count": 1, "public_score_min": 0.88}]
    table_text = run_kit("leaderboard", "--group-by", "prompt", "--sort", "val_accuracy_best")
    assert table_text.stdout.splitlines()[2].startswith("plain")
    assert table.read_bytes() == TABLE.encode()


def test_group_by_best_of_a_lower_is_better_metric_is_its_smallest(tmp_path, monkeypatch):
    monkeypatch.delenv("KIT_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run_kit("init").exit_code == 0
    with open(tmp_path / "kit.toml", "a", encoding="utf-8") as fh:  # a log-loss task: lower is better
        fh.write('\n[task]\npreset = "pairwise"\n\n[task.target]\none_hot = ["winner_model_a", "winner_model_b", "winner_tie"]\n')
    (tmp_path / "leaderboard.csv").write_text("run,kernel,status,prompt,val_accuracy,val_log_loss,public_score\n"
                                              "run-1,train,complete,grader,,0.95,0.97\n"
                                              "run-2,train,complete,grader,,1.02,1.04\n")
    (got,) = rows("--group-by", "prompt")
    assert got["val_log_loss_best"] == 0.95 and got["public_score_best"] == 0.97  # the task's column summarised too
    from kit.leaderboard.analysis import runs_where
    from kit.workspace.layout import load

    ws = load(tmp_path)  # ensemble --top and --by choose the best first: the smallest log loss, public or validation
    assert runs_where(ws, "", sort_by="public_score", top=1) == runs_where(ws, "", sort_by="val_log_loss", top=1) == ["run-1"]


@pytest.mark.parametrize("args, message", [
    (("--where", "val_accuracy >"), "cannot read the filter 'val_accuracy >'"),
    (("--where", "lr > 1"), "no column 'lr' in leaderboard.csv"),
    (("--group-by", "prompt", "--agg", "median"), "unknown aggregate 'median'"),
    (("--sort", "nope"), "no column 'nope'"),
])
def test_bad_analysis_options_are_one_line(table, args, message):
    result = run_kit("leaderboard", *args)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: {message}") and "hint: " in result.stderr


# Issue 30: the hand parser took `&&` and `r == 8` as part of a value and `or` as text, and matched runs it should not.
RANKED = (
    "run,kernel,status,val_accuracy,r,prompt,notes\n"
    "run-1,train,complete,0.61,8,grader,\n"
    "run-2,train,complete,0.72,32,grader,baseline\n"
    "run-3,train,complete,0.45,8,plain,\n"
    "run-4,train,error,,16,plain,oom\n"
)


@pytest.fixture
def ranked(table):
    table.write_bytes(RANKED.encode())
    return table


@pytest.mark.parametrize("condition, runs", [
    ("val_accuracy > 0.5 AND r = 8", ["run-1"]),  # not run-2 (r=32)
    ("val_accuracy > 0.5 and r == 8", ["run-1"]),
    ("r = 8 or r = 32", ["run-1", "run-2", "run-3"]),  # `or` is a connective, not part of a value
    ("r = 16 OR prompt = 'grader'", ["run-1", "run-2", "run-4"]),
    ("NOT (prompt = 'plain') AND val_accuracy >= 0.7", ["run-2"]),
    ("r IN (16, 32)", ["run-2", "run-4"]),
    ("val_accuracy IS NULL", ["run-4"]),  # a blank cell is NULL and matches no comparison
    ("notes LIKE 'base%'", ["run-2"]),
    ("(r = 8 OR r = 16) AND status <> 'error'", ["run-1", "run-3"]),
])
def test_where_is_sql_with_and_or_not(ranked, condition, runs):
    assert [r["run"] for r in rows("--where", condition)] == runs


@pytest.mark.parametrize("condition, message, hint", [
    ("val_accuracy > 0.5 && r == 8", "cannot read the filter 'val_accuracy > 0.5 && r == 8': '&&' is not SQL", "write AND"),
    ("r = 8 || r = 32", "'||' is not SQL", "write OR"),
    ("val_accuracy > 0.5 and (r = 8", "cannot read the filter", "val_accuracy > 0.8 AND prompt = 'grader'"),
    ("val_acuracy > 0.5", "no column 'val_acuracy' in leaderboard.csv (did you mean 'val_accuracy'?)", "columns: run, kernel"),
    ("prompt = grader", "no column 'grader' in leaderboard.csv", "a text value goes in single quotes ('grader')"),
    ("prompt > 3", "compares 'prompt', a column of text, with a number", "quote the value"),
    ("r = 'eight'", "compares 'r', a column of numbers, with a text value", "compare it with a number"),
    ("val_accuracy", "is not a condition", "compare it with something"),
])
def test_a_filter_that_cannot_be_read_is_one_line_with_the_fix(ranked, condition, message, hint):
    result = run_kit("leaderboard", "--where", condition)
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert lines[1].startswith("hint: ") and hint in lines[1], result.stderr
    assert ranked.read_bytes() == RANKED.encode()


def test_plain_leaderboard_does_not_import_polars(table):
    code = ("import sys; from kit.cli import main\n"
            "try:\n    main(['leaderboard'])\nexcept SystemExit:\n    pass\n"
            "print('POLARS' if 'polars' in sys.modules else 'NONE')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=table.parent).stdout
    assert out.strip().splitlines()[-1] == "NONE"


def test_ensemble_pick_and_plots_choose_runs_from_the_table(workspace, kit_cli):
    """The same --where as kit leaderboard chooses ensemble members, pick candidates and plotted runs."""
    from kit.leaderboard import sheet
    from tests.helpers import PROBS_TEMPLATE, install_template

    install_template(workspace, PROBS_TEMPLATE)
    for seed in (1, 2, 3):
        assert kit_cli("push-kernel", "train", "--set", "val_rows=60", "--set", f"seed={seed}", "--wait").exit_code == 0
    _, rows = sheet.read(workspace / "leaderboard.csv")
    by_val = sorted(rows, key=lambda r: -float(r["val_accuracy"]))
    best_two = [r["run"] for r in by_val[:2]]

    made = kit_cli("ensemble", "--where", "kernel = 'train'", "--top", "2", "--json")
    assert made.exit_code == 0, made.stderr
    data = json.loads(made.stdout)
    assert list(data["members"]) == best_two and f"members from kit's table: {', '.join(best_two)}" in made.stderr
    assert json.loads((workspace / "submissions" / data["run"] / "run.json").read_text())["config"]["runs"] == best_two
    both = kit_cli("ensemble", "run-1", "run-2", "--top", "2")
    assert both.exit_code == 1 and "not both" in both.stderr

    for run in ("run-1", "run-2", "run-3"):
        assert kit_cli("submit", run, "--yes").exit_code == 0
    picked = kit_cli("pick", "-n", "2", "--where", "seed <> 1", "--json")
    assert picked.exit_code == 0, picked.stderr
    assert {p["run"] for p in json.loads(picked.stdout)["picks"]} == {"run-2", "run-3"}  # run-1 never considered
    assert {p["run"] for p in json.loads(kit_cli("pick", "-n", "3", "--json").stdout)["picks"]} == {"run-1", "run-2", "run-3"}

    plotted = kit_cli("plot", "scores", "--where", "seed = 3")
    assert plotted.exit_code == 0, plotted.stderr
    from kit.leaderboard.plots import run_scores
    from kit.workspace.layout import load

    assert [s.run for s in run_scores(load(workspace), {"run-3"})] == ["run-3"]
    nothing = kit_cli("plot", "scores", "--where", "seed = 99")
    refused = kit_cli("pick", "-n", "2", "--where", "seed = 1 && kernel = 'train'")  # the same errors wherever a filter is typed
    assert refused.exit_code == 1 and "'&&' is not SQL" in refused.stderr and "hint: write AND" in refused.stderr
    assert nothing.exit_code == 1 and "no run has" in nothing.stderr
