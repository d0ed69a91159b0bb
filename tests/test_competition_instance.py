"""A submission ref names a submission only within one competition instance: `kit practice init --force` (the
README's GPU command) makes a new practice competition whose refs restart at 1, and `kit scores` must never write
the new competition's scores onto the old runs."""

from __future__ import annotations

import json

from kit.leaderboard import sheet
from tests.helpers import CONSTANT_TEMPLATE, install_template


def _record(workspace, run_id):
    return json.loads((workspace / "submissions" / run_id / "run.json").read_text())


def _scores(workspace, run_id):
    _, rows = sheet.read(workspace / "leaderboard.csv")
    row = next(r for r in rows if r["run"] == run_id)
    return row["public_score"], row["private_score"], row["submission_ref"]


def _all_true(workspace, run_id):
    """Make the run's file answer True everywhere, so that its score differs from the constant kernel's False."""
    path = workspace / "submissions" / run_id / "submission.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0]] + [line.replace(",False", ",True") for line in lines[1:]]) + "\n")


def _readme_force_scenario(workspace, kit_cli, forget_instance: bool):
    install_template(workspace, CONSTANT_TEMPLATE)
    assert kit_cli("push-kernel", "train", "--wait").exit_code == 0
    assert kit_cli("submit", "run-1", "-m", "first", "--yes").exit_code == 0
    assert kit_cli("practice", "close").exit_code == 0  # run-1's private score is known
    before = _scores(workspace, "run-1")
    assert before[0] and before[1] and before[2] == "1"
    if forget_instance:  # a record written before kit kept the instance
        data = _record(workspace, "run-1")
        for sub in data["submissions"]:
            sub.pop("competition", None)
        (workspace / "submissions" / "run-1" / "run.json").write_text(json.dumps(data))
    # The README's GPU command: a new practice competition, then a new run submitted to it (its ref is 1 again).
    result = kit_cli("practice", "init", "--force", "--train-rows", "300", "--test-rows", "40", "--daily-limit", "3")
    assert result.exit_code == 0, result.stderr
    assert kit_cli("push-kernel", "train", "--wait").exit_code == 0
    _all_true(workspace, "run-2")
    submitted = kit_cli("submit", "run-2", "-m", "after --force", "--yes")
    assert submitted.exit_code == 0, submitted.stderr
    assert "submission 1 " in submitted.stdout
    return before


def test_a_new_practice_competition_never_scores_the_old_runs(workspace, kit_cli):
    before = _readme_force_scenario(workspace, kit_cli, forget_instance=False)
    assert kit_cli("scores").exit_code == 0
    assert _scores(workspace, "run-1") == before  # run-1 keeps its own public and private score
    run2 = _scores(workspace, "run-2")
    assert run2[2] == "1" and run2[0] and run2[0] != before[0] and run2[1] == ""
    subs = _record(workspace, "run-1")["submissions"]
    assert len(subs) == 1 and subs[0]["public_score"] == float(before[0]) and subs[0]["private_score"] == float(before[1])
    assert subs[0]["competition"] != _record(workspace, "run-2")["submissions"][0]["competition"]
    # kit submissions credits the new competition's ref 1 to run-2 only.
    listed = json.loads(kit_cli("submissions", "--json").stdout)
    assert [(s["ref"], s["run"]) for s in listed] == [("1", "run-2")]


def test_an_older_record_without_its_instance_keeps_its_scores_too(workspace, kit_cli):
    before = _readme_force_scenario(workspace, kit_cli, forget_instance=True)
    assert kit_cli("scores").exit_code == 0
    assert _scores(workspace, "run-1") == before
    assert kit_cli("practice", "close").exit_code == 0
    assert _scores(workspace, "run-1") == before
    assert _scores(workspace, "run-2")[1] != ""  # the new run does get its own private score


def test_the_same_file_may_be_submitted_to_the_new_competition(workspace, kit_cli):
    install_template(workspace, CONSTANT_TEMPLATE)
    assert kit_cli("push-kernel", "train", "--wait").exit_code == 0
    assert kit_cli("submit", "run-1", "--yes").exit_code == 0
    assert kit_cli("practice", "init", "--force", "--train-rows", "300", "--test-rows", "40").exit_code == 0
    again = kit_cli("submit", "run-1", "--yes")  # the earlier submission went to a competition that is gone
    assert again.exit_code == 0, again.stderr
    subs = _record(workspace, "run-1")["submissions"]
    assert [s["ref"] for s in subs] == ["1", "1"] and subs[0]["competition"] != subs[1]["competition"]
    assert kit_cli("scores").exit_code == 0
    subs = _record(workspace, "run-1")["submissions"]
    assert subs[0]["public_score"] is not None and subs[1]["public_score"] is not None
