"""--json's one rule, in every command that prints data: numbers are numbers, blanks are null (never ""), and
identifiers (run ids, submission refs) stay text. `jq 'select(.val_accuracy > 0.9)'` then means what it says."""

from __future__ import annotations

import json
import re

import pytest

from kit.commands.common import json_cell
from tests.helpers import PROBS_TEMPLATE, install_template

NUMBER_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")

# Per command: the fields that hold numbers (each value a number or null).
NUMERIC = {
    "leaderboard": {"val_accuracy", "public_score", "private_score", "val_rows", "train_rows", "learning_rate", "r", "seed"},
    "status": {"remote_version"},
    "submissions": {"public_score", "private_score"},
    "board": {"rank", "score", "teams"},
    "data": {"size"},
    "quota": {"submissions_left_today"},
    "pick": {"estimate", "val_accuracy", "val_rows", "public_score", "gain", "rank"},
    "ensemble": {"val_accuracy", "val_rows", "threshold"},
    "sweep": {"val_accuracy"},
}


def _walk(value, key=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, key)
    else:
        yield key, value


def _check(name: str, text: str, table: bool = False) -> list:
    data = json.loads(text)
    seen = list(_walk(data))
    assert seen, name
    blanks = [k for k, v in seen if isinstance(v, str) and not v.strip()]
    assert blanks == [], f"kit {name} --json gives blanks as '' in {blanks}"
    wrong = [(k, v) for k, v in seen if k in NUMERIC[name] and not (v is None or isinstance(v, (int, float)) and not isinstance(v, bool))]
    assert wrong == [], f"kit {name} --json gives numbers as text: {wrong}"
    if table:  # a table read from text: no cell that spells a number is left as text, but for identifiers
        spelled = [(k, v) for k, v in seen if isinstance(v, str) and NUMBER_TEXT.fullmatch(v.strip()) and k not in ("run", "submission_ref")]
        assert spelled == [], f"kit {name} --json leaves numbers as text: {spelled}"
    return data


def test_json_cell_reads_numbers_and_blanks():
    assert [json_cell(v) for v in ("0.59375", "64", "1e-4", "-2", " ", "", "n/a", "run-3", "2026-12-07")] == \
        [0.59375, 64, 1e-4, -2, None, None, "n/a", "run-3", "2026-12-07"]


@pytest.fixture
def scored(workspace, kit_cli):
    install_template(workspace, PROBS_TEMPLATE)
    (workspace / "sweep.toml").write_text('name = "s"\nkernel = "train"\n[base]\nval_rows = 60\n[grid]\nseed = [1, 2]\n')
    assert kit_cli("sweep", "sweep.toml", "--yes").exit_code == 0
    assert kit_cli("submit", "run-1", "--yes").exit_code == 0
    assert kit_cli("submit", "run-2", "--yes").exit_code == 0
    return workspace


def test_every_command_follows_one_rule(scored, kit_cli):
    def out(*args):
        result = kit_cli(*args, "--json")
        assert result.exit_code == 0, (args, result.stderr)
        return result.stdout

    rows = _check("leaderboard", out("leaderboard"), table=True)
    assert all(isinstance(r["val_accuracy"], float) and isinstance(r["public_score"], float) for r in rows)
    assert all(r["private_score"] is None for r in rows)  # not scored yet: null, not ""
    assert [r["run"] for r in rows] == ["run-1", "run-2"] and all(isinstance(r["submission_ref"], str) for r in rows)
    _check("leaderboard", out("leaderboard", "--sort", "val_accuracy"), table=True)
    _check("leaderboard", out("leaderboard", "--group-by", "kernel"), table=True)
    status = _check("status", out("status"))
    assert status[0]["started"] and status[0]["pending"] is None
    _check("status", out("status", "run-1"))
    subs = _check("submissions", out("submissions"))
    assert {s["ref"] for s in subs} == {"1", "2"}  # refs are identifiers: text
    board = _check("board", out("board"))
    assert isinstance(board["you"], int) and all(isinstance(e["score"], float) for e in board["board"])
    _check("data", out("data", "--list"))
    _check("quota", out("quota"))
    _check("pick", out("pick", "-n", "2"))
    _check("sweep", out("sweep", "status", "s"))
    made = _check("ensemble", out("ensemble", "run-1", "run-2"))
    assert isinstance(made["val_accuracy"], float)
