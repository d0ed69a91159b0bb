"""Multi-phase training through kit with the real train kernel on a tiny Llama (CPU, local backend): the steps a
lineage trains add up, the leaderboard shows the lineage; a run whose loss is not finite stops itself."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from tests.conftest import run_kit  # noqa: E402
from tests.test_kernel_runtime import kernel_config, make_model, make_tokenizer, write_competition  # noqa: E402

TINY = ["engine=hf", "r=4", "lora_alpha=8", "batch_size=4", "val_rows=12", "max_seq_length=128", "warmup_steps=1",
        "learning_rate=1e-3", "optim=adamw_torch", "test_rows=8"]


def push(*settings: str) -> str:
    result = run_kit("push-kernel", "train", "--wait", *[a for s in settings for a in ("--set", s)])
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def metrics(root: Path, run_id: str) -> dict:
    return json.loads((root / "submissions" / run_id / "metrics.json").read_text())


def test_a_three_phase_lineage_trains_the_sum_of_its_phases(workspace, tiny_model):
    common = [f"model={tiny_model}", *TINY]
    # phase 1: 24 rows, one epoch of batches of 4 -> 6 steps
    first = push(*common, "train_rows=24")
    m1 = metrics(workspace, first)
    assert (m1["phase"], m1["phase_steps"], m1["steps_this_run"], m1["global_step"]) == (1, 6, 6, 6)
    assert m1["next_data_offset"] == 24

    # phase 2 continues run-1's adapter on the next 16 rows: 4 steps of its own, global 7..10
    second = push(*common, "train_rows=16", f"resume_from={first}", f"data_offset={m1['next_data_offset']}")
    m2 = metrics(workspace, second)
    assert (m2["phase"], m2["phase_steps"], m2["steps_this_run"], m2["global_step"]) == (2, 4, 4, 10)
    assert [s["step"] for s in m2["steps"]] == [7, 8, 9, 10] and [s["phase_step"] for s in m2["steps"]] == [1, 2, 3, 4]
    assert m2["data_offset"] == 24 and m2["next_data_offset"] == 40
    log = (workspace / "submissions" / second / "log.txt").read_text()
    assert "resuming from" in log and "phase 1, global step 6, finished" in log

    # phase 3 with max_steps: exactly 3 more, global 13
    third = push(*common, "train_rows=16", "max_steps=3", f"resume_from={second}", f"data_offset={m2['next_data_offset']}")
    m3 = metrics(workspace, third)
    assert (m3["phase"], m3["steps_this_run"], m3["global_step"]) == (3, 3, 13)
    assert m1["steps_this_run"] + m2["steps_this_run"] + m3["steps_this_run"] == m3["global_step"]

    with open(workspace / "leaderboard.csv", newline="") as fh:
        rows = {row["run"]: row for row in csv.DictReader(fh)}
    assert rows[first]["lineage"] == ""
    assert rows[second]["lineage"] == f"{first}>{second}"
    assert rows[third]["lineage"] == f"{first}>{second}>{third}"


def test_a_run_whose_loss_is_not_finite_stops_and_says_so(tmp_path, monkeypatch):
    from train import main as train_main

    tokenizer = make_tokenizer()
    model = make_model(len(tokenizer))
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("nan")  # what a diverged or overflowing run looks like: NaN logits
    folder = tmp_path / "broken-llama"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    monkeypatch.setenv("KIT_KAGGLE_ROOT", str(tmp_path / "kaggle"))
    write_competition(tmp_path / "kaggle" / "input" / "competitions" / "tiny-comp")
    config = kernel_config("train", model=str(folder), train_rows=24, val_rows=12, batch_size=4, max_steps=5, r=4,
                           lora_alpha=8, warmup_steps=1, optim="adamw_torch")
    with pytest.raises(FloatingPointError, match="stopped early: loss is nan at global step 1"):
        train_main(config)
    working = tmp_path / "kaggle" / "working"
    saved = json.loads((working / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in metrics.json"))
    assert saved["stopped_early"] is True and "loss is nan" in saved["stop_reason"]
    assert saved["steps_this_run"] == 0 and saved["global_step"] == 1
    assert not (working / "submission.csv").exists() and not (working / "adapter").exists()
