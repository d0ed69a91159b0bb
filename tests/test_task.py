"""The task description (kernels/runtime/task.py): parsing and its one-line errors, targets and label sets, metrics
against scikit-learn, MAP@k by hand, each decision rule, the baseline, and the submission writer and checker."""

from __future__ import annotations

import csv
import math
import random
import sys

import numpy as np
import pytest
from sklearn import metrics

from runtime.task import (
    Rule,
    Task,
    TaskError,
    baseline,
    check_submission,
    decide,
    fit_rule,
    mean_average_precision,
    metric_value,
    read_header,
    read_rows,
    score,
    tune_threshold,
    write_submission,
)

LMSYS = {"preset": "pairwise", "id": "id", "prompt": "{prompt}\nA: {response_a}\nB: {response_b}",
         "target": {"one_hot": ["winner_model_a", "winner_model_b", "winner_tie"]}}
MAP = {"preset": "topk", "id": "row_id", "prompt": "{QuestionText} {StudentExplanation}", "target": {"columns": ["Category", "Misconception"]}}
AES = {"preset": "ordinal", "id": "essay_id", "prompt": "{full_text}", "target": {"column": "score"}}
JIGSAW = {"id": "row_id", "prompt": "{rule}: {body}", "target": {"kind": "binary", "column": "rule_violation"},
          "submission": {"output": "probability"}, "metric": {"name": "roc_auc_by:rule"}}


def _random_probs(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    logits = rng.normal(size=(n, c)) * 2
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------ parsing


def test_no_task_table_is_the_binary_is_correct_task():
    task = Task.from_dict(None)
    assert task == Task.default() == Task.from_dict({}) == Task.from_dict({"preset": "binary"})
    assert task.classes() == ("True", "False") and task.positive == "True"
    assert task.sub_columns == ("ID", "is_correct") and task.metric == "accuracy" and task.higher_is_better
    assert task.fields() == ("question", "answer", "solution") and task.shorten == "solution"
    assert task.metric_column() == "val_accuracy" and task.prob_columns() == ("p_True", "p_False")


@pytest.mark.parametrize("table", [LMSYS, MAP, AES, JIGSAW], ids=["pairwise", "topk", "ordinal", "binary-auc"])
def test_each_shape_parses_and_round_trips(table):
    task = Task.from_dict(table)
    assert Task.from_dict(task.to_dict()) == task
    train_values = {"pairwise": [], "multiclass": ["B:x", "A:NA", "C:y"], "ordinal": ["3", "1", "10", "2"], "binary": ["0", "1"]}[task.kind]
    resolved = task if task.labels is not None else task.with_labels(train_values)
    assert Task.from_dict(resolved.to_dict()) == resolved


def test_shapes_fill_what_the_competitions_need():
    lmsys = Task.from_dict(LMSYS)
    assert lmsys.classes() == ("winner_model_a", "winner_model_b", "winner_tie")
    assert lmsys.sub_columns == ("id", "winner_model_a", "winner_model_b", "winner_tie")
    assert lmsys.output == "probabilities" and not lmsys.higher_is_better and lmsys.metric_column() == "val_log_loss"
    assert lmsys.shorten == "response_b"  # the prompt's last field, where none is named
    mapc = Task.from_dict(MAP)
    assert mapc.sub_columns == ("row_id", "Category:Misconception") and mapc.k == 3 and mapc.metric == "map@3"
    aes = Task.from_dict(AES).with_labels(["3", "1", "10", "2"])
    assert aes.classes() == ("1", "2", "3", "10")  # numbers sort as numbers
    jigsaw = Task.from_dict(JIGSAW).with_labels(["0", "1", "0"])
    assert jigsaw.classes() == ("1", "0") and jigsaw.positive == "1" and jigsaw.group == "rule"  # the true-like class first


def test_targets_from_a_column_two_columns_and_one_hot():
    assert Task.default().target({"is_correct": " True "}) == "True"
    assert Task.from_dict(MAP).target({"Category": "True_Correct", "Misconception": "NA"}) == "True_Correct:NA"
    composed = Task.from_dict({**MAP, "target": {"columns": ["Category", "Misconception"], "compose": "{Misconception}|{Category}"}})
    assert composed.target({"Category": "c", "Misconception": "m"}) == "m|c" and composed.sub_columns[1] == "Misconception|Category"
    lmsys = Task.from_dict(LMSYS)
    assert lmsys.target({"winner_model_a": "0", "winner_model_b": "1", "winner_tie": "0"}) == "winner_model_b"
    with pytest.raises(TaskError, match="no single winner"):
        lmsys.target({"winner_model_a": "1", "winner_model_b": "1", "winner_tie": "0"})
    named = Task.from_dict({**LMSYS, "target": {**LMSYS["target"], "labels": ["a", "b", "tie"]}})
    assert named.target({"winner_model_a": "0", "winner_model_b": "0", "winner_tie": "1"}) == "tie"


@pytest.mark.parametrize(
    "table, message",
    [
        ({"preset": "binray"}, "unknown task.preset 'binray' (did you mean 'binary'?)"),
        ({"target": {"colum": "x"}}, "unknown key 'colum' in [task.target] (did you mean 'column'?)"),
        ({"metric": {"name": "logloss"}}, "unknown metric 'logloss' (did you mean 'log_loss'?)"),
        ({"preset": "binary", "metric": {"name": "map@3"}}, 'metric map@3 cannot score a submission of labels (set [task.submission] output = "top_k" and k = 3'),
        ({**MAP, "submission": {"output": "probability"}}, "metric map@3 cannot score a submission of a probability"),
        ({**MAP, "target": {"column": "a", "labels": ["A", "B"]}}, "task.submission.k = 3 is more than the 2 classes"),
        ({**MAP, "submission": {"k": 5}}, "task.submission.k = 5 submits more labels than map@3 reads"),
        ({"preset": "multiclass"}, "task.target names no column"),
        ({"target": {"column": "a", "one_hot": ["b", "c"]}}, "task.target has column and one_hot"),
        ({"preset": "ordinal", "target": {"column": "s", "labels": ["low", "high"]}}, "an ordinal task's labels are whole numbers"),
        ({"preset": "multiclass", "target": {"column": "y"}, "metric": {"name": "qwk"}}, "metric qwk compares numbers"),
        ({"target": {"column": "y", "labels": ["a", "b", "c"]}}, "a binary task has two labels, and this one has 3"),
        ({**LMSYS, "submission": {"columns": ["id", "a", "b"]}}, "2 probability columns for 3 classes"),
        ({"prompt": "{q} {a}", "shorten": "solution"}, "task.shorten 'solution' is not a field of the prompt (q, a)"),
        ({"target": {"column": "y", "labels": "all"}}, "task.target.labels must list the classes"),
        ({"submission": {"k": 0}}, "task.submission.k must be a whole number"),
    ],
)
def test_bad_descriptions_are_refused_in_one_line_with_the_fix(table, message):
    with pytest.raises(TaskError) as caught:
        Task.from_dict(table)
    assert message in str(caught.value)
    assert caught.value.fix and "\n" not in str(caught.value)


def test_train_labels_and_columns_are_checked_against_the_task():
    task = Task.default()
    task.with_labels(["True", "false", "1", "0"])  # spellings of the two classes
    with pytest.raises(TaskError, match=r"the label 'maybe' in is_correct, which is not in task.target.labels \(False, True\)"):
        task.with_labels(["True", "maybe"])
    topk = Task.from_dict({**MAP, "target": {"column": "answer", "labels": ["A", "B", "C", "D"]}})
    with pytest.raises(TaskError, match="'E'"):
        topk.check_targets(["A", "E"])
    with pytest.raises(TaskError, match=r"the prompt's field \{QuestionTxt\} is not a column of train.csv \(did you mean 'QuestionText'\?\)"):
        Task.from_dict({**MAP, "prompt": "{QuestionTxt}"}).check_train_columns(["row_id", "QuestionText", "Category", "Misconception"])
    with pytest.raises(TaskError, match="'rule' is not a column"):
        Task.from_dict({**JIGSAW, "prompt": "{body}"}).check_train_columns(["row_id", "body", "rule_violation", "rules"])
    Task.from_dict(MAP).check_train_columns(["row_id", "QuestionText", "StudentExplanation", "Category", "Misconception"])


def test_a_group_column_keeps_its_case_in_the_metric_name():
    # Column names are case-sensitive: roc_auc_by:Rule groups by the column Rule, whatever case the family is in.
    task = Task.from_dict({**JIGSAW, "prompt": "{Rule}: {body}", "metric": {"name": " ROC_AUC_BY:Rule "}})
    assert task.metric == "roc_auc_by:Rule" and task.group == "Rule" and task.metric_column() == "val_roc_auc_by:Rule"
    task.check_train_columns(["row_id", "Rule", "body", "rule_violation"])
    resolved = task.with_labels(["0", "1"])
    groups, y = ["a", "a", "b", "b"], ["1", "0", "1", "0"]
    assert metric_value(resolved, y, [0.9, 0.1, 0.2, 0.8], groups) == 0.5  # group a right, group b wrong
    assert Task.from_dict({**MAP, "metric": {"name": "MAP@3"}}).metric == "map@3"


def test_a_one_hot_target_keeps_its_columns_order():
    # The class of a row is the label at its winning column's place: labels read from train (sorted, only those seen)
    # would name another column's class, so they are refused.
    with pytest.raises(TaskError, match="one-hot target's classes are its columns"):
        Task.from_dict({**LMSYS, "target": {**LMSYS["target"], "labels": "from_train"}})
    task = Task.from_dict({**LMSYS, "target": {"one_hot": ["winner_model_b", "winner_model_a", "winner_tie"], "labels": ["b", "a", "tie"]}})
    assert task.target({"winner_model_b": "0", "winner_model_a": "1", "winner_tie": "0"}) == "a"


def test_an_ordinal_score_read_as_a_float_is_its_whole_number():
    # pandas reads a score column with a blank as floats, and Parquet may store it so: 3.0 is the class 3.
    task = Task.from_dict(AES)
    values = [task.target({"score": v}) for v in (3.0, "1.0", "2", " 10.0 ")]
    assert values == ["3", "1", "2", "10"]
    assert task.with_labels(values).classes() == ("1", "2", "3", "10")


def test_prompt_parts_fill_the_fields_and_set_apart_the_shortened_one():
    task = Task.from_dict({"prompt": "Q: {q}\nWork: {work}\nA: {a}? {{x}}", "target": {"column": "y"}, "shorten": "work"})
    assert task.prompt_parts({"q": "1+1", "work": "long", "a": "2", "y": "True"}) == ("Q: 1+1\nWork: ", "long", "\nA: 2? {x}")
    assert task.render({"q": "1+1", "work": "long", "a": "2"}) == "Q: 1+1\nWork: long\nA: 2? {x}"


# ------------------------------------------------------------------------------------------------ metrics


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    n = 300
    # accuracy and macro F1 on a multi-class task (argmax)
    multi = Task.from_dict({"preset": "multiclass", "target": {"column": "y", "labels": ["A", "B", "C", "D"]}})
    probs = _random_probs(rng, n, 4)
    y = [multi.classes()[i] for i in rng.integers(0, 4, n)]
    predicted = [multi.classes()[i] for i in probs.argmax(1)]
    assert score(multi, y, probs) == pytest.approx(metrics.accuracy_score(y, predicted), abs=1e-9)
    macro = Task.from_dict({"preset": "multiclass", "target": {"column": "y", "labels": ["A", "B", "C", "D"]}, "metric": {"name": "macro_f1"}})
    assert score(macro, y, probs) == pytest.approx(metrics.f1_score(y, predicted, average="macro"), abs=1e-9)
    # log loss over per-class probabilities (classes in their listed order, not sorted)
    lmsys = Task.from_dict({**LMSYS, "target": {**LMSYS["target"], "labels": ["b", "a", "tie"]}})
    p3 = _random_probs(rng, n, 3)
    y3 = [lmsys.classes()[i] for i in rng.integers(0, 3, n)]
    expected = metrics.log_loss(y3, p3[:, [1, 0, 2]], labels=["a", "b", "tie"])  # scikit-learn's own column order: sorted
    assert score(lmsys, y3, p3) == pytest.approx(expected, abs=1e-9)
    # binary: log loss and ROC AUC of P(positive), accuracy at the threshold
    jig = Task.from_dict(JIGSAW).with_labels(["0", "1"])
    p2 = _random_probs(rng, n, 2)
    y2 = [jig.classes()[i] for i in rng.integers(0, 2, n)]
    truth = [int(v == "1") for v in y2]
    auc = Task.from_dict({**JIGSAW, "metric": {"name": "roc_auc"}}).with_labels(["0", "1"])
    assert score(auc, y2, p2) == pytest.approx(metrics.roc_auc_score(truth, p2[:, 0]), abs=1e-9)
    loss = Task.from_dict({**JIGSAW, "metric": {"name": "log_loss"}}).with_labels(["0", "1"])
    assert score(loss, y2, p2) == pytest.approx(metrics.log_loss(truth, p2[:, 0]), abs=1e-9)
    binary = Task.default()
    yb = ["True" if t else "False" for t in truth]
    assert score(binary, yb, p2, Rule("threshold", threshold=0.3)) == pytest.approx(
        metrics.accuracy_score(yb, ["True" if p >= 0.3 else "False" for p in p2[:, 0]]), abs=1e-9)
    # AUC per group, averaged
    groups = [f"rule{i}" for i in rng.integers(0, 3, n)]
    per_group = [metrics.roc_auc_score([t for t, g in zip(truth, groups) if g == k], [p for p, g in zip(p2[:, 0], groups) if g == k])
                 for k in ("rule0", "rule1", "rule2")]
    assert score(jig, y2, p2, groups=groups) == pytest.approx(sum(per_group) / 3, abs=1e-9)
    # ordinal: QWK and RMSE of argmax scores
    aes = Task.from_dict(AES).with_labels(["1", "2", "3", "4", "5", "6"])
    p6 = _random_probs(rng, n, 6)
    y6 = [str(v) for v in rng.integers(1, 7, n)]
    argmax = [int(aes.classes()[i]) for i in p6.argmax(1)]
    assert score(aes, y6, p6) == pytest.approx(metrics.cohen_kappa_score([int(v) for v in y6], argmax, weights="quadratic"), abs=1e-9)
    rmse = Task.from_dict({**AES, "metric": {"name": "rmse"}}).with_labels(aes.classes())
    assert score(rmse, y6, p6) == pytest.approx(math.sqrt(metrics.mean_squared_error([int(v) for v in y6], argmax)), abs=1e-9)
    assert not rmse.higher_is_better


def test_map_at_k_on_hand_worked_cases():
    assert mean_average_precision(["A"], [("A", "B", "C")], 3) == 1.0
    assert mean_average_precision(["B"], [("A", "B", "C")], 3) == 0.5
    assert mean_average_precision(["C"], [("A", "B", "C")], 3) == pytest.approx(1 / 3)
    assert mean_average_precision(["D"], [("A", "B", "C")], 3) == 0.0
    assert mean_average_precision(["A", "B", "C", "D"], [("A", "B", "C")] * 4, 3) == pytest.approx((1 + 1 / 2 + 1 / 3 + 0) / 4)
    assert mean_average_precision(["B"], [("A", "A", "B")], 3) == pytest.approx(1 / 3)  # a repeated label still takes a rank
    assert mean_average_precision(["B"], [("A", "B")], 1) == 0.0  # only the first k count
    assert mean_average_precision(["B"], [("B", "B")], 3) == 1.0  # the first occurrence scores, once
    # from probabilities: the top 3 by probability, best first (LLM Science Exam's letters)
    exam = Task.from_dict({**MAP, "target": {"column": "answer", "labels": ["A", "B", "C", "D", "E"]}})
    probs = [[0.1, 0.5, 0.2, 0.15, 0.05], [0.3, 0.1, 0.2, 0.25, 0.15]]
    assert decide(exam, probs) == [("B", "C", "D"), ("A", "D", "C")]
    assert score(exam, ["C", "B"], probs) == pytest.approx((1 / 2 + 0) / 2)


# ------------------------------------------------------------------------------------------------ decision rules


def test_threshold_rule_maximises_binary_accuracy():
    probs, labels = [0.1, 0.2, 0.3, 0.35, 0.6, 0.9], [False, False, True, True, True, True]
    cut = tune_threshold(probs, labels)
    assert 0.2 < cut <= 0.3 and sum((p >= cut) == y for p, y in zip(probs, labels)) == 6
    assert tune_threshold([0.9, 0.8], [True, True]) == 0.5  # ties go to the cut nearest 0.5
    rng = random.Random(0)
    task = Task.default()
    for n in (2, 7, 50, 400):
        p = [round(rng.random(), 2) for _ in range(n)]
        y = ["True" if rng.random() < q else "False" for q in p]
        matrix = [[q, 1 - q] for q in p]
        rule = fit_rule(task, y, matrix)
        assert rule.name == "threshold"
        best = max(score(task, y, matrix, Rule("threshold", threshold=t / 100)) for t in range(101))
        assert score(task, y, matrix, rule) >= best
    assert fit_rule(task, ["True"], [[0.2, 0.8]], threshold="0.7") == Rule("threshold", threshold=0.7)
    assert decide(task, [[0.6, 0.4], [0.2, 0.8]], Rule("threshold", threshold=0.5)) == ["True", "False"]


def test_temperature_rule_lowers_log_loss_of_overconfident_probabilities():
    rng = np.random.default_rng(1)
    task = Task.from_dict(LMSYS)
    n = 400
    calibrated = _random_probs(rng, n, 3)
    truth = [rng.choice(3, p=row) for row in calibrated]  # the labels drawn from the probabilities: calibrated
    overconfident = calibrated ** 4 / (calibrated ** 4).sum(axis=1, keepdims=True)
    y = [task.classes()[i] for i in truth]
    rule = fit_rule(task, y, overconfident)
    assert rule.name == "temperature" and rule.temperature > 1.5  # softened
    fitted = score(task, y, overconfident, rule)
    assert fitted < score(task, y, overconfident) - 0.05
    grid = min(score(task, y, overconfident, Rule("temperature", temperature=t)) for t in np.linspace(0.5, 8, 151))
    assert fitted <= grid + 1e-4  # as good as a fine grid
    rows = decide(task, overconfident, rule)
    assert all(abs(sum(r) - 1) < 1e-9 for r in rows)


def test_cut_point_rule_raises_qwk_where_argmax_is_off_by_one():
    task = Task.from_dict(AES).with_labels(["1", "2", "3", "4"])
    rng = np.random.default_rng(2)
    n = 300
    truth = rng.integers(1, 5, n)
    # A model whose probabilities lean one class low: argmax under-scores, the expected score keeps the order.
    probs = np.full((n, 4), 0.05)
    for i, t in enumerate(truth):
        probs[i, max(t - 2, 0)] += 0.55
        probs[i, t - 1] += 0.3
    probs /= probs.sum(axis=1, keepdims=True)
    y = [str(t) for t in truth]
    rule = fit_rule(task, y, probs)
    assert rule.name == "cut_points" and len(rule.cuts) == 3 and list(rule.cuts) == sorted(rule.cuts)
    assert score(task, y, probs, rule) > score(task, y, probs) + 0.05
    assert decide(task, [[0.0, 0.0, 0.0, 1.0]], rule) == ["4"]


def test_argmax_and_top_k_rules():
    task = Task.from_dict({"preset": "multiclass", "target": {"column": "y", "labels": ["x", "y", "z"]}})
    assert fit_rule(task, ["x"], [[0.5, 0.3, 0.2]]) == Rule("argmax")
    assert decide(task, [[0.2, 0.3, 0.5], [0.4, 0.4, 0.2]]) == ["z", "x"]  # a tie goes to the class listed first
    topk = Task.from_dict({**MAP, "target": {"column": "y", "labels": ["x", "y", "z", "w"]}, "submission": {"k": 2}, "metric": {"name": "map@3"}})
    assert fit_rule(topk, ["x"], [[0.1, 0.2, 0.3, 0.4]]) == Rule("top_k")
    assert decide(topk, [[0.1, 0.2, 0.3, 0.4]]) == [("w", "z")]


def test_baselines_say_what_ignoring_the_input_scores():
    binary = Task.default()
    y = ["False"] * 6 + ["True"] * 4
    assert baseline(binary, y) == ("always False (the majority class)", pytest.approx(0.6))
    lmsys = Task.from_dict(LMSYS)
    y3 = ["winner_model_a"] * 5 + ["winner_model_b"] * 3 + ["winner_tie"] * 2
    text, value = baseline(lmsys, y3)
    assert text == "the class prior (winner_model_a 0.50, winner_model_b 0.30, winner_tie 0.20)"
    assert value == pytest.approx(metrics.log_loss(y3, [[0.5, 0.3, 0.2]] * 10), abs=1e-9)
    exam = Task.from_dict({**MAP, "target": {"column": "answer", "labels": ["A", "B", "C", "D"]}})
    text, value = baseline(exam, ["D", "D", "C", "B", "D", "C"])
    assert text == "always D C B (the 3 most frequent classes)" and value == pytest.approx((3 + 2 * 0.5 + 1 / 3) / 6)
    assert baseline(Task.from_dict(JIGSAW).with_labels(["0", "1"]), ["0", "1"]) == ("any constant probability", 0.5)


# ------------------------------------------------------------------------------------------------ submissions


def _rows(path):
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        return next(reader), list(reader)


@pytest.mark.parametrize("shape", ["binary", "pairwise", "topk", "ordinal", "probability"])
def test_written_submissions_pass_the_check(tmp_path, shape):
    rng = np.random.default_rng(3)
    task = {"binary": Task.default(), "pairwise": Task.from_dict(LMSYS),
            "topk": Task.from_dict(MAP).with_labels(["a:NA", "b:x", "c:y", "d:NA"]),
            "ordinal": Task.from_dict(AES).with_labels(["1", "2", "3"]), "probability": Task.from_dict(JIGSAW).with_labels(["0", "1"])}[shape]
    ids = [str(1000 + i) for i in range(20)]
    probs = _random_probs(rng, 20, len(task.classes()))
    path = write_submission(task, ids, decide(task, probs, fit_rule(task, [], probs)), tmp_path / task.file)
    header, rows = _rows(path)
    assert tuple(header) == task.sub_columns
    assert check_submission(task, header, rows, ids) == 20
    if shape == "pairwise":
        assert rows[0][1:] == [f"{p:.6f}" for p in probs[0]]
    if shape == "topk":
        assert len(rows[0][1].split(" ")) == 3


@pytest.mark.parametrize(
    "shape, header, rows, message",
    [
        ("binary", ["ID", "label"], [], "submission.csv's header is ID,label (the task's header is ID,is_correct)"),
        ("binary", ["ID", "is_correct"], [["1", "True"], ["1", "False"]], "submission.csv line 3: ID '1' appears twice"),
        ("binary", ["ID", "is_correct"], [["9", "True"]], "submission.csv line 2: ID '9' is not a test row"),
        ("binary", ["ID", "is_correct"], [["1", "True"]], "has no row for 1 of the 2 test ids (e.g. '2')"),
        ("binary", ["ID", "is_correct"], [["1", "Maybe"]], "line 2: 'Maybe' is not a label of the task (one of True, False)"),
        ("binary", ["ID", "is_correct"], [["1"]], "line 2: 1 cells, the header has 2"),
        ("topk", ["row_id", "Category:Misconception"], [["1", "a b c d"]], "line 2: 4 labels, more than k = 3"),
        ("topk", ["row_id", "Category:Misconception"], [["1", "a zz"]], "line 2: 'zz' is not a label of the task"),
        ("topk", ["row_id", "Category:Misconception"], [["1", "  "]], "line 2: no label"),
        ("pairwise", ["id", "winner_model_a", "winner_model_b", "winner_tie"], [["1", "0.5", "0.4", "0.3"]],
         "line 2: the class probabilities sum to 1.200000, not 1 (normalize each row"),
        ("pairwise", ["id", "winner_model_a", "winner_model_b", "winner_tie"], [["1", "1.5", "-0.4", "-0.1"]], "1.5 is not a probability between 0 and 1"),
        ("probability", ["row_id", "rule_violation"], [["1", "nan"]], "nan is not a probability between 0 and 1"),
        ("probability", ["row_id", "rule_violation"], [["1", "high"]], "'high' is not a probability"),
    ],
)
def test_submission_check_refuses_in_one_line(shape, header, rows, message):
    task = {"binary": Task.default(), "pairwise": Task.from_dict(LMSYS), "topk": Task.from_dict(MAP).with_labels(["a", "b", "c", "d"]),
            "probability": Task.from_dict(JIGSAW).with_labels(["0", "1"])}[shape]
    with pytest.raises(TaskError) as caught:
        check_submission(task, header, rows, ["1", "2"] if "has no row" in message else ["1"])
    assert message in str(caught.value)


def test_probabilities_need_not_sum_to_one_where_the_metric_does_not_ask():
    task = Task.from_dict({**LMSYS, "metric": {"name": "log_loss"}})
    with pytest.raises(TaskError):
        check_submission(task, task.sub_columns, [["1", "0.5", "0.5", "0.5"]], ["1"])
    # per-class probabilities are only log loss's; a probability of the positive class has no sum to keep
    jig = Task.from_dict(JIGSAW).with_labels(["0", "1"])
    assert check_submission(jig, jig.sub_columns, [["1", "0.9"]], ["1"]) == 1


# ------------------------------------------------------------------------------------------------ files


def test_csv_and_parquet_files_read_alike(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "train.csv").write_text("id,prompt,winner\n1,hi,model_a\n2,yo,model_b\n", encoding="utf-8")
    pq.write_table(pa.table({"id": [1, 2], "prompt": ["hi", "yo"], "winner": ["model_a", "model_b"]}), tmp_path / "train.parquet")
    for name in ("train.csv", "train.parquet"):
        assert read_header(tmp_path / name) == ["id", "prompt", "winner"]
        assert list(read_rows(tmp_path / name, ["id", "winner"])) == [{"id": "1", "winner": "model_a"}, {"id": "2", "winner": "model_b"}]


def test_a_parquet_file_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "train.parquet").write_bytes(b"PAR1")
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what Python does when it is not installed: ImportError
    with pytest.raises(TaskError) as caught:
        read_header(tmp_path / "train.parquet")
    assert str(caught.value) == "train.parquet is a Parquet file, and reading it needs pyarrow, which is not installed (pip install pyarrow)"


def test_kit_uses_the_kernels_own_task_module():
    """kit/task.py loads kernels/runtime/task.py, the file the kernels inline: one definition, no copy."""
    import kit.task
    from kit.build.templates import packaged_kernels_dir
    from kit.finals import ensemble

    assert kit.task.runtime_task().__file__ == str(packaged_kernels_dir() / "runtime" / "task.py")
    assert ensemble.fit_rule is kit.task.fit_rule and ensemble.write_submission is kit.task.write_submission
    assert kit.task.Task.default().to_dict() == Task.default().to_dict()
    assert metric_value(Task.default(), ["True"], ["True"]) == 1.0
