"""Submissions checked against the workspace's [task] (kit.submissions.validate.TaskValues, on the streaming
validator): labels from the label set, respelled as the task spells them; k at most; probabilities in [0, 1];
per-class rows summing to 1 for a log-loss task; each refusal one line naming the row, the value and what fits."""

from __future__ import annotations

import pytest

from kit.errors import SubmissionError
from kit.submissions.validate import values_for, validate_submission
from kit.task import Task

LMSYS = Task.from_dict({"preset": "pairwise", "id": "id", "prompt": "{prompt}", "target": {"one_hot": ["winner_model_a", "winner_model_b", "winner_tie"]}})
EXAM = Task.from_dict({"preset": "topk", "id": "id", "prompt": "{prompt}", "target": {"column": "answer", "labels": ["A", "B", "C", "D", "E"]},
                       "submission": {"columns": ["id", "prediction"]}})
AES = Task.from_dict({"preset": "ordinal", "id": "essay_id", "prompt": "{full_text}", "target": {"column": "score", "labels": [1, 2, 3, 4, 5, 6]}})
JIGSAW = Task.from_dict({"id": "row_id", "prompt": "{body}", "target": {"kind": "binary", "column": "rule_violation", "labels": ["1", "0"]},
                         "submission": {"output": "probability"}, "metric": {"name": "roc_auc"}})


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def _check(tmp_path, task, sample_lines, lines):
    sample = _write(tmp_path / "sample.csv", sample_lines)
    sub = _write(tmp_path / "submission.csv", lines)
    return validate_submission(sub, sample, upload_dir=tmp_path / "upload", values=values_for(task))


def test_the_binary_is_correct_task_keeps_todays_check():
    assert values_for(Task.default()) is None  # BinaryLabels: the sample's True/False spelling, as before


def test_per_class_probabilities_pass_and_a_row_not_summing_to_one_is_refused(tmp_path):
    sample = ["id,winner_model_a,winner_model_b,winner_tie", "1,0.33,0.33,0.34", "2,0.33,0.33,0.34"]
    valid = _check(tmp_path, LMSYS, sample, [sample[0], "1,0.5,0.3,0.2", "2,0.1,0.1,0.8"])
    assert valid.rows == 2 and not valid.changes
    with pytest.raises(SubmissionError) as refused:
        _check(tmp_path, LMSYS, sample, [sample[0], "1,0.5,0.3,0.3", "2,0.1,1.1,0.8"])
    text = str(refused.value)
    assert "line 2: the class probabilities sum to 1.100000, not 1 for ID '1'" in text
    assert "line 3: 1.1 is not a probability between 0 and 1 for ID '2'" in text
    assert "one probability per class, summing to 1" in refused.value.hint and "nothing was submitted" in refused.value.hint


def test_top_k_labels_are_respelled_and_checked(tmp_path):
    sample = ["id,prediction", "1,A B C", "2,A B C"]
    valid = _check(tmp_path, EXAM, sample, [sample[0], "1,A  B C", "2,E"])
    assert (tmp_path / "upload" / "submission.csv").read_text() == "id,prediction\n1,A B C\n2,E\n"
    assert valid.changes == ("1 values respelled as the task spells its labels",)
    with pytest.raises(SubmissionError) as refused:
        _check(tmp_path, EXAM, sample, [sample[0], "1,A B C D", "2,A F"])
    assert "line 2: 4 labels, more than k = 3 for ID '1'" in str(refused.value)
    assert "line 3: 'F' is not a label of the task for ID '2'" in str(refused.value)


def test_ordinal_scores_are_respelled_as_the_task_spells_them(tmp_path):
    sample = ["essay_id,score", "a,3", "b,3"]
    valid = _check(tmp_path, AES, sample, [sample[0], "a,3.0", "b,6"])
    assert (tmp_path / "upload" / "submission.csv").read_text() == "essay_id,score\na,3\nb,6\n"
    assert valid.changes == ("1 values respelled as the task spells its labels",)
    with pytest.raises(SubmissionError, match=r"line 3: '7' is not a label of the task for ID 'b' \(expected scores \(1, 2, 3, 4, 5, 6\)\)"):
        _check(tmp_path, AES, sample, [sample[0], "a,3", "b,7"])


def test_a_probability_of_the_positive_class(tmp_path):
    sample = ["row_id,rule_violation", "1,0.5", "2,0.5"]
    valid = _check(tmp_path, JIGSAW, sample, [sample[0], "1,0.9", "2,0.2"])
    assert valid.true_share == 0.5
    with pytest.raises(SubmissionError, match=r"line 3: 'yes' is not a probability for ID '2' \(expected P\(1\) between 0 and 1\)"):
        _check(tmp_path, JIGSAW, sample, [sample[0], "1,0.9", "2,yes"])
