"""The competition's own records (kit submissions, kit board, kit data) and the verbs around them (logs --tail,
--json, exit codes), on both backends: the practice competition, and the real kaggle client against the stand-in.
Each test checks exit codes, what goes to stdout (data) and to stderr (progress, hints), and requests on the wire."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from kit.practice.competition import PracticeCompetition
from tests.conftest import run_kit
from tests.kaggle_standin.fixtures import init_kaggle_workspace
from tests.kaggle_standin.server import Submission

SUBMISSION = b"ID,is_correct\n1,True\n2,False\n"


def practice(root: Path) -> PracticeCompetition:
    return PracticeCompetition(root / ".kit" / "practice" / "practice-math")


def public_true_share(root: Path) -> float:
    with open(root / ".kit" / "practice" / "practice-math" / "hidden" / "solution.csv", newline="") as fh:
        public = [r["is_correct"] == "True" for r in csv.DictReader(fh) if r["Usage"] == "Public"]
    return sum(public) / len(public)


def all_false_file(root: Path) -> Path:
    """A submission made outside kit: every test row False."""
    path = root / "outside.csv"
    ids = [r["ID"] for r in csv.DictReader(open(root / ".kit" / "practice" / "practice-math" / "data" / "test.csv", newline=""))]
    path.write_text("ID,is_correct\n" + "".join(f"{i},False\n" for i in ids))
    return path


# -- local backend: the practice competition ------------------------------------------------------------------


def test_board_local_shows_the_hosts_baselines_then_you(workspace):
    empty = run_kit("board", "--json")
    assert empty.exit_code == 0, empty.stderr
    board = json.loads(empty.stdout)
    share = public_true_share(workspace)
    scores = {e["team"]: e["score"] for e in board["board"]}
    assert scores["baseline: all True"] == pytest.approx(share, abs=1e-5)
    assert scores["baseline: all False"] == pytest.approx(1 - share, abs=1e-5)
    assert board["you"] is None

    sub = practice(workspace).submit(all_false_file(workspace), "by hand")
    shown = run_kit("board")
    assert shown.exit_code == 0, shown.stderr
    assert "<- you" in shown.stdout and "rank" in shown.stdout.splitlines()[0]
    data = json.loads(run_kit("board", "--json").stdout)
    you = next(e for e in data["board"] if e["you"])
    assert you["score"] == pytest.approx(sub.public_score) and data["you"] == you["rank"]
    assert [e["rank"] for e in data["board"]] == [1, 2, 3]
    assert f"you: rank {you['rank']} of 3" in shown.stderr  # the hint is on stderr, not in the table


def test_submissions_local_include_ones_made_outside_kit(workspace):
    none = run_kit("submissions")
    assert none.exit_code == 0 and none.stdout == "" and "no submissions" in none.stderr
    sub = practice(workspace).submit(all_false_file(workspace), "by hand")
    listed = run_kit("submissions")
    assert listed.exit_code == 0, listed.stderr
    assert "by hand" in listed.stdout and "1 of 1 submissions were not made by kit" in listed.stderr
    rows = json.loads(run_kit("submissions", "--json").stdout)
    assert rows == [{"ref": sub.ref, "run": None, "date": sub.date, "status": "complete", "public_score": sub.public_score,
                     "private_score": None, "description": "by hand", "error": None}]  # blanks are null (--json's rule)


def test_data_local_downloads_into_an_ignored_folder_once(workspace):
    first = run_kit("data")
    assert first.exit_code == 0, first.stderr
    dest = workspace / "data" / "practice-math"
    source = workspace / ".kit" / "practice" / "practice-math" / "data"
    assert first.stdout.split() == [str(dest / n) for n in ("sample_submission.csv", "test.csv", "train.csv")]
    for name in ("sample_submission.csv", "test.csv", "train.csv"):
        assert (dest / name).read_bytes() == (source / name).read_bytes()
    assert "data/" in (workspace / ".gitignore").read_text().splitlines()
    assert first.stderr.strip().splitlines()[-1].startswith("3 files downloaded")
    assert not list(dest.glob("*.part"))

    again = run_kit("data")
    assert again.exit_code == 0 and again.stderr.strip().startswith("0 files downloaded") and "3 already there" in again.stderr

    listing = json.loads(run_kit("data", "--list", "--json").stdout)
    assert {f["name"]: f["size"] for f in listing} == {n: (source / n).stat().st_size for n in ("sample_submission.csv", "test.csv", "train.csv")}

    bad = run_kit("data", "-f", "nope.csv")
    assert bad.exit_code == 1 and bad.stdout == ""
    assert bad.stderr.splitlines() == ["error: practice-math has no data file 'nope.csv'", "hint: kit data --list shows its files"]


def test_logs_tail_prints_the_last_lines(workspace):
    from kit.runs import store
    from kit.workspace.layout import load

    ws = load(workspace)
    record = store.allocate(ws, "train", "local", {})
    session = workspace / ".kit" / "local" / record.id
    session.mkdir(parents=True)
    (session / "log.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    (session / "state.json").write_text('{"status": "complete"}')
    record.remote = str(session)
    store.save(ws, record)

    tail = run_kit("logs", record.id, "--tail", "3")
    assert tail.exit_code == 0 and tail.stdout == "line 8\nline 9\nline 10\n"
    assert run_kit("logs", record.id, "-n", "0").stdout == ""
    assert run_kit("logs", record.id, "--tail", "50").stdout.count("\n") == 10
    assert run_kit("logs", record.id, "--tail", "-1").exit_code == 2  # bad usage


def test_tail_start_without_a_final_newline():
    from kit.cli import _tail_start

    text = "a\nb\nc"
    assert text[_tail_start(text, 2):] == "b\nc"
    assert text[_tail_start(text, 5):] == text
    assert _tail_start("", 3) == 0


def test_help_documents_exit_codes_and_streams():
    result = run_kit("--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "Exit codes: 0 done; 1 an error" in text and "2 bad usage" in text and "130 interrupted" in text
    assert "progress and hints to stderr" in text
    assert "board" in result.stdout and "submissions" in result.stdout and "data" in result.stdout
    unknown = run_kit("board", "--nope")
    assert unknown.exit_code == 2 and unknown.stdout == ""


# -- Kaggle backend: the real client against the stand-in -----------------------------------------------------


@pytest.fixture
def kaggle_workspace(kaggle_env, standin, tmp_path, monkeypatch) -> Path:
    root = init_kaggle_workspace(tmp_path, monkeypatch)
    standin.default_files = {"submission.csv": SUBMISSION, "metrics.json": b'{"val_accuracy": 0.8}'}
    return root


def test_submissions_kaggle_lists_kits_and_others(kaggle_workspace, standin):
    assert run_kit("push-kernel", "train").exit_code == 0
    for _ in range(3):
        run_kit("status", "run-1")
    assert run_kit("pull", "run-1").exit_code == 0
    assert run_kit("submit", "run-1", "--yes", "-m", "from kit").exit_code == 0
    standin.submissions.append(Submission(41000099, "mine.csv", "made on the website", b"x", "2026-10-02T10:00:00.000Z",
                                          status="COMPLETE", public_score="0.71"))
    standin.requests.clear()
    result = run_kit("submissions", "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    by_ref = {r["ref"]: r for r in rows}
    assert by_ref["41000001"]["run"] == "run-1" and by_ref["41000001"]["status"] == "pending"
    assert by_ref["41000099"] == {"ref": "41000099", "run": None, "date": "2026-10-02T10:00:00", "status": "complete",
                                  "public_score": 0.71, "private_score": None, "description": "made on the website", "error": None}
    call, = standin.calls("ListSubmissions")
    assert call.json["competitionName"] == "math-grader"
    table = run_kit("submissions")
    assert "made on the website" in table.stdout and "1 of 2 submissions were not made by kit" in table.stderr


def test_board_kaggle_reads_every_page_and_finds_you(kaggle_workspace, standin, monkeypatch):
    from kit.backends.kaggle import competition as kaggle_competition

    monkeypatch.setattr(kaggle_competition, "BOARD_PAGE_SIZE", 2)
    standin.board = [("alpha", "0.91"), ("beta", "0.88"), ("TestUser", "0.85"), ("gamma", "0.80"), ("delta", "")]
    result = run_kit("board", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["you"] == 3 and data["teams"] == 5
    assert [(e["rank"], e["team"], e["score"]) for e in data["board"]] == [
        (1, "alpha", 0.91), (2, "beta", 0.88), (3, "TestUser", 0.85), (4, "gamma", 0.80), (5, "delta", None)]
    calls = standin.calls("GetLeaderboard")
    assert [c.json.get("pageToken", "") for c in calls] == ["", "2", "4"]
    assert all(c.json["competitionName"] == "math-grader" and c.json["pageSize"] == 2 for c in calls)

    top = run_kit("board", "--top", "1")
    assert top.exit_code == 0
    lines = top.stdout.splitlines()
    assert "alpha" in lines[2] and "TestUser  <- you" in lines[3] and len(lines) == 4  # the top 1, then you
    assert "you: rank 3 of 5 with 0.85000" in top.stderr

    other = run_kit("board", "--team", "nobody")
    assert other.exit_code == 0 and "not among the 5 teams" in other.stderr


def test_board_kaggle_rules_not_accepted_is_one_line(kaggle_workspace, standin):
    standin.rules_accepted = False
    result = run_kit("board")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: public board of math-grader: Kaggle refused access") and "/rules" in result.stderr


def test_data_kaggle_downloads_each_file_and_unzips_large_ones(kaggle_workspace, standin):
    train = b"question,answer,solution,is_correct\n" + b"q,a,s,True\n" * 5000
    standin.competition_files = {"train.csv": train, "test.csv": b"ID,question\n1,q\n", "sample_submission.csv": SUBMISSION}
    standin.zipped_files = {"train.csv"}
    result = run_kit("data")
    assert result.exit_code == 0, result.stderr
    dest = kaggle_workspace / "data" / "math-grader"
    assert (dest / "train.csv").read_bytes() == train
    assert (dest / "test.csv").read_bytes() == b"ID,question\n1,q\n"
    assert not (dest / "train.csv.zip").exists() and not list(dest.glob("*.part"))
    assert result.stdout.split() == [str(dest / n) for n in ("sample_submission.csv", "test.csv", "train.csv")]
    assert result.stderr.strip().splitlines()[-1].startswith("3 files downloaded")
    assert sorted(c.json["fileName"] for c in standin.calls("DownloadDataFile")) == ["sample_submission.csv", "test.csv", "train.csv"]
    assert standin.calls("ListDataFiles")[0].json["competitionName"] == "math-grader"
    gets = standin.calls("GET")
    assert "Authorization" not in gets[0].headers  # the redirect to storage carries no credentials

    standin.requests.clear()
    again = run_kit("data", "--json")
    assert again.exit_code == 0
    assert standin.calls("DownloadDataFile") == []  # files already there (same size) are not fetched again
    assert all(not f["downloaded"] for f in json.loads(again.stdout))


def test_data_kaggle_retries_a_cut_download(kaggle_workspace, standin):
    standin.competition_files = {"test.csv": b"ID,question\n" + b"1,q\n" * 2000}
    standin.inject("GET", kind="cut")
    result = run_kit("data", "-f", "test.csv")
    assert result.exit_code == 0, result.stderr
    assert (kaggle_workspace / "data" / "math-grader" / "test.csv").read_bytes() == standin.competition_files["test.csv"]
    assert len(standin.calls("DownloadDataFile")) == 2


def test_json_on_quota_submit_and_pull_kaggle(kaggle_workspace, standin):
    quota = run_kit("quota", "--json")
    assert quota.exit_code == 0, quota.stderr
    assert json.loads(quota.stdout) == {"gpu_hours_used": 10.0, "gpu_hours_left": 20.0, "gpu_hours_total": 30.0,
                                        "quota_resets": "2030-01-06T00:00:00", "submissions_left_today": 5}
    assert run_kit("push-kernel", "train").exit_code == 0
    for _ in range(3):
        run_kit("status", "run-1")
    pulled = run_kit("pull", "run-1", "--json")
    assert pulled.exit_code == 0, pulled.stderr
    paths = json.loads(pulled.stdout)
    assert str(kaggle_workspace / "submissions" / "run-1" / "submission.csv") in paths
    assert pulled.stderr.strip().splitlines()[-1].startswith(f"pulled {len(paths)} files (")
    submitted = run_kit("submit", "run-1", "--yes", "--json")
    assert submitted.exit_code == 0, submitted.stderr
    data = json.loads(submitted.stdout)
    assert data["run"] == "run-1" and data["ref"] == "41000001" and data["status"] == "pending" and data["public_score"] is None
    assert data["submissions_left_today"] == 5
    assert "rows" in submitted.stderr  # the check of the file stays on stderr


def test_doctor_json_keeps_the_exit_code(kaggle_workspace, standin):
    standin.rules_accepted = False
    result = run_kit("doctor", "--json")
    assert result.exit_code == 1
    checks = json.loads(result.stdout)
    assert any(not c["ok"] and "/rules" in c["fix"] for c in checks)


def test_deps_push_reports_the_bytes_uploaded(kaggle_workspace, standin, tmp_path, monkeypatch):
    from kit import progress
    from tests.test_kaggle_cli import fake_wheel

    wheels = tmp_path / "wheels"
    fake_wheel(wheels, "kitfakea")
    fake_wheel(wheels, "kitfakeb")
    monkeypatch.setenv("KIT_PROGRESS", "1")  # draw the bar although stderr is captured
    result = run_kit("deps", "push", "--packages", "kitfakea,kitfakeb", "--find-links", str(wheels))
    assert result.exit_code == 0, result.stderr
    sent = sum(len(r.body) for r in standin.calls("PUT"))
    assert sent > 0
    assert f"uploaded {progress.human_bytes(sent)} to testuser/kit-offline-wheels" in result.stderr
    assert "upload wheels" in result.stderr  # the bar itself, drawn on stderr
    assert result.stdout.strip() == "testuser/kit-offline-wheels"  # data alone on stdout
    import sys

    client = sys.modules["kaggle.api.kaggle_api_extended"]
    assert client.TqdmBufferedReader.__name__ == "TqdmBufferedReader"  # the client is left as it was


def test_quota_local_has_no_gpu_hours_but_the_days_submissions(workspace):
    practice(workspace).submit(all_false_file(workspace), "by hand")
    plain = run_kit("quota")
    assert plain.exit_code == 0, plain.stderr
    assert plain.stdout == "submissions_left_today\t2\n" and "no GPU quota" in plain.stderr
    data = json.loads(run_kit("quota", "--json").stdout)
    assert data["submissions_left_today"] == 2 and data["gpu_hours_left"] is None


def test_sweep_json_and_its_progress_line(workspace):
    from tests.helpers import install_template
    from tests.test_sweep import TIMED_TEMPLATE, write_spec

    install_template(workspace, TIMED_TEMPLATE)
    ran = run_kit("sweep", str(write_spec(workspace, 1)), "--yes", "--concurrency", "2", "--poll", "0.05", "--json")
    assert ran.exit_code == 0, ran.stderr
    points = json.loads(ran.stdout)
    assert [p["run"] for p in points] == ["run-1", "run-2", "run-3", "run-4"] and {p["status"] for p in points} == {"complete"}
    assert points[3]["settings"] == {"learning_rate": 0.0002, "r": 16} and points[3]["val_accuracy"] == pytest.approx(0.536)
    assert "sweep lr-rank: all 4 runs ended after" in ran.stderr and "run-4    pulled" in ran.stderr
    assert json.loads(run_kit("sweep", "status", "lr-rank", "--json").stdout) == points
    assert json.loads(run_kit("sweep", "status", "--json").stdout) == [{"sweep": "lr-rank", "done": 4, "points": 4}]
    submitted = run_kit("sweep", "submit", "lr-rank", "--top", "1", "--yes", "--json")
    assert submitted.exit_code == 0, submitted.stderr
    done, = json.loads(submitted.stdout)
    assert done["run"] == "run-4" and done["status"] == "complete" and done["public_score"] is not None


def test_logs_tail_kaggle(kaggle_workspace, standin):
    standin.default_log = json.dumps([{"stream_name": "stdout", "time": i, "data": f"step {i}\n"} for i in range(1, 7)])
    assert run_kit("push-kernel", "train").exit_code == 0
    tail = run_kit("logs", "run-1", "--tail", "2")
    assert tail.exit_code == 0, tail.stderr
    assert tail.stdout == "step 5\nstep 6\n"
    assert standin.calls("ListKernelSessionOutput")
