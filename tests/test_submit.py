"""Submitting: bad files are refused before anything is spent; scores land in leaderboard.csv."""

from __future__ import annotations

import csv
import json

import pytest

from kit.leaderboard import sheet
from kit.workspace import layout
from tests.helpers import CONSTANT_TEMPLATE, install_template


@pytest.fixture
def finished_run(workspace, kit_cli):
    install_template(workspace, CONSTANT_TEMPLATE)
    assert kit_cli("push-kernel", "train", "--wait").exit_code == 0
    return workspace / "submissions" / "run-1"


def _hidden(workspace):
    with open(workspace / ".kit" / "practice" / "practice-math" / "hidden" / "solution.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _submissions_json(workspace):
    return json.loads((workspace / ".kit" / "practice" / "practice-math" / "submissions.json").read_text())["submissions"]


def test_submit_scores_public_split_by_hand(workspace, kit_cli, finished_run):
    # Make the file right on exactly the first 7 public rows and wrong everywhere else.
    hidden = _hidden(workspace)
    public = [r for r in hidden if r["Usage"] == "Public"]
    right = {r["ID"] for r in public[:7]}
    lines = ["ID,is_correct"]
    for r in hidden:
        truth = r["is_correct"] == "True"
        lines.append(f"{r['ID']},{truth if r['ID'] in right else (not truth)}")
    (finished_run / "submission.csv").write_text("\n".join(lines) + "\n")
    result = kit_cli("submit", "run-1", "-m", "hand-made", "--yes")
    assert result.exit_code == 0, result.stderr
    expected = round(7 / len(public), 5)
    assert f"public {expected:.5f}" in result.stdout
    _, rows = sheet.read(workspace / "leaderboard.csv")
    row = next(r for r in rows if r["run"] == "run-1")
    assert float(row["public_score"]) == pytest.approx(expected) and row["private_score"] == ""
    assert row["submission_ref"] and row["val_accuracy"] == "0.6"
    # The private score appears once the competition closes.
    assert kit_cli("practice", "close").exit_code == 0
    private = [r for r in hidden if r["Usage"] == "Private"]
    _, rows = sheet.read(workspace / "leaderboard.csv")
    assert float(rows[0]["private_score"]) == pytest.approx(round(0 / len(private), 5))


def test_same_file_is_not_submitted_twice_by_accident(workspace, kit_cli, finished_run):
    assert kit_cli("submit", "run-1", "--yes").exit_code == 0
    again = kit_cli("submit", "run-1", "--yes")
    assert again.exit_code == 1 and "already submitted" in again.stderr and "--again" in again.stderr
    assert len(_submissions_json(workspace)) == 1
    assert kit_cli("submit", "run-1", "--yes", "--again").exit_code == 0
    assert len(_submissions_json(workspace)) == 2


def test_confirmation_declined_submits_nothing(workspace, kit_cli, finished_run):
    result = kit_cli("submit", "run-1", input="n\n")
    assert result.exit_code == 1 and "not submitted" in result.stderr
    assert _submissions_json(workspace) == []


def test_daily_limit_is_refused_before_submitting(workspace, kit_cli, finished_run):
    for _ in range(3):
        assert kit_cli("submit", "run-1", "--yes", "--again").exit_code == 0
    result = kit_cli("submit", "run-1", "--yes", "--again")
    assert result.exit_code == 1 and "no submissions left today" in result.stderr
    assert len(_submissions_json(workspace)) == 3


def _good_lines(workspace):
    return (workspace / ".kit" / "practice" / "practice-math" / "data" / "sample_submission.csv").read_text().splitlines()


BAD_FILES = {
    "missing header": (lambda lines: lines[1:], "missing header row"),
    "wrong column": (lambda lines: ["ID,label"] + lines[1:], "wrong header"),
    "missing ID": (lambda lines: lines[:-1], "1 IDs missing"),
    "duplicate ID": (lambda lines: lines + [lines[1]], "duplicate ID"),
    "unknown ID": (lambda lines: lines + ["99999,True"], "unknown ID '99999'"),
    "bad value": (lambda lines: [lines[0], lines[1].split(",")[0] + ",yes"] + lines[2:], "bad value 'yes'"),
    "blank value": (lambda lines: [lines[0], lines[1].split(",")[0] + ","] + lines[2:], "blank is_correct"),
    "empty file": (lambda lines: [], "the file is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_submission_is_refused_with_nothing_recorded(workspace, kit_cli, finished_run, case):
    mutate, message = BAD_FILES[case]
    lines = mutate(_good_lines(workspace))
    (finished_run / "submission.csv").write_text("\n".join(lines) + ("\n" if lines else ""))
    before = (workspace / "leaderboard.csv").read_text()
    result = kit_cli("submit", "run-1", "--yes")
    assert result.exit_code == 1
    assert message in result.stderr and "nothing was submitted" in result.stderr
    assert _submissions_json(workspace) == []
    assert json.loads((finished_run / "run.json").read_text())["submissions"] == []
    assert (workspace / "leaderboard.csv").read_text() == before
    ws = layout.load(workspace)
    assert ws.practice_dir.is_dir()
