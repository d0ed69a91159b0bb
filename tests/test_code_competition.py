"""Code competitions end to end: the kernel itself is submitted and rerun on hidden test rows with the internet off,
on the practice competition (local backend) and on the stand-in with the real kaggle client."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import socket
import threading
from pathlib import Path

import pytest

from kit.practice.competition import PracticeCompetition, init_practice
from kit.practice.data import generate
from kit.practice.rerun import offline_prefix
from tests.conftest import run_kit
from tests.helpers import RERUN_TEMPLATE, install_template
from tests.kaggle_standin.fixtures import init_kaggle_workspace
from tests.kaggle_standin.server import HiddenTest


def leaderboard_rows(root: Path) -> list[dict[str, str]]:
    with open(root / "leaderboard.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def solution(directory: Path) -> dict[str, tuple[bool, bool]]:
    with open(directory / "hidden" / "solution.csv", newline="") as fh:
        return {r["ID"]: (r["is_correct"] == "True", r["Usage"] == "Public") for r in csv.DictReader(fh)}


def all_false_accuracy(labels: dict[str, tuple[bool, bool]], public: bool) -> float:
    """What a kernel that answers False everywhere scores on the public (or private) hidden rows."""
    rows = [label for label, is_public in labels.values() if is_public == public]
    return round(sum(not label for label in rows) / len(rows), 5)


@pytest.fixture
def listener():
    """A TCP port on 127.0.0.1 that accepts connections: a kernel that reaches it has a network."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


@pytest.fixture
def code_practice(workspace, monkeypatch, listener) -> Path:
    """The workspace's practice competition replaced by a code competition of 40 hidden test rows."""
    result = run_kit("practice", "init", "--code", "--force", "--train-rows", "200", "--test-rows", "40", "--daily-limit", "3",
                     "--rerun-limit", "10")
    assert result.exit_code == 0, result.stderr
    assert "code competition" in result.stderr
    install_template(workspace, RERUN_TEMPLATE)
    monkeypatch.setenv("KIT_TEST_PORT", str(listener))
    return workspace


def practice_dir(root: Path) -> Path:
    return root / ".kit" / "practice" / "practice-math"


def test_practice_code_init_shows_few_rows_and_hides_the_rest(tmp_path):
    comp = init_practice(tmp_path / "c", n_train=50, n_test=30, code=True, rerun_seconds=60)
    read = lambda path: list(csv.reader(open(path, newline="")))  # noqa: E731
    visible, hidden = read(comp.data_dir / "test.csv"), read(tmp_path / "c" / "hidden" / "test.csv")
    assert len(visible) == 1 + 5 and len(hidden) == 1 + 30 and hidden[:6] == visible
    assert len(read(comp.data_dir / "sample_submission.csv")) == 1 + 5
    assert comp.code and comp.rerun_seconds == 60


def test_practice_code_loop_reruns_on_hidden_rows_and_scores(code_practice, listener):
    root = code_practice
    pushed = run_kit("push-kernel", "train", "--set", "enable_internet=false", "--wait")
    assert pushed.exit_code == 0, pushed.stderr
    assert "warning" not in pushed.stderr
    seen = json.loads((root / ".kit" / "local" / "run-1" / "kaggle" / "working" / "seen.json").read_text())
    assert seen == {"rerun": False, "rows": 5, "online": True}  # the run itself: visible rows, network on

    submitted = run_kit("submit", "run-1", "--yes", "--wait", "-m", "all False")
    assert submitted.exit_code == 0, submitted.stderr
    assert "code competition" in submitted.stderr and "rerun on the hidden test set" in submitted.stderr
    labels = solution(practice_dir(root))
    public = all_false_accuracy(labels, public=True)
    assert f"complete  public {public:.5f}" in submitted.stdout

    rerun = practice_dir(root) / "reruns" / "1" / "kaggle" / "working"
    seen = json.loads((rerun / "seen.json").read_text())
    assert seen["rerun"] is True and seen["rows"] == 40  # every hidden row, found where the competition is mounted
    if offline_prefix():
        assert seen["online"] is False  # a network namespace of its own: not even loopback answers
    row, = leaderboard_rows(root)
    assert float(row["public_score"]) == pytest.approx(public) and row["submission_ref"] == "1"
    record = json.loads((root / "submissions" / "run-1" / "run.json").read_text())
    sub, = record["submissions"]
    assert sub["status"] == "complete" and sub["kernel"] == ".kit/local/run-1" and sub["message"] == "all False"

    assert run_kit("practice", "close").exit_code == 0
    row, = leaderboard_rows(root)
    assert float(row["private_score"]) == pytest.approx(all_false_accuracy(labels, public=False))


def test_internet_on_is_refused_before_anything_is_spent(code_practice):
    root = code_practice
    pushed = run_kit("push-kernel", "train", "--wait")
    assert pushed.exit_code == 0, pushed.stderr
    assert "warning: practice-math is a code competition and run-1 has the internet on" in pushed.stderr
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 1
    assert "internet on" in result.stderr and "--set enable_internet=false" in result.stderr
    assert json.loads((practice_dir(root) / "submissions.json").read_text())["submissions"] == []
    assert not (practice_dir(root) / "reruns").exists()


@pytest.mark.parametrize("mode, error", [("fail", "Notebook Threw Exception: RuntimeError: the hidden rows broke me"),
                                         ("slow", "Notebook Timeout")])
def test_a_failed_rerun_is_a_failed_submission_that_costs_nothing(code_practice, monkeypatch, mode, error):
    root = code_practice
    assert run_kit("push-kernel", "train", "--set", "enable_internet=false", "--wait").exit_code == 0
    monkeypatch.setenv("KIT_TEST_RERUN", mode)
    result = run_kit("submit", "run-1", "--yes", "--wait")
    assert result.exit_code == 1
    assert "submission 1 failed" in result.stderr and error in result.stderr
    row, = leaderboard_rows(root)
    assert row["public_score"] == ""
    assert PracticeCompetition(practice_dir(root)).remaining_today() == 3  # the failed rerun used none of the day's 3


def test_a_run_that_took_longer_than_the_rerun_limit_is_refused(code_practice):
    root = code_practice
    assert run_kit("push-kernel", "train", "--set", "enable_internet=false", "--wait").exit_code == 0
    metrics = root / "submissions" / "run-1" / "metrics.json"
    metrics.write_text(json.dumps({"wall_seconds": 45}))  # 45 s against the practice's 10 s limit
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 1 and "run-1 took 45 s" in result.stderr and "stops a rerun after 10 s" in result.stderr
    assert json.loads((practice_dir(root) / "submissions.json").read_text())["submissions"] == []


def test_an_ensemble_cannot_be_a_code_submission(code_practice):
    for _ in range(2):
        assert run_kit("push-kernel", "train", "--set", "enable_internet=false", "--wait").exit_code == 0
    made = run_kit("ensemble", "run-1", "run-2")
    assert made.exit_code == 0, made.stderr
    result = run_kit("submit", made.stdout.strip(), "--yes")
    assert result.exit_code == 1 and "scores only notebooks" in result.stderr


# --------------------------------------------------------------------------------------------------- the stand-in


@pytest.fixture
def kaggle_code(kaggle_env, standin, tmp_path, monkeypatch) -> Path:
    """A Kaggle workspace of a code competition on the stand-in, with 20 hidden test rows."""
    root = init_kaggle_workspace(tmp_path, monkeypatch)
    install_template(root, RERUN_TEMPLATE)
    # internet off on Kaggle: the model comes from Kaggle Models (a hub id would be refused at push)
    toml = root / "kit.toml"
    toml.write_text(toml.read_text().replace("[train]\n", '[train]\nmodel = "me/llama/transformers/8b/1"\n'))
    standin.competitions["math-grader"] = True
    _, test = generate(7, 0, 20)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([("ID", "question", "answer", "solution"),
                                                        *((i, r.question, r.answer, r.solution) for i, r in enumerate(test))])
    test_csv = buffer.getvalue()
    public = {i: i % 2 == 0 for i in range(20)}
    standin.hidden = HiddenTest("math-grader", test_csv.encode(), {str(i): (str(r.is_correct), public[i]) for i, r in enumerate(test)},
                                files={"train.csv": b"question,answer,solution,is_correct\n"}, time_limit=30)
    standin.default_files = {"submission.csv": b"ID,is_correct\n1,False\n2,False\n", "metrics.json": b'{"wall_seconds": 3}'}
    return root


def expected_public(standin) -> float:
    rows = [label for label, public in standin.hidden.solution.values() if public]
    return round(sum(label == "False" for label in rows) / len(rows), 5)


def test_stand_in_code_submission_on_the_wire_and_scored(kaggle_code, standin):
    root = kaggle_code
    pushed = run_kit("push-kernel", "train", "--set", "enable_internet=false")
    assert pushed.exit_code == 0, pushed.stderr
    assert json.loads((root / "submissions" / "run-1" / "run.json").read_text())["remote_version"] == 1
    for _ in range(3):
        run_kit("status", "run-1")
    submitted = run_kit("submit", "run-1", "--yes", "--wait", "-m", "code try")
    assert submitted.exit_code == 0, submitted.stderr + "\n".join(standin.hidden.logs)
    call, = standin.calls("CreateCodeSubmission")
    save, = standin.calls("SaveKernel")
    owner, slug = save.json["slug"].split("/")  # the run's own kernel, as pushed
    # The description starts with the run's tag (the run and its file's hash), by which a lost answer is found.
    sha = hashlib.sha256((root / "submissions" / "run-1" / "submission.csv").read_bytes()).hexdigest()
    assert call.json == {"competitionName": "math-grader", "kernelOwner": owner, "kernelSlug": slug,
                         "kernelVersion": 1, "fileName": "submission.csv", "submissionDescription": f"kit run-1 {sha[:8]}: code try"}
    assert standin.calls("StartSubmissionUpload") == [] and standin.calls("CreateSubmission") == []
    names = [r.method_name for r in standin.requests]
    assert names.index("GetSubmissionLimits") < names.index("CreateCodeSubmission")
    public = expected_public(standin)
    assert f"complete  public {public:.5f}" in submitted.stdout
    row, = leaderboard_rows(root)
    assert float(row["public_score"]) == pytest.approx(public)
    sub, = json.loads((root / "submissions" / "run-1" / "run.json").read_text())["submissions"]
    assert owner == "testuser" and sub["kernel"] == f"testuser/{slug}/1"

    standin.reveal_private(sub["ref"])
    assert run_kit("scores").exit_code == 0
    row, = leaderboard_rows(root)
    assert row["private_score"] != "" and float(row["private_score"]) == pytest.approx(float(standin.submissions[0].rerun_private))
    listed, = standin.calls("ListCompetitions")  # asked once, then cached in .kit/kaggle/
    assert listed.json["search"] == "math-grader"


def test_stand_in_internet_on_never_reaches_kaggle(kaggle_code, standin):
    assert run_kit("push-kernel", "train").exit_code == 0  # the default: internet on
    for _ in range(3):
        run_kit("status", "run-1")  # a running run's status reads its log (issue 29.3), it downloads no output
    logs_read = len(standin.calls("ListKernelSessionOutput"))
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 1 and "--set enable_internet=false" in result.stderr
    assert standin.calls("CreateCodeSubmission") == [] and len(standin.calls("ListKernelSessionOutput")) == logs_read
    assert standin.calls("GET") == []


def test_stand_in_failed_rerun_reports_kaggle_error(kaggle_code, standin, monkeypatch):
    assert run_kit("push-kernel", "train", "--set", "enable_internet=false").exit_code == 0
    for _ in range(3):
        run_kit("status", "run-1")
    monkeypatch.setenv("KIT_TEST_RERUN", "fail")
    result = run_kit("submit", "run-1", "--yes", "--wait")
    assert result.exit_code == 1 and "Notebook Threw Exception" in result.stderr


def test_file_competition_still_uploads_the_file(kaggle_code, standin):
    standin.competitions["math-grader"] = False
    assert run_kit("push-kernel", "train").exit_code == 0
    for _ in range(3):
        run_kit("status", "run-1")
    assert run_kit("submit", "run-1", "--yes").exit_code == 0
    assert len(standin.calls("CreateSubmission")) == 1 and standin.calls("CreateCodeSubmission") == []


def test_real_infer_kernel_on_an_attached_adapter_is_rerun_on_the_hidden_rows(workspace, tmp_path_factory):
    """The real train and infer kernels with a tiny Llama: the infer run on the train run's adapter is submitted to
    the practice code competition; its rerun scores every hidden row with the same model, offline, without training."""
    from tests.test_kernel_runtime import make_model, make_tokenizer

    root = workspace
    assert run_kit("practice", "init", "--code", "--force", "--train-rows", "200", "--test-rows", "30", "--rerun-limit", "300").exit_code == 0
    model_dir = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = make_tokenizer()
    make_model(len(tokenizer)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    common = ["--set", f"model={model_dir}", "--set", "max_seq_length=256", "--set", "batch_size=8", "--set", "val_rows=16"]
    trained = run_kit("push-kernel", "train", "--wait", "--set", "train_rows=32", *common)
    assert trained.exit_code == 0, trained.stderr + run_kit("logs", "run-1").stdout
    inferred = run_kit("push-kernel", "infer", "--wait", "--set", "adapter_run=run-1", "--set", "enable_internet=false", *common)
    assert inferred.exit_code == 0, inferred.stderr + run_kit("logs", "run-2").stdout

    submitted = run_kit("submit", "run-2", "--yes", "--wait")
    rerun = practice_dir(root) / "reruns" / "1"
    log = (rerun / "log.txt").read_text()
    assert submitted.exit_code == 0, submitted.stderr + log
    assert "competition rerun: scoring the hidden test set, 30 rows" in log
    assert "validation rows not scored" in log and "trained" not in log
    assert not (rerun / "kaggle" / "working" / "adapter").exists()  # it read run-1's adapter, it made none

    def probs(path: Path) -> dict[str, float]:
        with open(path, newline="") as fh:
            return {r["ID"]: float(r["prob_true"]) for r in csv.DictReader(fh)}

    committed, hidden = probs(root / "submissions" / "run-2" / "test_probs.csv"), probs(rerun / "kaggle" / "working" / "test_probs.csv")
    assert len(committed) == 5 and len(hidden) == 30
    assert all(hidden[i] == pytest.approx(p, abs=1e-5) for i, p in committed.items())  # the same model on the shared rows
    with open(rerun / "kaggle" / "working" / "submission.csv", newline="") as fh:
        answers = {r["ID"]: r["is_correct"] == "True" for r in csv.DictReader(fh)}
    public = [answers[i] == label for i, (label, is_public) in solution(practice_dir(root)).items() if is_public]
    row = next(r for r in leaderboard_rows(root) if r["run"] == "run-2")
    assert float(row["public_score"]) == pytest.approx(round(sum(public) / len(public), 5))  # what the rerun wrote, scored


def test_rerun_scores_every_hidden_row_whatever_test_rows_says(tmp_path, monkeypatch):
    from runtime.plan import choose_test_rows, detect_machine
    from runtime.prompts import get_prompt
    from runtime.scoring import Scores, predict_test_set
    from runtime.task import Rule, Task
    from tests.test_kernel_runtime import make_tokenizer

    comp = init_practice(tmp_path / "c", n_train=10, n_test=12)
    out = tmp_path / "out"
    out.mkdir()
    score = lambda seqs, labels=None: Scores([[0.9, 0.1]] * len(seqs), [None] * len(seqs))  # noqa: E731
    config = {"test_rows": 3, "max_seq_length": 128}
    args = (comp.data_dir, make_tokenizer(), get_prompt("grader"), Task.default(), config, score, out, Rule("threshold", threshold=0.5))

    def scored() -> int:  # as the predict stage does: the plan, made on this machine, says how many rows
        decision = choose_test_rows(config, detect_machine())
        return predict_test_set(*args, test_rows=decision.value, note=decision.reason)["test_rows"]

    assert scored() == 3  # a quick check on the visible rows
    monkeypatch.setenv("KAGGLE_IS_COMPETITION_RERUN", "1")
    assert scored() == 12  # the rerun: the whole (hidden) test set
    assert len(list(csv.DictReader(open(out / "submission.csv")))) == 12


def test_doctor_says_code_competition_and_kit_toml_sets_the_rerun_limit(kaggle_code, standin):
    root = kaggle_code
    doctor = run_kit("doctor")
    assert "competition kind: a code competition" in doctor.stdout and "limit 9 h" in doctor.stdout
    toml = root / "kit.toml"
    toml.write_text(toml.read_text().replace("# rerun_hours = 9", "rerun_hours = 0.0002"))  # under a second
    assert run_kit("push-kernel", "train", "--set", "enable_internet=false").exit_code == 0
    for _ in range(3):
        run_kit("status", "run-1")
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 1 and "run-1 took 3 s" in result.stderr and "stops a rerun after 1 s" in result.stderr
    assert standin.calls("CreateCodeSubmission") == []


def test_a_competition_kaggle_does_not_list_is_one_line(kaggle_code, standin):
    standin.competitions = {"another-competition": True}
    assert run_kit("push-kernel", "train", "--set", "enable_internet=false").exit_code == 0
    for _ in range(3):
        run_kit("status", "run-1")
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 1
    assert "Kaggle lists no competition 'math-grader'" in result.stderr and "kit.toml" in result.stderr


def test_offline_advice_attaches_a_hub_model_on_kaggle_only(tmp_path):
    from kit.submissions.code_checks import offline_settings
    from kit.workspace.layout import Workspace

    kaggle = Workspace(root=tmp_path, competition="c", backend="kaggle")
    local = Workspace(root=tmp_path, competition="c", backend="local")
    hub_id = "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert offline_settings(local, hub_id) == "--set enable_internet=false"  # the practice backend loads it locally
    advice = offline_settings(kaggle, hub_id)
    assert advice.startswith("--set enable_internet=false --set model=OWNER/MODEL/FRAMEWORK/VARIATION")
    assert hub_id in advice
    assert offline_settings(kaggle, "me/llama/transformers/8b/1") == "--set enable_internet=false"  # already attached
