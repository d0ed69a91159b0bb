"""A finished run's summary: what was trained, against the majority class, and the next command for a smoke run."""

from __future__ import annotations

import json

from kit.leaderboard.summary import RunSummary, summarize
from kit.runs import store
from kit.workspace.layout import load
from tests.conftest import run_kit


def summary(**kw) -> RunSummary:
    base = dict(run="run-1", model="SmolLM2-135M-Instruct", train_rows=128, device="the CPU", minutes=6.8, val_accuracy=0.5625,
                val_rows=64, val_true_rate=0.4, test_true_rate=0.01, public_score=0.54)
    return RunSummary(**{**base, **kw})


def test_a_smoke_run_below_the_majority_class_says_so_and_names_the_real_run():
    lines = summary().lines()
    assert lines[0] == "run-1: SmolLM2-135M-Instruct with LoRA, trained on 128 rows on the CPU in 6.8 minutes"
    assert lines[1] == ("validation accuracy 56.2% on 64 rows; always answering False (the majority class) scores 60.0%: "
                        "this run is 3.8 points below it")
    assert lines[2] == "test predictions: 1% True; public score 0.54000"
    assert lines[3].startswith("this was a smoke run (128 rows)") and "74.6%" in lines[3] and "79.1%" in lines[3]
    assert lines[4] == "next, a real run (on a GPU, here or on Kaggle): kit push-kernel train --set train_rows=8000 --wait"


def test_a_real_run_above_the_majority_is_not_called_a_smoke_run():
    lines = summary(train_rows=8000, val_accuracy=0.736, val_true_rate=0.604, public_score=None, test_true_rate=None).lines()
    assert "on 8,000 rows" in lines[0]
    assert lines[1].endswith("always answering True (the majority class) scores 60.4%: this run is 13.2 points above it")
    assert len(lines) == 2


def test_level_with_the_majority_and_the_public_baseline():
    lines = summary(val_accuracy=0.6, public_baselines={"True": 0.44, "False": 0.56}).lines()
    assert lines[1].endswith("scores 60.0%: this run is no better than it")
    assert lines[2] == "test predictions: 1% True; public score 0.54000 (always False: 0.56000)"


def test_summarize_reads_the_pulled_metrics_and_status_prints_it(workspace):
    ws = load(workspace)
    record = store.allocate(ws, "train", "local", {"model": "HuggingFaceTB/SmolLM2-135M-Instruct"})
    record.status = store.KernelStatus.COMPLETE
    store.save(ws, record)
    (store.run_dir(ws, record.id) / "metrics.json").write_text(json.dumps(
        {"train_rows": 128, "val_rows": 64, "val_accuracy": 0.59375, "val_true_rate": 0.40625, "test_true_rate": 0.01,
         "wall_seconds": 420.0, "gpu": ["NVIDIA H200"]}))
    got = summarize(ws, record)
    assert (got.model, got.device, got.minutes, got.train_rows) == ("SmolLM2-135M-Instruct", "NVIDIA H200", 7.0, 128)
    shown = run_kit("status", record.id)
    assert shown.exit_code == 0, shown.stderr
    assert "trained on 128 rows on NVIDIA H200 in 7.0 minutes" in shown.stderr and "this was a smoke run" in shown.stderr
    assert "smoke" not in shown.stdout  # the status line alone is data
    # The majority class comes from the validation rows (40.6% True).
    assert "always answering False" in shown.stderr
    assert summarize(ws, store.allocate(ws, "train", "local", {})) is None  # nothing pulled: no summary


def test_a_task_run_is_compared_with_the_tasks_baseline_in_the_metrics_direction(workspace):
    """A log-loss task: the summary names the metric, the class prior, and which way is better; without the
    kernel's baseline in metrics.json, the baseline of val_predictions.csv's labels."""
    with open(workspace / "kit.toml", "a") as fh:
        fh.write('\n[task]\npreset = "pairwise"\nid = "id"\nprompt = "{prompt}"\n\n[task.target]\none_hot = ["a", "b", "tie"]\n')
    ws = load(workspace)
    record = store.allocate(ws, "train", "local", {"model": "HuggingFaceTB/SmolLM2-135M-Instruct"})
    record.status = store.KernelStatus.COMPLETE
    store.save(ws, record)
    folder = store.run_dir(ws, record.id)
    (folder / "metrics.json").write_text(json.dumps(
        {"train_rows": 8000, "val_rows": 4, "metric": "log_loss", "val_metric": 0.95, "val_baseline": 1.0397,
         "baseline": "the class prior (a 0.50, b 0.25, tie 0.25)", "wall_seconds": 60.0}))
    lines = summarize(ws, record).lines()
    assert lines[1] == ("validation log_loss 0.9500 on 4 rows; the class prior (a 0.50, b 0.25, tie 0.25) scores 1.0397: "
                        "this run is 0.0897 better (lower log_loss is better)")
    (folder / "metrics.json").write_text(json.dumps({"train_rows": 8000, "val_rows": 4, "metric": "log_loss", "val_metric": 1.2}))
    (folder / "val_predictions.csv").write_text("row,label,p_a,p_b,p_tie\n1,a,.5,.3,.2\n2,a,.5,.3,.2\n3,b,.5,.3,.2\n4,tie,.5,.3,.2\n")
    lines = summarize(ws, record).lines()
    assert lines[1].startswith("validation log_loss 1.2000 on 4 rows; the class prior (a 0.50, b 0.25, tie 0.25) scores 1.0397: this run is 0.1603 worse")
