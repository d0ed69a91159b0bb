"""kit ensemble: a new, submittable run whose probabilities and validation accuracy are the members' weighted average."""

from __future__ import annotations

import csv
import json

import pytest

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


LMSYS_TASK = '''
[task]
preset = "pairwise"
id = "id"
prompt = "{prompt} {response_a} {response_b}"

[task.target]
one_hot = ["winner_model_a", "winner_model_b", "winner_tie"]
'''


def _pulled_run(ws, test_rows, val_rows):
    """A finished run of a three-class task as pulled: test_probs.csv and val_predictions.csv with p_<class> columns."""
    from kit.fileio import atomic_write_text
    from kit.runs import store
    from kit.runs.store import KernelStatus

    record = store.allocate(ws, "train", "local", {"model": "m"})
    folder = store.run_dir(ws, record.id)
    classes = ["winner_model_a", "winner_model_b", "winner_tie"]
    atomic_write_text(folder / "test_probs.csv", "id," + ",".join(f"p_{c}" for c in classes) + "\n"
                      + "".join(f"{i},{','.join(f'{x:.6f}' for x in p)}\n" for i, p in test_rows.items()))
    atomic_write_text(folder / "val_predictions.csv", "row,label," + ",".join(f"p_{c}" for c in classes) + "\n"
                      + "".join(f"{r},{y},{','.join(f'{x:.6f}' for x in p)}\n" for r, (y, p) in val_rows.items()))
    record.status = KernelStatus.COMPLETE
    store.save(ws, record)
    return record.id


def test_ensemble_averages_per_class_probabilities_and_writes_the_tasks_file(workspace, kit_cli):
    """A log-loss task: the members' p_<class> columns are averaged, the submission is the task's header with one
    probability per class, and validation is log loss (lower is better) against the class prior."""
    from sklearn.metrics import log_loss

    from kit.workspace import layout

    with open(workspace / "kit.toml", "a") as fh:
        fh.write(LMSYS_TASK)
    ws = layout.load(workspace)
    classes = ["winner_model_a", "winner_model_b", "winner_tie"]
    test_a = {"10": [0.7, 0.2, 0.1], "11": [0.1, 0.1, 0.8]}
    test_b = {"10": [0.5, 0.4, 0.1], "11": [0.3, 0.3, 0.4]}
    truth = {"1": "winner_model_a", "2": "winner_tie", "3": "winner_model_b", "4": "winner_model_a"}
    val_a = {r: (y, [0.6, 0.2, 0.2] if y == "winner_model_a" else [0.2, 0.3, 0.5]) for r, y in truth.items()}
    val_b = {r: (y, [0.4, 0.4, 0.2]) for r, y in truth.items()}
    a, b = _pulled_run(ws, test_a, val_a), _pulled_run(ws, test_b, val_b)

    result = kit_cli("ensemble", a, b, "--weights", "1,3")
    assert result.exit_code == 0, result.stderr
    run = result.stdout.strip()
    folder = workspace / "submissions" / run
    rows = _csv(folder / "submission.csv")
    assert list(rows[0]) == ["id", *classes]
    averaged = {i: [0.25 * x + 0.75 * y for x, y in zip(test_a[i], test_b[i])] for i in test_a}
    metrics = json.loads((folder / "metrics.json").read_text())
    temperature = metrics["rule"]["temperature"]
    assert metrics["rule"]["name"] == "temperature" and metrics["metric"] == "log_loss"
    for row in rows:  # the averaged probabilities, through the one temperature fitted on validation
        import numpy as np

        logits = np.log(np.asarray(averaged[row["id"]])) / temperature
        expected = np.exp(logits) / np.exp(logits).sum()
        assert [float(row[c]) for c in classes] == pytest.approx(list(expected), abs=2e-6)
        assert abs(sum(float(row[c]) for c in classes) - 1) < 1e-5
    val = {r: [0.25 * x + 0.75 * y for x, y in zip(val_a[r][1], val_b[r][1])] for r in truth}
    untempered = log_loss([truth[r] for r in sorted(truth)], [val[r] for r in sorted(truth)], labels=classes)
    assert metrics["val_metric"] <= untempered + 1e-9  # the fitted temperature never does worse than none
    assert metrics["baseline"].startswith("the class prior (winner_model_a 0.50")
    assert "val_accuracy" not in metrics and "validation log_loss" in result.stderr
    header, lines = sheet.read(workspace / "leaderboard.csv")
    assert header[header.index("val_accuracy") + 1] == "val_log_loss"  # the task's metric beside val_accuracy
    assert float(next(r for r in lines if r["run"] == run)["val_log_loss"]) == pytest.approx(metrics["val_metric"], rel=1e-5)
