"""Inference-server competitions end to end (issue 26): the practice answer competition as a user types it (init,
push train --wait, push infer --wait, submit, scores, leaderboard) with the real kernels on a tiny model; reruns
that raise, miss a deadline or never serve, failed with Kaggle's error classes; the one-line refusals; and the
stand-in with the real kaggle client, where the run's version is submitted with the gateway's file name."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl
import pytest

from kit.practice.answer_competition import ServerRules, read_solution, task_table
from kit.practice.competition import PracticeCompetition, init_practice
from kit.workspace.task_proposal import Proposal
from tests.conftest import run_kit
from tests.helpers import SERVE_TEMPLATE, install_template
from tests.kaggle_standin.fixtures import init_kaggle_workspace
from tests.kaggle_standin.server import HiddenTest


def leaderboard_rows(root: Path) -> list[dict[str, str]]:
    with open(root / "leaderboard.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def practice_dir(root: Path) -> Path:
    return root / ".kit" / "practice" / "practice-math"


@pytest.fixture
def answer_ws(workspace) -> Path:
    """The workspace's practice competition replaced by a server competition of generated answers: 8 hidden rows,
    a 6 s deadline a call after the first, serving within 30 s, a rerun limit of 240 s."""
    result = run_kit("practice", "init", "--force", "--task", "answer", "--server", "--train-rows", "40", "--test-rows", "8",
                     "--call-seconds", "6", "--startup-seconds", "30", "--rerun-limit", "240")
    assert result.exit_code == 0, result.stderr
    assert "[task] set to the answer practice competition" in result.stderr and "inference-server competition" in result.stderr
    return workspace


def test_the_practice_answer_competition_end_to_end_with_the_real_kernels(answer_ws, tiny_model):
    root = answer_ws
    small = ["--set", f"model={tiny_model}", "--set", "max_seq_length=256", "--set", "batch_size=4", "--set", "max_new_tokens=12",
             "--set", "samples=2", "--set", "val_rows=4"]
    trained = run_kit("push-kernel", "train", "--wait", "--set", "train_rows=12", *small)
    assert trained.exit_code == 0, trained.stderr + run_kit("logs", "run-1").stdout
    metrics = json.loads((root / "submissions" / "run-1" / "metrics.json").read_text())
    assert metrics["train_rows"] == 12 and metrics["val_rows"] == 4 and 0.0 <= metrics["val_accuracy"] <= 1.0
    assert metrics["generation_engine"] == "transformers"
    assert (root / "submissions" / "run-1" / "val_predictions.csv").read_text().startswith("row,answer,predicted,samples\n")

    served = run_kit("push-kernel", "infer", "--wait", "--set", "adapter_run=run-1", "--set", "enable_internet=false", *small)
    assert served.exit_code == 0, served.stderr + run_kit("logs", "run-2").stdout
    run_dir = root / "submissions" / "run-2"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["server"] == "local gateway" and metrics["server_calls"] == 5  # the visible rows, one call each
    written = pl.read_parquet(run_dir / "submission.parquet")
    assert written.columns == ["id", "answer"] and sorted(written["id"].to_list()) == list(range(5))
    assert written["answer"].dtype.is_integer()
    log = run_kit("logs", "run-2").stdout
    assert sum(line.startswith("predict ") for line in log.splitlines()) == 5  # one line per call: id, answer, seconds

    submitted = run_kit("submit", "run-2", "--yes", "--wait", "-m", "served")
    assert submitted.exit_code == 0, submitted.stderr
    assert "complete  public" in submitted.stdout
    record = json.loads((run_dir / "run.json").read_text())
    sub, = record["submissions"]
    assert sub["status"] == "complete"
    listed, = PracticeCompetition(practice_dir(root)).submissions()
    assert listed.file_name == "submission.parquet"  # the kernel submitted with the gateway's file name
    rerun_log = (practice_dir(root) / "reruns" / sub["ref"] / "log.txt").read_text()
    assert sum(line.startswith("predict ") for line in rerun_log.splitlines()) == 8  # every hidden row, served
    solution = read_solution(practice_dir(root) / "hidden" / "solution.csv")
    rerun = pl.read_parquet(practice_dir(root) / "reruns" / sub["ref"] / "gateway" / "submission.parquet")
    answers = dict(zip(rerun["id"].cast(pl.Utf8).to_list(), rerun["answer"].to_list()))
    public = [answers[i] == truth for i, (truth, is_public) in solution.items() if is_public]
    assert sub["public_score"] == pytest.approx(round(sum(public) / len(public), 5))

    assert run_kit("scores").exit_code == 0
    rows = {r["run"]: r for r in leaderboard_rows(root)}
    assert float(rows["run-2"]["public_score"]) == pytest.approx(sub["public_score"])
    board = run_kit("leaderboard")
    assert board.exit_code == 0 and "run-2" in board.stdout


@pytest.fixture
def served_template(answer_ws) -> Path:
    install_template(answer_ws, SERVE_TEMPLATE, kernel="infer")
    pushed = run_kit("push-kernel", "infer", "--wait", "--set", "enable_internet=false")
    assert pushed.exit_code == 0, pushed.stderr + run_kit("logs", "run-1").stdout
    return answer_ws


@pytest.mark.parametrize("mode, error", [
    ("raise", "SERVER_RAISED_EXCEPTION: RuntimeError: predict broke on the hidden rows"),
    ("slow", "SERVER_CONNECTION_FAILED: StatusCode.DEADLINE_EXCEEDED"),
])
def test_a_rerun_that_raises_or_misses_a_deadline_fails_with_kaggles_error_class(served_template, monkeypatch, mode, error):
    monkeypatch.setenv("KIT_TEST_SERVE", mode)
    result = run_kit("submit", "run-1", "--yes", "--wait")
    assert result.exit_code == 1 and error in result.stderr
    meaning = {"raise": "predict raised an exception", "slow": "passed its deadline"}[mode]
    assert meaning in result.stderr  # the class and what it means, in the hint
    sub, = json.loads((served_template / "submissions" / "run-1" / "run.json").read_text())["submissions"]
    assert sub["status"] == "error" and sub["public_score"] is None
    status = run_kit("status", "run-1").stdout
    assert f"submission {sub['ref']} failed: {error}" in status and meaning in status  # kit status says it too


def test_a_kernel_that_never_serves_fails_with_server_never_started(tmp_path, monkeypatch):
    """The startup limit, scaled down: a kernel still busy when it passes is SERVER_NEVER_STARTED."""
    from kit.practice.rerun import serve_hidden_rows

    comp = init_practice(tmp_path / "c", n_train=10, n_test=4, task="answer", rerun_seconds=60, server=ServerRules(call_seconds=5, startup_seconds=1))
    error = serve_hidden_rows(["python3", "-c", "import time; time.sleep(30)"], tmp_path, {}, comp.directory / "hidden" / "test.csv",
                              5, 1, 60, tmp_path, tmp_path / "log.txt")
    assert error.startswith("SERVER_NEVER_STARTED: Failed to connect to server after waiting 1 seconds")


def test_the_served_template_answers_every_hidden_row(served_template):
    result = run_kit("submit", "run-1", "--yes", "--wait")
    assert result.exit_code == 0, result.stderr
    assert "complete  public" in result.stdout


# -- bad input: one line each, with the fix, before anything is built or spent ------------------------------------


def test_server_mode_on_a_competition_without_kaggle_evaluation_is_refused(workspace):
    table = task_table({"module": "practice_math_inference_server", "call_seconds": 60, "file": "submission.parquet"}, 600)
    table.update(id="ID", prompt="Question: {question}\nSolution:\n")  # the binary practice's columns
    table["submission"]["columns"] = ["ID", "answer"]
    # the binary practice competition: no kaggle_evaluation among its files
    (workspace / "kit.toml").write_text((workspace / "kit.toml").read_text() + Proposal(table).toml())
    result = run_kit("push-kernel", "infer")
    assert result.exit_code == 1
    assert "files ship no kaggle_evaluation package" in result.stderr and "remove [task.server]" in result.stderr
    assert not (workspace / "submissions" / "run-1").exists()


@pytest.mark.parametrize("change, problem, fix", [
    (("run_seconds = 240.0", "run_seconds = 4000.0"), "more than practice-math's rerun limit of 240 s", "run_seconds = 240 at most"),
    (None, "row_seconds = 30 is more than the gateway's deadline of 6 s", "--set row_seconds=6 at most"),
])
def test_budgets_larger_than_their_limits_are_refused(answer_ws, change, problem, fix):
    toml = answer_ws / "kit.toml"
    if change:
        toml.write_text(toml.read_text().replace(*change))
    result = run_kit("push-kernel", "infer", *([] if change else ["--set", "row_seconds=30"]))
    assert result.exit_code == 1 and problem in result.stderr and fix in result.stderr


def test_a_generated_answer_task_without_an_extraction_rule_is_refused_at_its_line(answer_ws):
    toml = answer_ws / "kit.toml"
    toml.write_text(toml.read_text().replace('extract = "boxed"\n', ""))
    result = run_kit("build", "infer")
    assert result.exit_code == 1 and "needs an extraction rule" in result.stderr and 'extract = "boxed"' in result.stderr


def test_vllm_asked_for_where_the_kernel_runs_here_without_it_is_refused(answer_ws):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    result = run_kit("push-kernel", "infer", "--set", "generation_engine=vllm")
    assert result.exit_code == 1 and "vLLM is not installed" in result.stderr and "generation_engine=auto" in result.stderr


# -- the stand-in, with the real kaggle client ---------------------------------------------------------------------


def test_stand_in_server_run_is_submitted_with_the_gateways_file_and_scored(kaggle_env, standin, tmp_path, monkeypatch):
    comp = init_practice(tmp_path / "comp", slug="math-grader", n_train=20, n_test=6, task="answer", rerun_seconds=120,
                         server=ServerRules(call_seconds=20, startup_seconds=60))
    root = init_kaggle_workspace(tmp_path, monkeypatch)
    toml = root / "kit.toml"
    text = toml.read_text().replace("[train]\n", '[train]\nmodel = "me/llama/transformers/8b/1"\n')
    text = text.replace("[infer]\n", '[infer]\nmodel = "me/llama/transformers/8b/1"\n')
    toml.write_text(text + Proposal(task_table(comp.server, 120)).toml())
    install_template(root, SERVE_TEMPLATE, kernel="infer")
    standin.competitions["math-grader"] = True
    data = comp.data_dir
    standin.competition_files = {str(p.relative_to(data)): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    solution = read_solution(comp.directory / "hidden" / "solution.csv")
    standin.hidden = HiddenTest("math-grader", (comp.directory / "hidden" / "test.csv").read_bytes(), solution,
                                time_limit=120, gateway={"call_seconds": 20, "startup_seconds": 60})
    visible = pl.read_csv(data / "test.csv")
    buffer = io.BytesIO()
    pl.DataFrame({"id": visible["id"], "answer": [len(p) % 1000 for p in visible["problem"]]}).write_parquet(buffer)
    standin.default_files = {"submission.parquet": buffer.getvalue(), "metrics.json": b'{"wall_seconds": 3}'}

    pushed = run_kit("push-kernel", "infer", "--set", "enable_internet=false")
    assert pushed.exit_code == 0, pushed.stderr
    for _ in range(3):
        run_kit("status", "run-1")
    submitted = run_kit("submit", "run-1", "--yes", "--wait", "-m", "served")
    assert submitted.exit_code == 0, submitted.stderr + "\n".join(standin.hidden.logs)
    call, = standin.calls("CreateCodeSubmission")
    assert call.json["fileName"] == "submission.parquet" and call.json["kernelVersion"] == 1
    test = pl.read_csv(comp.directory / "hidden" / "test.csv")
    length = {str(i): len(p) % 1000 for i, p in zip(test["id"], test["problem"])}
    public = [length[i] == truth for i, (truth, is_public) in solution.items() if is_public]
    expected = round(sum(public) / len(public), 5)
    assert f"complete  public {expected:.5f}" in submitted.stdout
    row, = leaderboard_rows(root)
    assert float(row["public_score"]) == pytest.approx(expected)
    listed = [r for r in standin.requests if r.method_name == "ListDataFiles"]
    assert listed  # the push asked the competition's files for its kaggle_evaluation module


def test_kit_proposes_the_server_section_from_a_kaggle_evaluation_package(tmp_path):
    """AIMO's shape of files: kaggle_evaluation/aimo_2_inference_server.py, its gateway's deadline in its code."""
    from kit.workspace.task_proposal import propose

    folder = tmp_path / "aimo"
    (folder / "kaggle_evaluation").mkdir(parents=True)
    (folder / "kaggle_evaluation" / "aimo_2_inference_server.py").write_text("class AIMO2InferenceServer: ...\n")
    (folder / "kaggle_evaluation" / "aimo_2_gateway.py").write_text("        self.set_response_timeout_seconds(60 * 30)  # 30 minutes\n")
    (folder / "train.csv").write_text("id,problem,answer\n" + "".join(f"p{i},What is {i} squared?,{i * i}\n" for i in range(40)))
    (folder / "test.csv").write_text("id,problem\nt0,What is 2 squared?\n")
    (folder / "sample_submission.csv").write_text("id,answer\nt0,0\n")
    proposal = propose(folder)
    assert proposal.table["server"] == {"module": "aimo_2_inference_server", "call_seconds": 1800.0, "run_seconds": 32400.0,
                                        "file": "submission.parquet"}
    assert proposal.table["preset"] == "answer" and proposal.table["target"]["extract"] == "boxed"
    assert any("call_seconds" in check for check in proposal.checks)
    from kit.task import Task

    assert Task.from_dict(proposal.table).served


@pytest.mark.parametrize("code, seconds", [("set_response_timeout_seconds(9 * 60 * 60 + 30)", 32430.0),
                                           ("set_response_timeout_seconds(2 ** 10)", 3600.0)])  # a power is not read (nor run)
def test_the_gateways_deadline_is_read_as_numbers_times_and_plus_only(tmp_path, code, seconds):
    from kit.workspace.task_proposal import propose

    folder = tmp_path / "aimo"
    (folder / "kaggle_evaluation").mkdir(parents=True)
    (folder / "kaggle_evaluation" / "aimo_2_inference_server.py").write_text("class AIMO2InferenceServer: ...\n")
    (folder / "kaggle_evaluation" / "aimo_2_gateway.py").write_text(f"        self.{code}\n")
    (folder / "train.csv").write_text("id,problem,answer\n" + "".join(f"p{i},What is {i} squared?,{i * i}\n" for i in range(40)))
    (folder / "sample_submission.csv").write_text("id,answer\nt0,0\n")
    assert propose(folder).table["server"]["call_seconds"] == seconds


def test_a_classification_task_is_served_too(workspace, tiny_model):
    """The binary practice task with [task.server]: predict scores each row in one forward pass and answers its label,
    through a gateway that takes labels (the practice package's, told the columns)."""
    import shutil

    from kit.practice.answer_competition import GATEWAY_SOURCE

    package = practice_dir(workspace) / "data" / "kaggle_evaluation"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copyfile(GATEWAY_SOURCE, package / "practice_gateway.py")
    (package / "practice_math_inference_server.py").write_text(
        "import kaggle_evaluation.practice_gateway as g\n\n"
        "class PracticeMathInferenceServer(g.InferenceServer):\n"
        "    def _get_gateway_for_test(self, data_paths=None):\n"
        "        return g.AnswerGateway(data_paths, deadline_seconds=30, id_column='ID', answer_column='is_correct', integer=False)\n")
    toml = workspace / "kit.toml"
    toml.write_text(toml.read_text() + '\n[task]\npreset = "binary"\n\n[task.server]\nmodule = "practice_math_inference_server"\n'
                    'call_seconds = 30\nrun_seconds = 600\n')
    served = run_kit("push-kernel", "infer", "--wait", "--set", f"model={tiny_model}", "--set", "val_rows=8", "--set", "max_seq_length=256")
    assert served.exit_code == 0, served.stderr + run_kit("logs", "run-1").stdout
    run_dir = workspace / "submissions" / "run-1"
    written = pl.read_parquet(run_dir / "submission.parquet")
    assert written.columns == ["ID", "is_correct"] and sorted(written["ID"].to_list()) == list(range(40))
    assert set(written["is_correct"].to_list()) <= {"True", "False"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["server"] == "local gateway" and metrics["server_calls"] == 40 and metrics["val_rows"] == 8
