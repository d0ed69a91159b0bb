"""[task] in kit.toml: checked by the one schema (did-you-mean, file:line), the Task it describes, no [task] = today's
task, and the [task] kit proposes from a competition's files (kit init --data, kit task propose; on the Kaggle
backend through the real client against the stand-in)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from kit.task import Task
from kit.workspace import layout
from kit.workspace.task_proposal import propose
from tests.conftest import run_kit
from tests.kaggle_standin.fixtures import init_kaggle_workspace

# The files of each shape, as the competitions have them (a few rows each; their headers verbatim).
COMPETITIONS = {
    "binary": {
        "train.csv": "ID,question,answer,solution,is_correct\n1,q,a,long solution text,True\n2,q,b,sol,False\n",
        "test.csv": "ID,question,answer,solution\n3,q,a,s\n",
        "sample_submission.csv": "ID,is_correct\n3,False\n",
    },
    "lmsys": {
        "train.csv": "id,model_a,model_b,prompt,response_a,response_b,winner_model_a,winner_model_b,winner_tie\n"
                     "1,x,y,hi there,aaa,bbbbbbbbbbbb,1,0,0\n2,x,y,yo,b,c,0,0,1\n",
        "test.csv": "id,prompt,response_a,response_b\n5,p,a,b\n",
        "sample_submission.csv": "id,winner_model_a,winner_model_b,winner_tie\n5,0.333,0.333,0.333\n",
    },
    "map": {
        "train.csv": "row_id,QuestionId,QuestionText,MC_Answer,StudentExplanation,Category,Misconception\n"
                     "1,3,what is 1/2,0.5,because,True_Correct,NA\n2,3,what,0.3,a long explanation here,False_Misconception,Incomplete\n"
                     "3,3,w,1,x,True_Neither,NA\n4,3,w,1,x,False_Neither,NA\n",
        "test.csv": "row_id,QuestionId,QuestionText,MC_Answer,StudentExplanation\n9,3,q,a,e\n",
        "sample_submission.csv": "row_id,Category:Misconception\n9,True_Correct:NA False_Neither:NA True_Neither:NA\n",
    },
    "aes": {
        "train.csv": "essay_id,full_text,score\na,text one,3\nb,text two,1\nc,t,6\nd,t,2\n",
        "test.csv": "essay_id,full_text\nx,t\n",
        "sample_submission.csv": "essay_id,score\nx,3\n",
    },
    "jigsaw": {
        "train.csv": "row_id,body,rule,subreddit,rule_violation\n1,a long body,r1,s,1\n2,b,r1,s,0\n",
        "test.csv": "row_id,body,rule,subreddit\n7,b,r,s\n",
        "sample_submission.csv": "row_id,rule_violation\n7,0.5\n",
    },
    "exam": {
        "train.csv": "id,prompt,A,B,C,D,E,answer\n0,q,a,b,c,d,e,A\n1,q,a,b,c,d,e,C\n2,q,a,b,c,d,e,E\n3,q,a,b,c,d,e,B\n",
        "test.csv": "id,prompt,A,B,C,D,E\n5,q,a,b,c,d,e\n",
        "sample_submission.csv": "id,prediction\n5,A B C\n",
    },
}


def _files(folder: Path, competition: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in COMPETITIONS[competition].items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _append(root: Path, text: str) -> None:
    path = root / "kit.toml"
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def _line(root: Path, needle: str) -> int:
    return next(i for i, line in enumerate((root / "kit.toml").read_text().splitlines(), start=1) if needle in line)


@pytest.fixture
def fresh(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("KIT_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    result = run_kit("init")
    assert result.exit_code == 0, result.stderr
    return tmp_path


def test_a_workspace_without_task_is_todays_binary_task(fresh):
    text = (fresh / "kit.toml").read_text()
    assert "[task" not in text  # kit init with no competition files writes none
    ws = layout.load(fresh)
    assert ws.task_table is None and ws.task == Task.default()
    shown = run_kit("task", "show")
    assert shown.exit_code == 0 and "kit.toml has no [task]" in shown.stderr
    assert Task.from_dict(tomllib.loads(shown.stdout)["task"]) == Task.default()


def test_a_task_table_is_read_and_checked(fresh):
    _append(fresh, '\n[task]\npreset = "topk"\nid = "row_id"\nprompt = "{QuestionText}"\n\n[task.target]\ncolumns = ["Category", "Misconception"]\n')
    task = layout.load(fresh).task
    assert (task.output, task.k, task.metric, task.sub_columns) == ("top_k", 3, "map@3", ("row_id", "Category:Misconception"))


@pytest.mark.parametrize(
    "table, needle, message, hint",
    [
        ('[task.target]\ncolum = "label"\n', "colum =", "[task.target] unknown key 'colum' (did you mean 'column'?)", "allowed keys in [task.target]"),
        ('[task]\npreset = "binray"\n', "preset =", "[task] bad value 'binray' for 'preset': expected one of binary", "preset ="),
        ('[task.metric]\nname = "mapk3"\n', "mapk3", "[task.metric] bad value 'mapk3' for 'name': unknown metric (did you mean 'map@3'?)", "map@<k>"),
        ('[task.submission]\nk = "three"\n', "k =", "[task.submission] bad value 'three' for 'k': expected an integer", "k = 1"),
        ('[task.metric]\nname = "map@3"\n', "map@3", 'metric map@3 cannot score a submission of labels', 'output = "top_k" and k = 3'),
        ('[task]\npreset = "topk"\n[task.target]\ncolumn = "answer"\nlabels = ["A", "B"]\n', "[task]", "task.submission.k = 3 is more than the 2 classes", "k = 2 at most"),
        ('[task]\nprompt = "{q} {a}"\nshorten = "solution"\n', "shorten =", "task.shorten 'solution' is not a field of the prompt (q, a)", 'shorten = "a"'),
    ],
)
def test_a_bad_task_is_refused_at_its_line_with_the_fix(fresh, table, needle, message, hint):
    _append(fresh, "\n" + table)
    result = run_kit("leaderboard")
    assert result.exit_code == 1 and result.stdout == ""
    first, second = result.stderr.strip().splitlines()[:2]
    assert first.startswith(f"error: {fresh / 'kit.toml'}:{_line(fresh, needle)}: {message}")
    assert second.startswith("hint: ") and hint in second


@pytest.mark.parametrize(
    "competition, expected",
    [
        ("binary", {"preset": "binary", "metric": "accuracy", "prompt": ""}),
        ("lmsys", {"preset": "pairwise", "metric": "log_loss", "one_hot": ("winner_model_a", "winner_model_b", "winner_tie"), "output": "probabilities"}),
        ("map", {"preset": "topk", "metric": "map@3", "columns": ("Category", "Misconception"), "compose": "{Category}:{Misconception}", "k": 3}),
        ("aes", {"preset": "ordinal", "metric": "qwk", "column": "score", "shorten": "full_text"}),
        ("jigsaw", {"preset": "binary", "metric": "roc_auc", "column": "rule_violation", "output": "probability", "shorten": "body"}),
        ("exam", {"preset": "topk", "metric": "map@3", "column": "answer", "sub_columns": ("id", "prediction")}),
    ],
)
def test_the_proposal_reads_each_shape_from_its_files(tmp_path, competition, expected):
    proposal = propose(_files(tmp_path / competition, competition))
    task = Task.from_dict(tomllib.loads(proposal.toml())["task"])
    for field, value in expected.items():
        assert getattr(task, field) == value, field
    assert any("the metric" in c for c in proposal.checks)  # the files cannot say the metric: a person checks it
    if competition == "binary":
        assert task == Task.default()  # the reference competition's files propose today's task
    else:
        header = COMPETITIONS[competition]["train.csv"].splitlines()[0].split(",")
        task.check_train_columns(header)


def test_kit_init_with_the_files_writes_the_task_and_says_what_to_check(tmp_path, monkeypatch):
    monkeypatch.delenv("KIT_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    files = _files(tmp_path / "files", "lmsys")
    result = run_kit("init", "--competition", "lmsys-chatbot-arena", "--data", str(files))
    assert result.exit_code == 0, result.stderr
    assert f"[task] proposed from the files in {files}" in result.stderr
    assert "check:" in result.stderr and "log loss" in result.stderr
    ws = layout.load(tmp_path)
    assert ws.task.metric == "log_loss" and not ws.task.higher_is_better
    assert ws.task.classes() == ("winner_model_a", "winner_model_b", "winner_tie")
    again = run_kit("task", "propose", "--data", str(files), "--write")
    assert again.exit_code == 1 and "has a [task] already" in again.stderr


def test_kit_task_propose_on_the_practice_competition_is_todays_task(workspace):
    result = run_kit("task", "propose", "--write")
    assert result.exit_code == 0, result.stderr
    assert "proposed from the files in" in result.stderr and "practice-math" in result.stderr
    assert layout.load(workspace).task == Task.default()


def test_kit_task_propose_downloads_the_files_from_kaggle(kaggle_env, standin, tmp_path, monkeypatch):
    root = init_kaggle_workspace(tmp_path, monkeypatch)
    assert standin.calls("ListDataFiles") == []  # kit init asks Kaggle nothing
    standin.competition_files = {name: text.encode() for name, text in COMPETITIONS["map"].items()}
    result = run_kit("task", "propose", "--write")
    assert result.exit_code == 0, result.stderr
    assert sorted(c.json["fileName"] for c in standin.calls("DownloadDataFile")) == ["sample_submission.csv", "test.csv", "train.csv"]
    assert "downloaded into" in result.stderr and (root / "data" / "math-grader" / "train.csv").is_file()
    task = layout.load(root).task
    assert task.metric == "map@3" and task.compose == "{Category}:{Misconception}"


def test_a_parquet_competition_is_proposed_from_its_parquet_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "wsdm"
    folder.mkdir()
    pq.write_table(pa.table({"id": ["a", "b", "c"], "prompt": ["p", "q", "r"], "response_a": ["x", "y", "z"], "response_b": ["u", "v", "w"],
                             "winner": ["model_a", "model_b", "model_a"], "language": ["en", "de", "fr"]}), folder / "train.parquet")
    pq.write_table(pa.table({"id": ["d"], "prompt": ["p"], "response_a": ["x"], "response_b": ["y"], "language": ["en"]}), folder / "test.parquet")
    (folder / "sample_submission.csv").write_text("id,winner\nd,model_a\n")
    task = Task.from_dict(tomllib.loads(propose(folder).toml())["task"])
    assert (task.train, task.test, task.column, task.preset, task.metric) == ("train.parquet", "test.parquet", "winner", "binary", "accuracy")
    assert task.with_labels(["model_a", "model_b"]).classes() == ("model_a", "model_b")


@pytest.mark.parametrize(
    "table, message, hint",
    [
        ('[task]\nprompt = "{question} {answr}"\n', "the prompt's field {answr} is not a column of", "(did you mean 'answer'?)"),
        ('[task.target]\nkind = "multiclass"\ncolumn = "is_correct"\nlabels = ["True", "Maybe"]\n',
         "has the label 'False' in is_correct, which is not in task.target.labels (Maybe, True)", 'labels = "from_train"'),
        ('[task]\npreset = "topk"\n[task.target]\ncolumn = "is_correct"\n', "task.submission.k = 3 is more than the 2 classes", "k = 2 at most"),
        ('[task]\npreset = "multiclass"\n[task.target]\ncolumn = "is_corect"\n', "the task's column 'is_corect' is not a column of", "is_correct"),
    ],
)
def test_a_task_that_does_not_fit_the_files_is_refused_before_anything_is_built(workspace, table, message, hint):
    _append(workspace, "\n" + table)
    for args in (("build", "train", "-o", "build/train"), ("push-kernel", "train")):
        result = run_kit(*args)
        assert result.exit_code == 1, result.stderr
        first, second = result.stderr.strip().splitlines()[:2]
        assert message in first and hint in first + second
    assert not (workspace / "build").exists() and not list((workspace / "submissions").glob("run-*"))


@pytest.mark.parametrize("shape", ["binary", "multiclass", "topk", "pairwise", "ordinal"])
def test_the_proposal_for_each_practice_shape_agrees_with_its_task(workspace, shape):
    """The practice competition of each shape writes its own [task]; proposed from its files, kit reads the same
    target, submission and metric family (the metric where the files can tell it)."""
    made = run_kit("practice", "init", "--task", shape, "--force", "--train-rows", "120", "--test-rows", "20")
    assert made.exit_code == 0, made.stderr
    written = layout.load(workspace).task
    proposed = Task.from_dict(propose(workspace / ".kit" / "practice" / "practice-math" / "data").table)
    same = ("kind", "id", "column", "columns", "one_hot", "output", "k", "sub_columns")
    assert {f: getattr(proposed, f) for f in same} == {f: getattr(written, f) for f in same}
    if shape != "multiclass":  # the practice's multiclass is scored by macro F1; the files cannot say so
        assert proposed.metric == written.metric


def test_the_train_labels_are_read_again_when_the_file_changes(workspace):
    _append(workspace, '\n[task.target]\nkind = "multiclass"\ncolumn = "is_correct"\nlabels = ["True", "False"]\n')
    assert run_kit("build", "train", "-o", "build/a").exit_code == 0
    assert run_kit("build", "train", "-o", "build/b").exit_code == 0  # the labels read once, then from .kit/
    train = workspace / ".kit" / "practice" / "practice-math" / "data" / "train.csv"
    train.write_text(train.read_text() + "q,a,s,Maybe\n")
    refused = run_kit("build", "train", "-o", "build/c")
    assert refused.exit_code == 1 and "has the label 'Maybe' in is_correct" in refused.stderr
