"""kit pick: estimates that weigh validation and public by their sizes, diverse picks, and a simulation that
shows them beating the top public scores on private scores."""

from __future__ import annotations

import json

import pytest

from kit.finals.pick import Candidate, choose, correlation
from kit.finals.pick import TestPredictions as Predictions
from kit.leaderboard import sheet
from kit.leaderboard.stats import wilson_interval
from tests.pick_simulation import Scenario, simulate
from tests.helpers import PROBS_TEMPLATE, install_template

IDS = tuple(str(i) for i in range(1000))


def _predictions(flip_every: int, offset: int = 0) -> Predictions:
    """Labels that differ from a base pattern on every `flip_every`-th row (0: the base pattern)."""
    bits = 0
    for i in range(len(IDS)):
        value = (i * 7919) % 5 < 4
        if flip_every and (i + offset) % flip_every == 0:
            value = not value
        if value:
            bits |= 1 << i
    return Predictions(IDS, bits)


def test_wilson_interval_and_correlation():
    low, high = wilson_interval(0.84, 1000)
    assert (round(low, 4), round(high, 4)) == (0.816, 0.8614)
    assert correlation(0.8, 0.8, 0.0) == pytest.approx(1.0)
    # Two independent runs at 80% disagree on 2 * 0.8 * 0.2 = 32% of rows.
    assert correlation(0.8, 0.8, 0.32) == pytest.approx(0.0, abs=1e-9)


def test_large_validation_outweighs_a_lucky_public_score():
    runs = [
        Candidate("run-1", val_accuracy=0.80, val_rows=5000, public_score=0.845, predictions=_predictions(3)),
        Candidate("run-2", val_accuracy=0.83, val_rows=5000, public_score=0.835, predictions=_predictions(3, 1)),
        Candidate("run-3", val_accuracy=0.81, val_rows=5000, public_score=0.81, predictions=_predictions(3, 2)),
        Candidate("run-4", val_accuracy=0.805, val_rows=5000, public_score=0.80, predictions=_predictions(4)),
    ]
    result = choose(runs, public_rows=500, private_rows=1500, n=1)
    best = result.picks[0]
    assert best.candidate.run == "run-2"  # public rank 2, but 5000 validation rows say it is the better run
    assert any("public rank 2 of 4" in r for r in best.reasons)
    # Shrinkage: the best run's estimate sits between its combined score and the mean of the runs.
    assert best.estimate.mean < best.estimate.combined
    assert any("shrunk" in r for r in best.reasons)


def test_near_duplicate_is_passed_over_for_a_different_run():
    runs = [
        Candidate("run-1", val_accuracy=0.84, val_rows=2000, public_score=0.84, predictions=_predictions(0)),
        Candidate("run-2", val_accuracy=0.838, val_rows=2000, public_score=0.839, predictions=_predictions(100)),  # 1% apart
        Candidate("run-3", val_accuracy=0.834, val_rows=2000, public_score=0.835, predictions=_predictions(4)),
        Candidate("run-4", val_accuracy=0.80, val_rows=2000, public_score=0.80, predictions=_predictions(3, 1)),
    ]
    result = choose(runs, public_rows=1000, private_rows=1000, n=2)
    assert [p.candidate.run for p in result.picks] == ["run-1", "run-3"]
    second = result.picks[1]
    assert any("chosen over run-2" in r for r in second.reasons)
    assert any("disagrees with run-1 on 25.0% of test rows" in r for r in second.reasons)
    assert second.expected_best > result.picks[0].expected_best


def test_simulation_pick_beats_top_three_public():
    """Acceptance: over many simulated competitions kit pick keeps at least the private score of the top three
    public scores, and clearly more when validation is larger than the public split."""
    equal = simulate(Scenario(val_rows=1000, public_rows=1000, private_rows=1000), trials=250, seed=1)
    assert equal.diff_mean + 2 * equal.diff_se >= 0
    larger = simulate(Scenario(val_rows=5000, public_rows=500, private_rows=1500), trials=250, seed=2)
    assert larger.diff_mean > 0.001 and larger.diff_mean > 3 * larger.diff_se
    duplicates = simulate(Scenario(val_rows=1000, public_rows=1000, private_rows=1000, kind="near-duplicates"), trials=250, seed=3)
    assert duplicates.kit_best_of_picks > duplicates.top3_estimates  # keeping near-duplicates apart pays


def _workspace_with_runs(workspace, kit_cli, submit=("run-1", "run-2")):
    install_template(workspace, PROBS_TEMPLATE)
    for seed in (1, 2, 3):
        assert kit_cli("push-kernel", "train", "--set", "val_rows=60", "--set", f"seed={seed}", "--wait").exit_code == 0
    for run in submit:
        assert kit_cli("submit", run, "--yes").exit_code == 0


def test_pick_command_only_submitted_runs_with_reasons(workspace, kit_cli):
    _workspace_with_runs(workspace, kit_cli)
    result = kit_cli("pick")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    picked = [line.split()[1] for line in lines if line[:2] in ("1.", "2.", "3.")]
    assert sorted(picked) == ["run-1", "run-2"]  # run-3 has no scored submission
    assert "best estimate of true accuracy" in result.stdout and "expected best private score" in result.stdout
    assert "run-3 (no scored submission" in result.stderr

    data = json.loads(kit_cli("pick", "--json", "-n", "1").stdout)
    assert len(data["picks"]) == 1 and data["picks"][0]["run"] in ("run-1", "run-2")
    assert data["public_rows"] == 20 and data["picks"][0]["reasons"]

    wider = json.loads(kit_cli("pick", "--json", "--include-unsubmitted").stdout)
    assert {p["run"] for p in wider["picks"]} == {"run-1", "run-2", "run-3"}
    unsubmitted = next(p for p in wider["picks"] if p["run"] == "run-3")
    assert any("never submitted" in r for r in unsubmitted["reasons"])


def test_pick_mark_writes_final_and_says_to_click(workspace, kit_cli):
    _workspace_with_runs(workspace, kit_cli)
    path = workspace / "leaderboard.csv"
    result = kit_cli("pick", "-n", "1", "--mark")
    assert result.exit_code == 0, result.stderr
    assert "https://www.kaggle.com/competitions/practice-math/submissions" in result.stderr
    _, rows = sheet.read(path)
    finals = {r["run"]: r["final"] for r in rows}
    first = result.stdout.split()[1]
    assert finals == {first: "1", **{r: "" for r in finals if r != first}}
    # A later --mark replaces earlier marks; a sync of the runs keeps them.
    assert kit_cli("pick", "-n", "2", "--mark").exit_code == 0
    assert kit_cli("scores").exit_code == 0
    _, rows = sheet.read(path)
    assert sorted(r["final"] for r in rows) == ["", "1", "2"]
    assert rows[0]["val_ci95"] and rows[0]["public_ci95"]  # the intervals the issue asks for


def test_pick_without_scored_submissions_is_refused(workspace, kit_cli):
    _workspace_with_runs(workspace, kit_cli, submit=())
    result = kit_cli("pick")
    assert result.exit_code == 1 and "no run has a scored submission" in result.stderr and "hint: kit submit" in result.stderr
