"""The practice competition: its synthetic data, its files on disk, and how it scores and limits submissions."""

from __future__ import annotations

import csv
import multiprocessing
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kit.errors import KitError, SubmissionError, SubmissionLimitError, WorkspaceError
from kit.practice.competition import PracticeCompetition, init_practice
from kit.practice.data import format_answer, generate

SOLUTION = re.compile(
    r"^Let's solve this problem using Python code\.\n<llm-code>\n(?P<code>.*)\n</llm-code>\n"
    r"<llm-code-output>\n(?P<output>.*)\n</llm-code-output>\n(?P<conclusion>Thus .*\\boxed\{(?P<boxed>[^}]*)\}.*)$",
    re.S,
)


def parse(solution: str) -> dict[str, str]:
    match = SOLUTION.match(solution)
    assert match, solution
    return match.groupdict()


def run_code(code: str) -> str:
    """What the solution's code really prints: its last line's value, as a notebook would show it."""
    *lines, last = code.splitlines()
    scope: dict = {}
    exec("\n".join(lines), {}, scope)
    return repr(eval(last, {}, scope))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_submission(path: Path, predictions: dict[str, bool | str], header: str = "ID,is_correct") -> Path:
    lines = [header] + [f"{row_id},{value}" for row_id, value in predictions.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Clock:
    """A clock the test moves by hand, so the UTC day can change mid-test."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def rows():
    train, _ = generate(seed=3, n_train=5000, n_test=0)
    return train


# --------------------------------------------------------------------------------------------------- the data


def test_generate_is_deterministic_for_a_seed():
    assert generate(7, 60, 20) == generate(7, 60, 20)
    assert generate(7, 60, 20) != generate(8, 60, 20)
    train, test = generate(7, 60, 20)
    assert (len(train), len(test)) == (60, 20)


def test_about_forty_percent_of_rows_are_correct(rows):
    share = sum(r.is_correct for r in rows) / len(rows)
    assert abs(share - 0.4) < 0.03, share


def test_rows_look_like_the_real_data(rows):
    for row in rows:
        parts = parse(row.solution)
        assert row.question.endswith("?")
        float(row.answer)  # the answer column is a number spelled like "45" or "3.5"
        assert not row.answer.endswith(".0")
        assert len(parts["code"].splitlines()) >= 3
        assert len(row.question) + len(row.solution) < 1200  # ~150-300 tokens, small enough for CPU models


def test_several_problem_families_are_present(rows):
    cues = {
        "shopping": r"% off the whole purchase",
        "travel": r"miles per hour",
        "percentages": r"\d+% of them",
        "area": r"rectangular garden",
        "ages": r"years older than",
        "sharing": r"shares the rest equally",
        "units": r"kilometers on each weekday|hours and \d+ minutes",
        "fish food": r"ounces of food per day",
        "earnings": r"an hour and works",
        "schedule": r"has to leave for a party",
    }
    found = {family: sum(bool(re.search(cue, r.question)) for r in rows) for family, cue in cues.items()}
    assert all(count > 200 for count in found.values()), found


def test_correct_rows_agree_with_their_own_code(rows):
    for row in (r for r in rows if r.is_correct):
        parts = parse(row.solution)
        assert run_code(parts["code"]) == parts["output"]
        assert format_answer(float(parts["output"])) == row.answer == parts["boxed"]


def test_wrong_rows_include_easy_and_hard_mistakes(rows):
    wrong = [(r, parse(r.solution)) for r in rows if not r.is_correct]
    # easy: the given answer disagrees with the code's printed output
    answer_off = [r for r, p in wrong if format_answer(float(p["output"])) != r.answer]
    # the printed output is not what the code computes (an arithmetic slip)
    output_slip = [r for r, p in wrong if run_code(p["code"]) != p["output"]]
    # hard: code, output and answer all agree; only re-checking the steps against the question finds the mistake
    consistent = [
        r for r, p in wrong
        if run_code(p["code"]) == p["output"] and format_answer(float(p["output"])) == r.answer == p["boxed"]
    ]
    assert len(answer_off) > 0.15 * len(wrong)
    assert len(output_slip) > 0.1 * len(wrong)
    assert len(consistent) > 0.3 * len(wrong)


def test_a_wrong_step_row_is_self_consistent():
    """The travel problem with `trip_length + miles_driven`: the code runs and prints what it computes."""
    train, _ = generate(seed=0, n_train=40, n_test=0)
    for row in train:
        parts = parse(row.solution)
        if "miles_left = trip_length + miles_driven" in parts["code"]:
            assert not row.is_correct
            assert run_code(parts["code"]) == parts["output"]
            assert row.answer == parts["boxed"] == format_answer(float(parts["output"]))
            break
    else:
        pytest.fail("seed 0 no longer has the wrong-step travel row this test reads; pick another example")


# --------------------------------------------------------------------------------------------------- on disk


def test_init_writes_a_kaggle_shaped_competition(tmp_path):
    comp = init_practice(tmp_path / "comp", seed=5, n_train=30, n_test=10, public_fraction=0.3, daily_limit=4)
    data = tmp_path / "comp" / "data"
    train, test = read_csv(data / "train.csv"), read_csv(data / "test.csv")
    assert list(train[0]) == ["question", "answer", "solution", "is_correct"]
    assert list(test[0]) == ["ID", "question", "answer", "solution"]  # no labels in the test set
    assert [r["ID"] for r in test] == [str(i) for i in range(10)]
    expected_train, expected_test = generate(5, 30, 10)
    assert [r["solution"] for r in train] == [e.solution for e in expected_train]  # multi-line text survives
    assert {r["is_correct"] for r in train} <= {"True", "False"}
    sample = read_csv(data / "sample_submission.csv")
    assert list(sample[0]) == ["ID", "is_correct"] and {r["is_correct"] for r in sample} == {"True"}
    hidden = read_csv(tmp_path / "comp" / "hidden" / "solution.csv")
    assert [r["is_correct"] == "True" for r in hidden] == [e.is_correct for e in expected_test]
    assert sum(r["Usage"] == "Public" for r in hidden) == comp.public_rows == 3
    assert (comp.slug, comp.daily_limit, comp.closed, comp.data_dir) == ("practice-math", 4, False, data)
    init_practice(tmp_path / "again", seed=5, n_train=30, n_test=10, public_fraction=0.3)
    assert read_csv(tmp_path / "again" / "hidden" / "solution.csv") == hidden  # the split is fixed by the seed


def test_init_refuses_to_overwrite_without_force(tmp_path):
    comp = init_practice(tmp_path, n_train=5, n_test=4)
    comp.submit(tmp_path / "data" / "sample_submission.csv", "all true")
    with pytest.raises(WorkspaceError) as err:
        init_practice(tmp_path, n_train=5, n_test=4)
    assert "--force" in err.value.hint
    assert len(PracticeCompetition(tmp_path).submissions()) == 1
    init_practice(tmp_path, n_train=5, n_test=4, force=True)
    assert PracticeCompetition(tmp_path).submissions() == []


def test_loading_a_missing_competition_names_the_fix(tmp_path):
    with pytest.raises(KitError) as err:
        PracticeCompetition(tmp_path / "nowhere")
    assert err.value.hint == "kit practice init"


# --------------------------------------------------------------------------------------------------- scoring


def test_public_score_is_the_accuracy_on_the_public_rows(tmp_path):
    comp = init_practice(tmp_path, seed=11, n_train=5, n_test=12, public_fraction=0.5)
    hidden = read_csv(tmp_path / "hidden" / "solution.csv")
    truth = {r["ID"]: r["is_correct"] == "True" for r in hidden}
    # right on IDs 0-6, wrong on 7-11
    predictions = {i: (truth[i] if int(i) < 7 else not truth[i]) for i in truth}
    public = [r["ID"] for r in hidden if r["Usage"] == "Public"]
    private = [r["ID"] for r in hidden if r["Usage"] == "Private"]
    expected_public = sum(int(i) < 7 for i in public) / len(public)
    expected_private = sum(int(i) < 7 for i in private) / len(private)

    result = comp.submit(write_submission(tmp_path / "sub.csv", predictions), "7 of 12 right")

    assert result.status == "complete"
    assert result.public_score == pytest.approx(expected_public, abs=1e-5)
    assert result.private_score is None
    assert (result.ref, result.description, result.file_name, result.late) == ("1", "7 of 12 right", "sub.csv", False)
    assert comp.score(tmp_path / "sub.csv") == (
        pytest.approx(expected_public, abs=1e-5), pytest.approx(expected_private, abs=1e-5)
    )


def test_private_scores_are_hidden_until_close_then_revealed(tmp_path):
    comp = init_practice(tmp_path, seed=2, n_train=5, n_test=40)
    hidden = read_csv(tmp_path / "hidden" / "solution.csv")
    all_true = write_submission(tmp_path / "t.csv", {r["ID"]: "True" for r in hidden})
    all_false = write_submission(tmp_path / "f.csv", {r["ID"]: "false" for r in hidden})  # lower case is accepted
    comp.submit(all_true, "all true")
    comp.submit(all_false, "all false")
    assert [s.private_score for s in comp.submissions()] == [None, None]

    PracticeCompetition(tmp_path).close()  # another process closing it is seen here too

    private = [r for r in hidden if r["Usage"] == "Private"]
    share_true = sum(r["is_correct"] == "True" for r in private) / len(private)
    newest, oldest = comp.submissions()
    assert (newest.description, oldest.description) == ("all false", "all true")
    assert oldest.private_score == pytest.approx(share_true, abs=1e-5)
    assert newest.private_score == pytest.approx(1 - share_true, abs=1e-5)
    assert comp.closed

    late = comp.submit(all_true, "after the deadline")
    assert late.late and late.private_score == oldest.private_score and late.public_score == oldest.public_score
    assert [s.late for s in comp.submissions()] == [True, False, False]


@pytest.mark.parametrize(
    "content, problem",
    [
        ("ID,prediction\n0,True\n", "no column 'is_correct'"),
        ("ID,is_correct\n0,True\n", "missing"),
        ("ID,is_correct\n0,maybe\n", "is not True or False"),
        ("ID,is_correct\n0,True\n0,True\n", "appears twice"),
        ("ID,is_correct\n99,True\n", "unknown ID '99'"),
    ],
)
def test_unscorable_files_are_refused_and_not_counted(tmp_path, content, problem):
    comp = init_practice(tmp_path, n_train=5, n_test=3, daily_limit=2)
    bad = tmp_path / "bad.csv"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(SubmissionError) as err:
        comp.submit(bad, "broken")
    assert problem in str(err.value) and err.value.hint
    assert comp.remaining_today() == 2 and comp.submissions() == []


def test_daily_limit_is_per_utc_day(tmp_path):
    clock = Clock(datetime(2026, 3, 1, 23, 58, tzinfo=timezone.utc))
    init_practice(tmp_path, n_train=5, n_test=4, daily_limit=2)
    comp = PracticeCompetition(tmp_path, clock=clock)
    sample = tmp_path / "data" / "sample_submission.csv"
    comp.submit(sample, "one")
    comp.submit(sample, "two")
    assert comp.remaining_today() == 0
    with pytest.raises(SubmissionLimitError):
        comp.submit(sample, "three")
    assert len(comp.submissions()) == 2

    clock.now += timedelta(minutes=3)  # 00:01 UTC: a new day
    assert comp.remaining_today() == 2
    assert comp.submit(sample, "three").ref == "3"
    assert comp.remaining_today() == 1


# --------------------------------------------------------------------------------------------------- concurrency


def _submit_many(directory: str, sample: str, who: int, count: int) -> None:
    comp = PracticeCompetition(Path(directory))
    for n in range(count):
        comp.submit(Path(sample), f"process {who} submission {n}")


def test_concurrent_processes_lose_no_submission(tmp_path):
    init_practice(tmp_path, n_train=5, n_test=50, daily_limit=100)
    sample = str(tmp_path / "data" / "sample_submission.csv")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_submit_many, args=(str(tmp_path), sample, who, 5)) for who in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]

    submissions = PracticeCompetition(tmp_path).submissions()
    assert sorted(int(s.ref) for s in submissions) == list(range(1, 21))
    assert {s.description for s in submissions} == {f"process {w} submission {n}" for w in range(4) for n in range(5)}


def test_concurrent_threads_cannot_overrun_the_daily_limit(tmp_path):
    comp = init_practice(tmp_path, n_train=5, n_test=50, daily_limit=5)
    sample = tmp_path / "data" / "sample_submission.csv"

    def attempt(n: int) -> str:
        try:
            return comp.submit(sample, f"thread {n}").ref
        except SubmissionLimitError:
            return "refused"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(12)))
    assert sorted(o for o in outcomes if o != "refused") == ["1", "2", "3", "4", "5"]
    assert outcomes.count("refused") == 7
    assert len(comp.submissions()) == 5
