"""kit pick, kit plot scores, kit ensemble --top and sweeps follow the task's metric and its direction: for a
log-loss task the lowest validation or public log loss is the best."""

from __future__ import annotations

import json

from kit.fileio import atomic_write_text
from kit.runs import store
from kit.runs.store import KernelStatus
from kit.workspace import layout
from tests.conftest import run_kit

LOG_LOSS_TASK = '''
[task]
preset = "pairwise"
id = "id"
prompt = "{prompt}"

[task.target]
one_hot = ["a", "b", "tie"]
'''


def _task_workspace(workspace):
    with open(workspace / "kit.toml", "a") as fh:
        fh.write(LOG_LOSS_TASK)
    return layout.load(workspace)


def _run(ws, val_log_loss):
    """A finished run of the log-loss task as pulled: metrics.json with its validation log loss, and probabilities."""
    record = store.allocate(ws, "train", "local", {"model": "m"})
    folder = store.run_dir(ws, record.id)
    atomic_write_text(folder / "metrics.json", json.dumps({"metric": "log_loss", "val_metric": val_log_loss, "val_rows": 50}))
    atomic_write_text(folder / "test_probs.csv", "id,p_a,p_b,p_tie\n1,0.5,0.3,0.2\n2,0.2,0.2,0.6\n")
    atomic_write_text(folder / "val_predictions.csv", "row,label,p_a,p_b,p_tie\n7,a,0.6,0.2,0.2\n8,tie,0.3,0.3,0.4\n")
    record.status = KernelStatus.COMPLETE
    store.save(ws, record)
    return record.id


def test_pick_ranks_a_log_loss_task_lowest_first(workspace):
    ws = _task_workspace(workspace)
    runs = [_run(ws, v) for v in (0.95, 0.81, 1.20)]
    result = run_kit("pick", "--include-unsubmitted", "-n", "2", "--json")
    assert result.exit_code == 0, result.stderr
    got = json.loads(result.stdout)
    assert [p["run"] for p in got["picks"]] == [runs[1], runs[0]] and got["metric"] == "log_loss"
    assert got["picks"][0]["val_log_loss"] == 0.81 and "val_accuracy" not in got["picks"][0]  # named as it is
    shown = run_kit("pick", "--include-unsubmitted", "-n", "2")
    assert shown.stdout.splitlines()[0] == f"1. {runs[1]}  log_loss 0.81000"
    assert "validation log_loss 0.81000 on 50 rows (no public score)" in shown.stdout
    assert "lower is better" in shown.stdout


def test_ensemble_top_takes_the_lowest_log_losses_and_plots_name_the_metric(workspace):
    ws = _task_workspace(workspace)
    runs = [_run(ws, v) for v in (0.95, 0.81, 1.20)]
    from kit.leaderboard import sheet

    sheet.sync(ws)
    result = run_kit("ensemble", "--top", "2")
    assert result.exit_code == 0, result.stderr
    assert f"members from kit's table: {runs[1]}, {runs[0]}" in result.stderr  # best first: the lowest val_log_loss

    from kit.leaderboard.plots import run_scores

    scores = {s.run: s for s in run_scores(ws)}
    assert scores[runs[2]].val == 1.20 and scores[runs[2]].val_interval is None  # no binomial interval for log loss


def test_a_sweep_ranks_its_runs_by_the_tasks_metric(workspace):
    from kit.runs.sweep import report
    from kit.runs.sweep.state import Point, SweepState, save_state

    ws = _task_workspace(workspace)
    runs = [_run(ws, v) for v in (0.95, 0.81, 1.20)]
    save_state(ws, SweepState("lr", "train", "local", {}, [Point(str(i + 1), {"learning_rate": i}, run=r) for i, r in enumerate(runs)]))
    assert [p.record.id for p in report.ranked(ws, "lr")] == [runs[1], runs[0], runs[2]]  # the lowest log loss first
    shown = run_kit("sweep", "status", "lr")
    assert shown.exit_code == 0, shown.stderr
    assert "val_log_loss" in shown.stdout.splitlines()[0] and "0.8100" in shown.stdout
    as_json = json.loads(run_kit("sweep", "status", "lr", "--json").stdout)
    assert [p["val_log_loss"] for p in as_json] == [0.95, 0.81, 1.20] and "val_accuracy" not in as_json[0]  # named as it is


def test_an_id_column_named_like_a_probability_is_not_a_class(workspace):
    ws = _task_workspace(workspace)
    layout.set_value(workspace, "task", "id", "p_id")
    ws = layout.load(workspace)
    runs = [_run(ws, v) for v in (0.95, 0.81)]
    for run in runs:
        folder = store.run_dir(ws, run)
        atomic_write_text(folder / "test_probs.csv", "p_id,p_a,p_b,p_tie\n1,0.5,0.3,0.2\n2,0.2,0.2,0.6\n")
    made = run_kit("ensemble", *runs)
    assert made.exit_code == 0, made.stderr
    submission = (store.run_dir(ws, made.stdout.strip()) / "submission.csv").read_text().splitlines()
    assert submission[0] == "p_id,a,b,tie" and submission[1].startswith("1,")


def test_ranked_picks_break_ties_by_the_earlier_run():
    from kit.finals.pick import Candidate, choose_ranked

    tied = [Candidate(run, val_accuracy=0.5, val_rows=50) for run in ("run-10", "run-9", "run-11")]
    assert [p.candidate.run for p in choose_ranked(tied, "log_loss", False, 3).picks] == ["run-9", "run-10", "run-11"]


JIGSAW_TASK = '''
[task]
id = "row_id"
prompt = "{rule}: {body}"

[task.target]
kind = "binary"
column = "rule_violation"
labels = ["1", "0"]

[task.submission]
output = "probability"

[task.metric]
name = "roc_auc_by:rule"
'''


def test_an_ensemble_of_a_grouped_auc_task_reads_each_rows_group_from_train(workspace):
    # roc_auc_by:rule is AUC within each rule, averaged: the ensemble reads each validation row's rule from train.
    with open(workspace / "kit.toml", "a") as fh:
        fh.write(JIGSAW_TASK)
    ws = layout.load(workspace)
    (ws.practice_dir / "data" / "train.csv").write_text("row_id,body,rule,rule_violation\n" + "".join(f"{i},b{i},{'ab'[i % 2]},{i // 2 % 2}\n" for i in range(8)))
    runs = []
    for probs in ([0.9, 0.2, 0.1, 0.8, 0.7, 0.6, 0.3, 0.4], [0.8, 0.3, 0.2, 0.9, 0.6, 0.7, 0.4, 0.3]):
        record = store.allocate(ws, "train", "local", {"model": "m"})
        folder = store.run_dir(ws, record.id)
        rows = "".join(f"{i},{i // 2 % 2 == 1},{p},{i // 2 % 2},{p},{1 - p:.6f}\n" for i, p in enumerate(probs))
        atomic_write_text(folder / "val_predictions.csv", "row,is_correct,prob_true,label,p_1,p_0\n" + rows)
        atomic_write_text(folder / "test_probs.csv", "row_id,prob_true,p_1,p_0\n100,0.5,0.5,0.5\n")
        record.status = KernelStatus.COMPLETE
        store.save(ws, record)
        runs.append(record.id)
    made = run_kit("ensemble", *runs, "--json")
    assert made.exit_code == 0, made.stderr
    # the average per row: rule a (rows 0 2 4 6) 0.85 0.15 0.65 0.35 -> labels 0 1 0 1: AUC 0; rule b: 0.25 0.85 0.65 0.35 -> 0 1 0 1: AUC 0.75
    assert json.loads(made.stdout)["val_metric"] == 0.375

