"""A practice competition of generated answers: math word problems whose answer is an exact integer, scored by
accuracy, as AIMO is. `kit practice init --task answer` writes it; with `--server` it is an inference-server
competition: its files ship a `kaggle_evaluation` package (kit/practice/gateway.py, kit's stand-in) whose gateway
calls a notebook's `predict` one row at a time on the rerun, with a deadline per call and a startup limit.

Files: data/train.csv (id, problem, solution, answer), data/test.csv (id, problem: a few visible rows when it is a
code or server competition), data/sample_submission.csv (id, answer), data/kaggle_evaluation/ (server), and
hidden/test.csv and hidden/solution.csv (id, answer, Usage).
"""

from __future__ import annotations

import csv
import io
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from kit.errors import SubmissionError
from kit.fileio import atomic_write_text
from kit.practice.data import solved_problems

TRAIN_COLUMNS = ("id", "problem", "solution", "answer")
TEST_COLUMNS = ("id", "problem")
SUBMISSION_COLUMNS = ("id", "answer")
LARGEST_ANSWER = 99999  # AIMO 3's range: 0-99999
GATEWAY_SOURCE = Path(__file__).with_name("gateway.py")
GATEWAY_FILE = "submission.parquet"  # what the gateway writes (the real base gateway's default name)
DEFAULT_CALL_SECONDS = 30 * 60  # AIMO 2's deadline per call
DEFAULT_STARTUP_SECONDS = 15 * 60  # the real relay's startup limit


@dataclass(frozen=True)
class ServerRules:
    """What the practice gateway enforces: the deadline of a call after the first, and the startup limit."""

    call_seconds: float = DEFAULT_CALL_SECONDS
    startup_seconds: float = DEFAULT_STARTUP_SECONDS

    def to_json(self) -> dict:
        return {"module": None, "call_seconds": self.call_seconds, "startup_seconds": self.startup_seconds, "file": GATEWAY_FILE}


def gateway_names(slug: str) -> tuple[str, str]:
    """(the server module in kaggle_evaluation/, its class) for a competition slug: practice-math ->
    (practice_math_inference_server, PracticeMathInferenceServer), as Kaggle names them (aimo_3 -> AIMO3...)."""
    words = [w for w in slug.replace("_", "-").split("-") if w]
    return "_".join(words) + "_inference_server", "".join(w.capitalize() for w in words) + "InferenceServer"


def _csv_text(header: tuple[str, ...], rows: list[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_answer_data(directory: Path, slug: str, seed: int, n_train: int, n_test: int, public_ids: set[int],
                      visible_rows: int | None, server: ServerRules | None) -> dict:
    """The competition's files (data/ and hidden/); returns what competition.json records of the task."""
    problems = solved_problems(seed, n_train + n_test, LARGEST_ANSWER)
    train, test = problems[:n_train], problems[n_train:]
    data_dir, hidden_dir = directory / "data", directory / "hidden"
    atomic_write_text(data_dir / "train.csv", _csv_text(TRAIN_COLUMNS, [(i, p.problem, p.solution, p.answer) for i, p in enumerate(train)]))
    test_rows = [(i, p.problem) for i, p in enumerate(test)]
    visible = test_rows if visible_rows is None else test_rows[:visible_rows]
    atomic_write_text(data_dir / "test.csv", _csv_text(TEST_COLUMNS, visible))
    atomic_write_text(data_dir / "sample_submission.csv", _csv_text(SUBMISSION_COLUMNS, [(row[0], 0) for row in visible]))
    atomic_write_text(hidden_dir / "test.csv", _csv_text(TEST_COLUMNS, test_rows))
    atomic_write_text(hidden_dir / "sample_submission.csv", _csv_text(SUBMISSION_COLUMNS, [(row[0], 0) for row in test_rows]))
    atomic_write_text(hidden_dir / "solution.csv", _csv_text(
        ("id", "answer", "Usage"), [(i, p.answer, "Public" if i in public_ids else "Private") for i, p in enumerate(test)]))
    task = {"task": "answer", "server": None}
    if server is not None:
        module, cls = gateway_names(slug)
        package = data_dir / "kaggle_evaluation"
        if package.exists():
            shutil.rmtree(package)
        package.mkdir(parents=True)
        atomic_write_text(package / "__init__.py", '"""kit\'s practice stand-in for Kaggle\'s kaggle_evaluation package '
                                                    '(see practice_gateway.py)."""\n')
        shutil.copyfile(GATEWAY_SOURCE, package / "practice_gateway.py")
        atomic_write_text(package / f"{module}.py", _server_module(slug, cls, server))
        task["server"] = {**server.to_json(), "module": module}
    return task


def _server_module(slug: str, cls: str, rules: ServerRules) -> str:
    return f'''"""The inference server of the practice competition {slug} (kit's stand-in for Kaggle's kaggle_evaluation).

    server = {cls}(predict)
    if os.getenv("KAGGLE_IS_COMPETITION_RERUN"): server.serve()
    else: server.run_local_gateway(("/kaggle/input/competitions/{slug}/test.csv",))
"""

import kaggle_evaluation.practice_gateway as practice_gateway

DEADLINE_SECONDS = {rules.call_seconds!r}  # each call after the first
STARTUP_LIMIT_SECONDS = {rules.startup_seconds!r}


class {cls}(practice_gateway.InferenceServer):
    startup_limit_seconds = STARTUP_LIMIT_SECONDS

    def _get_gateway_for_test(self, data_paths=None):
        return practice_gateway.AnswerGateway(data_paths, deadline_seconds=DEADLINE_SECONDS, startup_limit_seconds=STARTUP_LIMIT_SECONDS)
'''


def read_solution(path: Path) -> dict[str, tuple[int, bool]]:
    """hidden/solution.csv: id -> (answer, public row?)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["id"]: (int(row["answer"]), row["Usage"] == "Public") for row in csv.DictReader(fh)}


def read_answers(path: Path) -> dict[str, int]:
    """A submission of answers: the gateway's Parquet file (read with polars) or a CSV, id -> integer answer;
    SubmissionError for a file that is not one."""
    import polars as pl

    path = Path(path)
    try:
        frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema_length=0)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise SubmissionError(f"cannot read {path.name}: {exc}", hint="submit the file the gateway wrote (id, answer)") from None
    missing = [c for c in SUBMISSION_COLUMNS if c not in frame.columns]
    if missing:
        raise SubmissionError(f"{path.name}: no column {missing[0]!r} (columns: {', '.join(frame.columns)})", hint="the columns are id, answer")
    answers: dict[str, int] = {}
    for row_id, value in zip(frame["id"].cast(pl.Utf8).to_list(), frame["answer"].cast(pl.Utf8).to_list()):
        text = (value or "").strip()
        if not text.lstrip("-").isdigit():
            raise SubmissionError(f"{path.name}: answer {value!r} of id {row_id} is not an integer", hint="answer every row with an integer")
        if row_id in answers:
            raise SubmissionError(f"{path.name}: id {row_id} appears twice", hint="answer each id once")
        answers[row_id] = int(text)
    return answers


def score_answers(path: Path, solution: dict[str, tuple[int, bool]]) -> tuple[float, float]:
    """(public, private) accuracy of a submission of answers against the hidden solution."""
    answers = read_answers(path)
    absent = [i for i in solution if i not in answers]
    if absent or len(answers) != len(solution):
        raise SubmissionError(f"{Path(path).name}: {len(answers)} answers for {len(solution)} test ids (e.g. {absent[:1] or list(answers)[:1]})",
                              hint="answer every row of the test set once")
    right = {True: 0, False: 0}
    count = {True: 0, False: 0}
    for row_id, (truth, public) in solution.items():
        right[public] += answers[row_id] == truth
        count[public] += 1
    return round(right[True] / count[True], 5), round(right[False] / max(count[False], 1), 5)


def public_split(seed: int, n_test: int, public_fraction: float) -> set[int]:
    """The public rows, fixed by the seed (as the binary practice competition splits)."""
    public_rows = max(1, min(n_test - 1, round(n_test * public_fraction)))
    return set(random.Random(f"{seed}-split").sample(range(n_test), public_rows))


PROMPT = "Problem: {problem}\nSolve it step by step; put the final answer in \\boxed{{}}.\nSolution:\n"


def task_table(server: dict | None, rerun_seconds: float) -> dict:
    """The [task] of a practice answer competition, exactly as its files and rules are (nothing guessed): the prompt
    over `problem`, the worked `solution` taught as the completion, answers read from \\boxed{}, and for a server
    competition its gateway's module, its deadline per call and the rerun's limit."""
    table: dict = {"preset": "answer", "id": "id", "prompt": PROMPT,
                   "target": {"kind": "answer", "column": "answer", "answer": "integer", "range": [0, LARGEST_ANSWER],
                              "extract": "boxed", "completion": "solution"},
                   "submission": {"columns": list(SUBMISSION_COLUMNS)}, "metric": {"name": "accuracy"}}
    if server:
        table["server"] = {"module": server["module"], "call_seconds": float(server["call_seconds"]),
                           "run_seconds": float(rerun_seconds), "file": server["file"]}
    return table
