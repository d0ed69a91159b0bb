"""Issue 24: the whole loop in each competition shape, as a user types it, on the CPU with a tiny in-process Llama.

    kit practice init --task SHAPE -> kit build train -> kit push-kernel train --wait (twice) -> kit submit -> kit scores
    -> kit leaderboard -> kit ensemble RUN RUN -> kit submit -> kit pick

The real train kernel runs (a few rows, one step): the point is that every stage speaks the shape's task (its
prompt, classes, files, metric and submission), not what a tiny random model learns. Then the same competition is
served by the Kaggle stand-in (its files, sample submission, uploads scored by the task's metric) and the loop runs
again on the Kaggle backend with the real kaggle client, the two kernels' outputs being those of the practice runs.
"""

from __future__ import annotations

import csv
import json
import math
import tomllib
from pathlib import Path

import pytest

from tests.conftest import run_kit
from tests.kaggle_standin.fixtures import serve_practice

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("sklearn")

SHAPES = ("binary", "multiclass", "topk", "pairwise", "ordinal")
METRICS = {"binary": "accuracy", "multiclass": "macro_f1", "topk": "map@3", "pairwise": "log_loss", "ordinal": "qwk"}
# (the submission's header, what each value cell may hold)
SUBMISSIONS = {
    "binary": (["ID", "is_correct"], lambda cells: cells[0] in ("True", "False")),
    "multiclass": (["id", "topic"], lambda cells: cells[0] in ("ages", "fish_food", "garden", "percentages", "savings", "schedule",
                                                               "sharing", "shopping", "travel", "units")),
    "topk": (["id", "prediction"], lambda cells: len(cells[0].split(" ")) == 3 and set(cells[0].split(" ")) <= set("ABCDE")),
    "pairwise": (["id", "winner_model_a", "winner_model_b", "winner_tie"], lambda cells: abs(sum(map(float, cells)) - 1) < 1e-3),
    "ordinal": (["essay_id", "score"], lambda cells: cells[0] in ("1", "2", "3", "4", "5", "6")),
}


def ok(result, what: str = ""):
    assert result.exit_code == 0, f"{what}\n{result.stdout}\n{result.stderr}"
    return result


def csv_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def push(tiny_model: Path, seed: int) -> str:
    settings = {"model": str(tiny_model), "train_rows": 24, "val_rows": 16, "max_seq_length": 160, "batch_size": 8, "max_steps": 1,
                "r": 4, "lora_alpha": 8, "seed": seed, "threshold": "tune"}
    args = [part for key, value in settings.items() for part in ("--set", f"{key}={value}")]
    return ok(run_kit("push-kernel", "train", "--wait", *args), "push").stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("shape", SHAPES)
def test_the_whole_loop_in_every_shape(shape, tmp_path, monkeypatch, tiny_model, standin, kaggle_env):
    monkeypatch.delenv("KIT_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    ok(run_kit("init"))
    init = ok(run_kit("practice", "init", "--task", shape, "--train-rows", "60", "--test-rows", "12"))
    toml = tomllib.loads((tmp_path / "kit.toml").read_text())
    if shape == "binary":  # the default task: no [task], the kernels built as before
        assert "task" not in toml and "[task]" not in init.stderr
    else:
        assert toml["task"]["preset"] == shape and toml["task"]["metric"]["name"] == METRICS[shape]
        assert "[task] set to the" in init.stderr
    data = tmp_path / ".kit" / "practice" / "practice-math" / "data"
    header, cell_ok = SUBMISSIONS[shape]
    assert csv_rows(data / "sample_submission.csv")[0] == header

    built = ok(run_kit("build", "train", "-o", str(tmp_path / "built"))).stdout
    script = (tmp_path / "built" / "kernel.py").read_text()
    assert ("'task':" in script) == (shape != "binary"), built

    first, second = push(tiny_model, 1), push(tiny_model, 2)
    run_dir = tmp_path / "submissions" / first
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["metric"] == METRICS[shape] and math.isfinite(metrics["val_metric"]) and metrics["val_rows"] == 16
    classes = metrics["classes"]
    val = csv_rows(run_dir / "val_predictions.csv")
    assert [f"p_{c}" for c in classes] == val[0][-len(classes):] and len(val) == 17
    assert all(abs(sum(float(x) for x in row[-len(classes):]) - 1) < 1e-4 for row in val[1:])
    probs = csv_rows(run_dir / "test_probs.csv")
    assert probs[0][0] == header[0] and probs[0][-len(classes):] == [f"p_{c}" for c in classes] and len(probs) == 13
    submission = csv_rows(run_dir / ("submission.csv"))
    assert submission[0] == header and len(submission) == 13 and all(cell_ok(row[1:]) for row in submission[1:]), submission[:3]

    submitted = ok(run_kit("submit", first, "-m", "first", "--yes"))
    assert "public" in submitted.stdout
    ok(run_kit("scores"))
    table = json.loads(ok(run_kit("leaderboard", "--json")).stdout)
    rows = {row["run"]: row for row in (table if isinstance(table, list) else table["rows"])}
    column = f"val_{METRICS[shape]}"
    assert float(rows[first][column]) == pytest.approx(metrics["val_metric"], abs=1e-4)
    assert rows[first]["public_score"] not in ("", None)

    made = ok(run_kit("ensemble", first, second, "--json"))
    ensembled = json.loads(made.stdout)
    assert ensembled["metric"] == METRICS[shape] and ensembled["val_metric"] is not None
    ens_dir = tmp_path / "submissions" / ensembled["run"]
    ens_submission = csv_rows(ens_dir / "submission.csv")
    assert ens_submission[0] == header and len(ens_submission) == 13 and all(cell_ok(row[1:]) for row in ens_submission[1:])
    ok(run_kit("submit", ensembled["run"], "-m", "ensemble", "--yes"))
    ok(run_kit("scores"))

    picked = ok(run_kit("pick", "-n", "2", "--json"))
    chosen = json.loads(picked.stdout)
    names = json.dumps(chosen)
    assert first in names or ensembled["run"] in names, picked.stdout

    kaggle_loop(shape, tmp_path, monkeypatch, standin, [tmp_path / "submissions" / first, tmp_path / "submissions" / second])


def kaggle_loop(shape: str, practice_ws: Path, monkeypatch, standin, outputs: list[Path]) -> None:
    """The loop on the Kaggle backend against the stand-in serving the practice competition: kit init, the task,
    push --wait (the stand-in's kernels "write" the practice runs' outputs), submit, scores, leaderboard, ensemble,
    pick. The stand-in scores the uploads with the task's metric: the same scores the practice competition gave."""
    practice = practice_ws / ".kit" / "practice" / "practice-math"
    serve_practice(standin, practice, "shape-cup")
    root = practice_ws / "kaggle-ws"
    root.mkdir()
    monkeypatch.chdir(root)
    for key, value in {"KIT_KAGGLE_TIMEOUT": "5", "KIT_KAGGLE_ATTEMPTS": "3", "KIT_KAGGLE_BACKOFF": "0.01"}.items():
        monkeypatch.setenv(key, value)
    ok(run_kit("init", "--backend", "kaggle", "--competition", "shape-cup"))
    public_rows = PracticeScore(practice).competition.public_rows  # the competition's page says it; kit pick weighs by it
    toml = root / "kit.toml"
    toml.write_text(toml.read_text().replace("public_rows = 0", f"public_rows = {public_rows}"))
    task = tomllib.loads((practice_ws / "kit.toml").read_text()).get("task")
    if task is not None:  # the [task] a person writes after checking kit's proposal: the practice competition's
        from kit.workspace.task_config import task_toml

        with open(root / "kit.toml", "a") as fh:
            fh.write(task_toml(task, "the competition's task"))
    shown = ok(run_kit("task", "show")).stdout
    assert METRICS[shape] in shown

    runs = []
    for folder in outputs:
        standin.default_files = {name: (folder / name).read_bytes() for name in
                                 ("submission.csv", "metrics.json", "val_predictions.csv", "test_probs.csv", "config.json")}
        runs.append(ok(run_kit("push-kernel", "train", "--wait")).stdout.strip().splitlines()[-1])
    assert len(standin.calls("SaveKernel")) == 2
    saved = standin.calls("SaveKernel")[0].json["text"]
    assert ("'task':" in saved) == (shape != "binary")  # the kernel pushed to Kaggle carries the task

    ok(run_kit("submit", runs[0], "-m", "first", "--yes"))
    upload = standin.calls("PUT")[-1].body
    assert upload.decode().splitlines()[0] == ",".join(SUBMISSIONS[shape][0])
    ok(run_kit("scores"))
    expected_public, _ = PracticeScore(practice).of(upload)
    table = json.loads(ok(run_kit("leaderboard", "--json")).stdout)
    rows = {row["run"]: row for row in (table if isinstance(table, list) else table["rows"])}
    assert float(rows[runs[0]]["public_score"]) == pytest.approx(expected_public, abs=1e-5)
    assert rows[runs[0]][f"val_{METRICS[shape]}"] not in ("", None)

    ensembled = json.loads(ok(run_kit("ensemble", *runs, "--json")).stdout)
    ok(run_kit("submit", ensembled["run"], "-m", "ensemble", "--yes"))
    ok(run_kit("scores"))
    assert len(standin.calls("CreateSubmission")) == 2 and all(s.status == "COMPLETE" for s in standin.submissions), \
        [s.error for s in standin.submissions]
    chosen = json.loads(ok(run_kit("pick", "-n", "2", "--json")).stdout)
    assert runs[0] in json.dumps(chosen) or ensembled["run"] in json.dumps(chosen)


class PracticeScore:
    """The practice competition's own score of a file (what the stand-in must agree with)."""

    def __init__(self, practice: Path):
        from kit.practice.competition import PracticeCompetition

        self.competition = PracticeCompetition(practice)

    def of(self, content: bytes) -> tuple[float, float]:
        path = self.competition.directory / "scored.csv"
        path.write_bytes(content)
        return self.competition.score(path)


def test_the_infer_kernel_scores_a_task_as_its_train_run_did(tmp_path, monkeypatch, tiny_model):
    """The infer kernel with a train run's adapter, on a task whose classes get codes (pairwise): the same label
    tokens, the same probabilities on the shared validation rows, the task's submission."""
    monkeypatch.delenv("KIT_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    ok(run_kit("init"))
    ok(run_kit("practice", "init", "--task", "pairwise", "--train-rows", "60", "--test-rows", "12"))
    trained = push(tiny_model, 1)
    inferred = ok(run_kit("push-kernel", "infer", "--wait", "--set", f"adapter_run={trained}", "--set", f"model={tiny_model}",
                          "--set", "val_rows=16", "--set", "max_seq_length=160")).stdout.strip().splitlines()[-1]
    train_metrics, infer_metrics = (json.loads((tmp_path / "submissions" / r / "metrics.json").read_text()) for r in (trained, inferred))
    assert infer_metrics["label_codes"] and infer_metrics["label_words"] == train_metrics["label_words"]
    assert infer_metrics["metric"] == "log_loss" and infer_metrics["val_metric"] == pytest.approx(train_metrics["val_metric"], abs=1e-3)
    train_val, infer_val = (csv_rows(tmp_path / "submissions" / r / "val_predictions.csv") for r in (trained, inferred))
    assert train_val[0] == infer_val[0] == ["row", "label", "p_winner_model_a", "p_winner_model_b", "p_winner_tie"]
    for a, b in zip(train_val[1:], infer_val[1:]):
        assert a[:2] == b[:2] and [float(x) for x in a[2:]] == pytest.approx([float(x) for x in b[2:]], abs=1e-3)
    assert csv_rows(tmp_path / "submissions" / inferred / "submission.csv")[0] == SUBMISSIONS["pairwise"][0]


def test_a_code_competition_of_a_shape_reruns_the_kernel_and_scores_it_by_the_tasks_metric(tmp_path, monkeypatch, tiny_model):
    """`kit practice init --task ordinal --code`: kernels see 5 test rows; the submitted kernel is rerun on every
    hidden row, offline, and the file it writes there is scored by quadratic weighted kappa."""
    monkeypatch.delenv("KIT_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    ok(run_kit("init"))
    ok(run_kit("practice", "init", "--task", "ordinal", "--code", "--train-rows", "60", "--test-rows", "20", "--rerun-limit", "300"))
    practice = tmp_path / ".kit" / "practice" / "practice-math"
    assert len(csv_rows(practice / "data" / "test.csv")) == 6 and len(csv_rows(practice / "hidden" / "test.csv")) == 21
    assert csv_rows(practice / "data" / "sample_submission.csv")[0] == ["essay_id", "score"]
    settings = {"model": str(tiny_model), "train_rows": 24, "val_rows": 16, "max_seq_length": 160, "batch_size": 8, "max_steps": 1,
                "r": 4, "lora_alpha": 8, "enable_internet": "false"}
    run = ok(run_kit("push-kernel", "train", "--wait", *(p for k, v in settings.items() for p in ("--set", f"{k}={v}")))).stdout.split()[-1]
    assert len(csv_rows(tmp_path / "submissions" / run / "submission.csv")) == 6  # the visible rows
    ok(run_kit("submit", run, "--yes", "--wait"))
    rerun_file = practice / "reruns" / "1" / "kaggle" / "working" / "submission.csv"
    written = csv_rows(rerun_file)
    assert written[0] == ["essay_id", "score"] and len(written) == 21 and all(r[1] in "123456" for r in written[1:])
    public, _ = PracticeScore(practice).of(rerun_file.read_bytes())
    row = next(r for r in csv.DictReader(open(tmp_path / "leaderboard.csv", newline="")) if r["run"] == run)
    assert float(row["public_score"]) == pytest.approx(public, abs=1e-5) and row["val_qwk"] != ""
