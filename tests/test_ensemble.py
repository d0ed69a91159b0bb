"""kit ensemble: a new, submittable run whose probabilities and validation accuracy are the members' weighted average."""

from __future__ import annotations

import csv
import json

from kit.leaderboard import sheet
from tests.helpers import CONSTANT_TEMPLATE, PROBS_TEMPLATE, install_template


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _push(kit_cli, *sets):
    args = ["push-kernel", "train", "--set", "val_rows=60", "--wait"]
    for s in sets:
        args += ["--set", s]
    result = kit_cli(*args)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def test_ensemble_reproduces_hand_computed_average_and_validation(workspace, kit_cli):
    install_template(workspace, PROBS_TEMPLATE)
    a, b = _push(kit_cli, "seed=1"), _push(kit_cli, "seed=2")
    result = kit_cli("ensemble", a, b, "--weights", "3,1")
    assert result.exit_code == 0, result.stderr
    run = result.stdout.strip()
    assert run == "run-3"
    folder = workspace / "submissions" / run

    test_a = {r["ID"]: float(r["prob_true"]) for r in _csv(workspace / "submissions" / a / "test_probs.csv")}
    test_b = {r["ID"]: float(r["prob_true"]) for r in _csv(workspace / "submissions" / b / "test_probs.csv")}
    expected = {i: 0.75 * test_a[i] + 0.25 * test_b[i] for i in test_a}
    got = {r["ID"]: float(r["prob_true"]) for r in _csv(folder / "test_probs.csv")}
    assert got.keys() == expected.keys() and all(abs(got[i] - expected[i]) < 2e-6 for i in got)
    labels = {r["ID"]: r["is_correct"] for r in _csv(folder / "submission.csv")}
    assert labels == {i: str(p >= 0.5) for i, p in expected.items()}

    val_a = {r["row"]: (r["is_correct"] == "True", float(r["prob_true"])) for r in _csv(workspace / "submissions" / a / "val_predictions.csv")}
    val_b = {r["row"]: float(r["prob_true"]) for r in _csv(workspace / "submissions" / b / "val_predictions.csv")}
    assert val_a.keys() == val_b.keys() and len(val_a) == 60  # the shared validation set
    hand = sum(((0.75 * p + 0.25 * val_b[r]) >= 0.5) == y for r, (y, p) in val_a.items()) / len(val_a)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert abs(metrics["val_accuracy"] - hand) < 1e-12 and metrics["val_rows"] == 60
    assert len(_csv(folder / "val_predictions.csv")) == 60

    record = json.loads((folder / "run.json").read_text())
    assert (record["kernel"], record["status"], record["backend"]) == ("ensemble", "complete", "local")
    assert record["config"]["runs"] == [a, b] and record["config"]["weights"] == [0.75, 0.25]
    _, rows = sheet.read(workspace / "leaderboard.csv")
    row = next(r for r in rows if r["run"] == run)
    assert row["kernel"] == "ensemble" and float(row["val_accuracy"]) == metrics["val_accuracy"] and row["val_ci95"]

    submitted = kit_cli("submit", run, "--yes")
    assert submitted.exit_code == 0, submitted.stderr
    assert "public" in submitted.stdout and "pending" not in submitted.stdout


def test_ensemble_refuses_a_run_without_probabilities(workspace, kit_cli):
    install_template(workspace, PROBS_TEMPLATE)
    good = _push(kit_cli, "seed=1")
    install_template(workspace, CONSTANT_TEMPLATE)
    constant = _push(kit_cli)
    result = kit_cli("ensemble", good, constant)
    assert result.exit_code == 1
    assert f"{constant} has no test_probs.csv" in result.stderr and "hint:" in result.stderr
    assert not (workspace / "submissions" / "run-3").exists()  # nothing allocated


def test_ensemble_refuses_bad_weights_and_a_single_run(workspace, kit_cli):
    install_template(workspace, PROBS_TEMPLATE)
    a, b = _push(kit_cli, "seed=1"), _push(kit_cli, "seed=2")
    bad = kit_cli("ensemble", a, b, "--weights", "1,2,3")
    assert bad.exit_code == 1 and "3 weights for 2 runs" in bad.stderr
    single = kit_cli("ensemble", a)
    assert single.exit_code == 1 and "at least two different runs" in single.stderr
