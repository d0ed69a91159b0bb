"""kit leaderboard's terminal table: within 120 characters by default, a person's columns always shown, and a line on
stderr that names what was left out and the flag that shows it."""

from __future__ import annotations

import csv
import io

import pytest

from kit.leaderboard.sheet import KIT_COLUMNS
from tests.conftest import run_kit

# Two runs as kit writes them (every column of its schema, a setting that differs), and a person's column `notes`
# that holds the same value in both rows.
VALUES = {
    "run": ["run-1", "run-2"], "kernel": ["train", "train"], "created": ["2026-12-07T18:40:02+00:00", "2026-12-07T18:55:41+00:00"],
    "status": ["complete", "complete"], "backend": ["local", "local"], "model": ["HuggingFaceTB/SmolLM2-135M-Instruct"] * 2,
    "prompt": ["grader", "grader"], "train_rows": ["128", "128"], "data_offset": ["0", "0"], "r": ["32", "64"],
    "lora_alpha": ["64", "64"], "learning_rate": ["0.0002", "0.0001"], "lr_scheduler": ["cosine", "cosine"], "batch_size": ["8", "8"],
    "grad_accum": ["1", "1"], "max_steps": ["0", "0"], "resume_from": ["", ""], "val_accuracy": ["0.59375", "0.609375"],
    "val_rows": ["64", "64"], "val_ci95": ["0.472-0.705", "0.487-0.720"], "submission_ref": ["practice-1", "practice-2"],
    "submitted": ["2026-12-07T18:52:10+00:00", "2026-12-07T19:07:55+00:00"], "public_score": ["0.54", "0.56"],
    "public_ci95": ["0.403-0.671", "0.422-0.689"], "private_score": ["", ""], "gpu": ["cpu", "cpu"], "gpu_minutes": ["6.2", "7.9"],
    "plan_engine": ["hf", "hf"], "plan_dtype": ["fp32", "fp32"], "plan_packing": ["off", "off"], "plan_compile": ["off", "off"],
    "plan_checkpointing": ["off", "off"], "sweep": ["", ""], "lineage": ["", ""],
}


@pytest.fixture
def two_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("KIT_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run_kit("init").exit_code == 0
    header = [c for c in KIT_COLUMNS if c in VALUES] + ["weight_decay", "notes"]
    values = {**VALUES, "weight_decay": ["0.01", "0.1"], "notes": ["tried on the laptop", "tried on the laptop"]}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for i in range(2):
        writer.writerow([values[c][i] for c in header])
    (tmp_path / "leaderboard.csv").write_text(out.getvalue())
    return header


def test_the_table_fits_120_characters_and_keeps_a_persons_column(two_runs):
    result = run_kit("leaderboard")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and max(len(line) for line in lines) <= 120, "\n".join(lines)
    columns = lines[0].split()
    assert columns[:3] == ["run", "kernel", "status"] and {"val_accuracy", "public_score"} <= set(columns)
    assert "notes" in columns  # the same in both rows, but a person added it to see it
    assert {"r", "learning_rate", "weight_decay"} <= set(columns)  # the settings that tell the runs apart come first
    assert "tried on the laptop" in lines[2]
    note = [line for line in result.stderr.splitlines() if line.startswith("not shown: ")]
    assert note and "to fit 120 characters: " in note[0] and "--all-columns shows every column" in note[0], result.stderr


def test_all_columns_shows_every_column_uncut_and_width_widens(two_runs):
    wide = run_kit("leaderboard", "--all-columns")
    assert wide.exit_code == 0 and wide.stdout.splitlines()[0].split() == two_runs
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in wide.stdout and "not shown" not in wide.stderr
    wider = run_kit("leaderboard", "--width", "200").stdout.splitlines()
    assert 120 < max(len(line) for line in wider) <= 200
    assert len(wider[0].split()) > len(run_kit("leaderboard").stdout.splitlines()[0].split())


def test_a_persons_column_with_the_same_value_shows_in_a_one_run_table(tmp_path, monkeypatch):
    monkeypatch.delenv("KIT_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run_kit("init").exit_code == 0
    (tmp_path / "leaderboard.csv").write_text("run,kernel,status,val_accuracy,backend,notes\nrun-1,train,complete,0.6,local,baseline\n")
    result = run_kit("leaderboard")
    assert result.stdout.splitlines()[0].split() == ["run", "kernel", "status", "val_accuracy", "notes"]
    assert "1 of kit's columns the same in every run" in result.stderr


def test_a_lower_is_better_metric_stars_the_smallest_score(two_runs, tmp_path):
    # A log-loss task: the best run has the smallest val_log_loss and public score, and that is the one starred.
    with open(tmp_path / "kit.toml", "a", encoding="utf-8") as fh:
        fh.write('\n[task]\npreset = "pairwise"\n\n[task.target]\none_hot = ["winner_model_a", "winner_model_b", "winner_tie"]\n')
    rows = list(csv.DictReader(open(tmp_path / "leaderboard.csv", encoding="utf-8")))
    for row, loss, public in zip(rows, ["0.91", "1.05"], ["0.95", "1.10"]):
        row.update(val_log_loss=loss, public_score=public, val_accuracy="")
    with open(tmp_path / "leaderboard.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*two_runs, "val_log_loss"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    result = run_kit("runs")
    assert result.exit_code == 0, result.stderr
    header, _, first, second = result.stdout.splitlines()
    assert "val_log_loss" in header.split()
    assert "0.91*" in first.split() and "0.95*" in first.split(), result.stdout
    assert not any(cell.endswith("*") for cell in second.split()), result.stdout
    narrow = run_kit("runs", "--width", "60").stdout.splitlines()[0].split()
    assert "val_log_loss" in narrow and "notes" not in narrow  # a score, kept as val_accuracy is; not a person's column
