"""Damaged and unknown records, damaged person-edited files, and spellings the scorer may read differently (issue 14,
classes 4, 5 and 9). The real CLI and kaggle client against the stand-in; assertions on the requests on the wire and
on the files kit wrote."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_kit
from tests.kaggle_standin.fixtures import init_kaggle_workspace

SUBMISSION = b"ID,is_correct\n1,True\n2,False\n"


@pytest.fixture
def ws(kaggle_env, standin, tmp_path, monkeypatch) -> Path:
    """A Kaggle workspace with two complete, pulled runs (run-1, run-2)."""
    root = init_kaggle_workspace(tmp_path, monkeypatch)
    standin.default_walk = ["COMPLETE"]
    standin.default_files = {"submission.csv": SUBMISSION, "metrics.json": b'{"val_accuracy": 0.8, "val_rows": 100}'}
    for run in ("run-1", "run-2"):
        assert run_kit("push-kernel", "train").stdout.strip() == run
        pulled = run_kit("pull", run)
        assert pulled.exit_code == 0, pulled.stderr
    return root


def _one_line_error(result) -> tuple[str, str]:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), result.stderr
    return lines[0], lines[1]


def _record(root: Path, run: str) -> Path:
    return root / "submissions" / run / "run.json"


# -- class 4: one bad record affects only its own run -------------------------------------------------------------


def test_a_truncated_record_does_not_stop_another_runs_submit(ws, standin):
    text = _record(ws, "run-1").read_text()
    _record(ws, "run-1").write_text(text[: len(text) // 2])
    result = run_kit("submit", "run-2", "--yes", "-m", "second")
    assert result.exit_code == 0, result.stderr
    assert len(standin.calls("CreateSubmission")) == 1
    record = json.loads(_record(ws, "run-2").read_text())
    assert [s["ref"] for s in record["submissions"]] == [str(standin.submissions[0].ref)]
    rows = {r["run"]: r for r in _leaderboard(ws)}
    assert rows["run-2"]["submission_ref"] == str(standin.submissions[0].ref)
    assert _record(ws, "run-1").read_text() == text[: len(text) // 2]  # kit never rewrites a damaged record

    status = run_kit("status")
    assert status.exit_code == 0, status.stderr
    line = next(l for l in status.stdout.splitlines() if l.startswith("run-1"))
    assert "damaged" in line and str(_record(ws, "run-1")) in line and "not valid JSON" in line
    assert any(l.startswith("run-2") and "complete" in l for l in status.stdout.splitlines())
    assert f"git checkout -- {_record(ws, 'run-1')}" in status.stderr
    shown = run_kit("status", "run-1")
    error, hint = _one_line_error(shown)
    assert str(_record(ws, "run-1")) in error and "git checkout" in hint


def test_a_damaged_record_does_not_stop_another_runs_pull(ws, standin):
    _record(ws, "run-1").write_text('{"id": "run-1", "kernel": "train", "backend": "kaggle", "config": {}, "status": "done?"}')
    (ws / "submissions" / "run-2" / "submission.csv").unlink()
    pulled = run_kit("pull", "run-2", "--all")
    assert pulled.exit_code == 0, pulled.stderr
    assert (ws / "submissions" / "run-2" / "submission.csv").read_bytes() == SUBMISSION
    error, hint = _one_line_error(run_kit("pull", "run-1"))
    assert "status is 'done?'" in error and "other runs are not affected" in hint


def test_config_null_is_named_not_a_traceback_in_scores(ws, standin):
    assert run_kit("submit", "run-2", "--yes").exit_code == 0
    data = json.loads(_record(ws, "run-1").read_text())
    data["config"] = None
    _record(ws, "run-1").write_text(json.dumps(data))
    standin.submissions[0].status, standin.submissions[0].public_score = "COMPLETE", "0.75"
    result = run_kit("scores")
    assert result.exit_code == 0, result.stderr
    assert {r["run"]: r["public_score"] for r in _leaderboard(ws)}["run-2"] == "0.75"  # the other runs go on
    assert "Traceback" not in result.stderr
    assert f"warning: run-1 left out: {_record(ws, 'run-1')}: config is null, expected an object" in result.stderr
    listed = json.loads(run_kit("status", "--json").stdout)
    assert [(r["id"], r["status"]) for r in listed] == [("run-2", "complete"), ("run-1", "damaged")]
    assert "git checkout" in listed[1]["fix"]


def test_a_kernel_the_server_does_not_know_only_marks_its_own_run(kaggle_env, standin, tmp_path, monkeypatch):
    root = init_kaggle_workspace(tmp_path, monkeypatch)
    standin.default_walk = ["RUNNING", "COMPLETE"]
    assert [run_kit("push-kernel", "train").stdout.strip() for _ in range(2)] == ["run-1", "run-2"]
    gone = json.loads(_record(root, "run-1").read_text())["remote"]
    del standin.kernels[gone]  # deleted on kaggle.com, say
    result = run_kit("status")
    assert result.exit_code == 0, result.stderr
    lines = {l.split()[0]: l for l in result.stdout.splitlines()}
    assert "cannot refresh" in lines["run-1"] and "queued" in lines["run-1"]
    assert "running" in lines["run-2"]
    assert run_kit("status", "run-1").exit_code == 1


# -- class 5: damaged person-edited files ---------------------------------------------------------------------------


def _leaderboard(root: Path) -> list[dict[str, str]]:
    import csv

    with open(root / "leaderboard.csv", newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _refused_and_unchanged(root: Path, standin, says: str, line: int | None = None) -> None:
    path = root / "leaderboard.csv"
    before = path.read_bytes() if path.is_file() else None
    for args in (("scores",), ("submit", "run-1", "--yes"), ("push-kernel", "train")):
        result = run_kit(*args)
        error, hint = _one_line_error(result)
        assert str(path) in error and says in error, error
        if line is not None:
            assert error.startswith(f"error: {path}:{line}: "), error
        assert (path.read_bytes() if path.is_file() else None) == before
    assert not standin.calls("CreateSubmission")  # refused before anything was spent
    assert len(standin.calls("SaveKernel")) == 2 and not (root / "submissions" / "run-3").exists()


def test_an_unbalanced_quote_is_refused_not_rows_swallowed(ws, standin):
    path = ws / "leaderboard.csv"
    lines = path.read_text().splitlines()
    lines[1] = lines[1] + ',"my note'  # run-1's row; the quote is never closed
    header = lines[0] + ",note"
    path.write_text("\n".join([header, *lines[1:]]) + "\n")
    _refused_and_unchanged(ws, standin, "quote", line=2)


def test_a_quote_closed_rows_later_is_refused_too(ws, standin):
    path = ws / "leaderboard.csv"
    lines = path.read_text().splitlines()
    header = lines[0] + ",note"
    path.write_text("\n".join([header, lines[1] + ',"starts here', lines[2] + ',ends here"']) + "\n")
    _refused_and_unchanged(ws, standin, "never closed", line=2)


def test_a_duplicated_column_name_is_refused_not_a_value_lost(ws, standin):
    path = ws / "leaderboard.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",note,note", *(l + ",a,b" for l in lines[1:])]) + "\n")
    _refused_and_unchanged(ws, standin, "column 'note' appears twice", line=1)


@pytest.mark.parametrize("damage, says", [
    (lambda p: p.write_bytes(p.read_text().encode("utf-16")), "UTF-16"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "NUL byte"),
    (lambda p: p.write_bytes(p.read_bytes().replace(b"complete", b"compl\xe9te", 1)), "is not UTF-8"),
    (lambda p: (p.unlink(), p.mkdir()), "is a folder"),
])
def test_unreadable_leaderboards_are_one_line(ws, standin, damage, says):
    damage(ws / "leaderboard.csv")
    _refused_and_unchanged(ws, standin, says)
    assert "leaderboard" in run_kit("leaderboard").stderr


def test_rewrites_keep_mode_bom_line_ends_and_every_cell_byte_for_byte(ws, standin):
    path = ws / "leaderboard.csv"
    lines = path.read_text().splitlines()
    cells = ['"a, b"', '"say ""hi"""', "  spaced  ", "ünï ☃", "", "'quoted'", "1e-4"]
    header = lines[0] + ",note"
    body = [l + "," + cells[i % len(cells)] for i, l in enumerate(lines[1:])]
    body.append("mine," + ",".join([""] * (header.count(",") - 1)) + ",a row kit does not know")
    for i, cell in enumerate(cells):  # every kind of cell, in a column of its own
        header += f",c{i}"
        body = [b + "," + cell for b in body]
    path.write_bytes(("\ufeff" + "\r\n".join([header, *body]) + "\r\n").encode("utf-8"))
    path.chmod(0o664)
    before = _leaderboard(ws)
    assert run_kit("submit", "run-1", "--yes").exit_code == 0  # rewrites run-1's row
    after = _leaderboard(ws)
    raw = path.read_bytes()
    assert raw.startswith("\ufeff".encode()) and raw.count(b"\r\n") == len(body) + 1 and b"\n" not in raw.replace(b"\r\n", b"")
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
    assert [r["run"] for r in after] == ["run-1", "run-2", "mine"]
    for old, new in zip(before, after):
        person = {k: v for k, v in old.items() if k == "note" or k.startswith("c")}
        assert {k: new[k] for k in person} == person
    assert after[0]["submission_ref"] and after[2]["note"] == "a row kit does not know"


def test_a_killed_writer_leaves_no_temp_file_behind(ws, standin):
    path = ws / "leaderboard.csv"
    code = (
        "import os, signal, kit.fileio as f\n"
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"  # killed with the temp file written in full
        f"f.atomic_write_text({str(path)!r}, 'x' * 100000)\n"
    )
    before = path.read_bytes()
    killed = subprocess.run([sys.executable, "-c", code])
    assert killed.returncode == -signal.SIGKILL
    left = list(ws.glob(".leaderboard.csv.*.tmp"))
    assert len(left) == 1 and left[0].stat().st_size == 100000 and path.read_bytes() == before
    assert run_kit("scores").exit_code == 0
    assert not list(ws.glob(".leaderboard.csv.*.tmp"))


def test_a_live_writers_temp_file_is_left_alone(tmp_path):
    from kit.fileio import atomic_write_text

    target = tmp_path / "leaderboard.csv"
    live = tmp_path / f".leaderboard.csv.{os.getppid()}.0123abcd.tmp"  # our parent: alive for the whole test
    live.write_text("partial")
    atomic_write_text(target, "run\n")
    assert live.exists() and target.read_text() == "run\n"


def test_a_new_file_gets_the_umask_mode_not_0600(tmp_path):
    from kit.fileio import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "new.csv", "run\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o644


# -- class 9: spellings the scorer may read differently -----------------------------------------------------------


@pytest.mark.parametrize("body", [
    b"ID,is_correct\n1,true\n2,false\n",
    b"ID,is_correct\n1,1\n2,0\n",
    b"ID,is_correct\n1,TRUE\n2,False\n\n\n",
    b"\xef\xbb\xbfID,is_correct\r\n1,True \r\n\r\n2, false\r\n",
])
def test_spellings_are_normalized_to_the_samples_and_kit_says_so(ws, standin, body):
    run_file = ws / "submissions" / "run-1" / "submission.csv"
    run_file.write_bytes(body)
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "normalized for upload:" in result.stderr and f"{run_file} is unchanged" in result.stderr
    uploaded, = standin.submissions
    assert uploaded.content == b"ID,is_correct\n1,True\n2,False\n"  # the sample's spelling, no blank line
    assert run_file.read_bytes() == body  # the run's own file is untouched
    sub, = json.loads(_record(ws, "run-1").read_text())["submissions"]
    import hashlib

    assert sub["file_sha256"] == hashlib.sha256(uploaded.content).hexdigest()


def test_a_file_already_in_the_samples_spelling_is_uploaded_as_it_is(ws, standin):
    result = run_kit("submit", "run-1", "--yes")
    assert result.exit_code == 0 and "normalized" not in result.stderr
    assert standin.submissions[0].content == SUBMISSION


def test_the_samples_own_spelling_wins(ws, standin):
    standin.competition_files["sample_submission.csv"] = b"ID,is_correct\n1,0\n2,0\n"
    (ws / "submissions" / "run-1" / "submission.csv").write_bytes(b"ID,is_correct\n1,True\n2,false\n")
    assert run_kit("submit", "run-1", "--yes").exit_code == 0
    assert standin.submissions[0].content == b"ID,is_correct\n1,1\n2,0\n"


@pytest.mark.parametrize("body, says", [
    (b"ID,is_correct\n1,yes\n2,False\n", "bad value 'yes'"),
    (b"ID,is_correct\n1,0.7\n2,False\n", "bad value '0.7'"),
    (b"ID,is_correct\n1,True\n", "1 IDs missing"),
])
def test_what_cannot_be_normalized_is_still_refused(ws, standin, body, says):
    (ws / "submissions" / "run-1" / "submission.csv").write_bytes(body)
    error, hint = _one_line_error(run_kit("submit", "run-1", "--yes"))
    assert says in error and "nothing was submitted" in hint
    assert not standin.calls("CreateSubmission") and not standin.submissions
