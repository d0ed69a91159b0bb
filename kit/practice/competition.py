"""The practice competition: a Kaggle-like math-answer-verification competition on disk, for the local backend.

`init_practice` writes the competition (data/ from kit/practice/data.py, hidden/solution.csv with a fixed
public/private split, competition.json, submissions.json); `PracticeCompetition` scores submissions against it like
Kaggle does: public accuracy at once, private accuracy only after `close()`, a daily limit per UTC day that failed
submissions don't use.

With `code=True` it is a code competition, as most LLM competitions on Kaggle are: data/test.csv holds only a few
visible rows, the whole test set is in hidden/, and a submission is a kernel. The competition lays out the rerun's
Kaggle tree and starts `python -m kit.practice.rerun` on it (a process, not an import: the rerun imports this
module), which runs the kernel on the hidden rows (internet off, within the rerun time limit) and scores its file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from kit.errors import KitError, SubmissionError, SubmissionLimitError, WorkspaceError
from kit.fileio import atomic_write_csv, atomic_write_json, locked
from kit.practice.answer_competition import ServerRules, public_split, read_solution, score_answers, write_answer_data
from kit.practice.data import generate
from kit.practice.shape_competition import read_shape_solution, score_shape, shape_baseline, write_shape_data
from kit.practice.shapes import SHAPE_DEFINITIONS

TRAIN_COLUMNS = ("question", "answer", "solution", "is_correct")
TEST_COLUMNS = ("ID", "question", "answer", "solution")
SUBMISSION_COLUMNS = ("ID", "is_correct")
SOLUTION_COLUMNS = ("ID", "is_correct", "Usage")

COMPETITION_FILE = "competition.json"
SUBMISSIONS_FILE = "submissions.json"
VISIBLE_TEST_ROWS = 5  # code competitions: test rows a kernel sees before its rerun, as Kaggle shows a few
DEFAULT_RERUN_SECONDS = 9 * 3600  # Kaggle's usual code-competition limit
RERUNS = "reruns"  # code competitions: each rerun's Kaggle tree, kernel and log, by submission ref


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def init_practice(
    directory: Path,
    slug: str = "practice-math",
    seed: int = 0,
    n_train: int = 20000,
    n_test: int = 2000,
    public_fraction: float = 0.5,
    daily_limit: int = 5,
    force: bool = False,
    code: bool = False,
    rerun_seconds: int = DEFAULT_RERUN_SECONDS,
    task: str = "binary",
    server: ServerRules | None = None,
) -> PracticeCompetition:
    """Write a practice competition (data, hidden solution, empty submissions) into `directory`; with `code`, a code
    competition whose kernels are rerun on the hidden test rows within `rerun_seconds`. `task="answer"`: math word
    problems with integer answers (kit/practice/answer_competition.py); with `server`, an inference-server
    competition whose gateway calls the kernel's predict under those rules (a code competition too)."""
    directory = Path(directory)
    if (directory / COMPETITION_FILE).exists() and not force:
        raise WorkspaceError(
            f"a practice competition already exists in {directory}",
            hint="use it as it is, or pass --force to replace it (its submissions are lost)",
        )
    if n_test < 2 or n_train < 1:
        raise KitError(f"bad sizes: n_train={n_train}, n_test={n_test}", hint="use n_train >= 1 and n_test >= 2")
    if not 0 < public_fraction < 1:
        raise KitError(f"bad public_fraction {public_fraction}", hint="use a fraction between 0 and 1, e.g. 0.5")
    if daily_limit < 1:
        raise KitError(f"bad daily_limit {daily_limit}", hint="use a daily limit of at least 1")
    code = code or server is not None  # the gateway reruns the notebook: a code competition
    shutil.rmtree(directory / "data" / "kaggle_evaluation", ignore_errors=True)  # a replaced server competition's package
    if code and rerun_seconds < 1:
        raise KitError(f"bad rerun limit {rerun_seconds} s", hint="give the rerun at least 1 second, e.g. --rerun-limit 600")
    if server is not None and task != "answer":
        raise KitError(f"a practice {task} competition has no inference server", hint="kit practice init --task answer --server")
    if task == "answer":
        public_rows = max(1, min(n_test - 1, round(n_test * public_fraction)))
        shape = write_answer_data(directory, slug, seed, n_train, n_test, public_split(seed, n_test, public_fraction),
                                  VISIBLE_TEST_ROWS if code else None, server)
        return _write_records(directory, slug, seed, n_train, n_test, public_rows, public_fraction, daily_limit, code, rerun_seconds, shape)
    if task in SHAPE_DEFINITIONS:  # multiclass, topk, pairwise, ordinal (kit/practice/shapes.py)
        public_rows = max(1, min(n_test - 1, round(n_test * public_fraction)))
        shape = write_shape_data(directory, SHAPE_DEFINITIONS[task], seed, n_train, n_test, public_split(seed, n_test, public_fraction),
                                 VISIBLE_TEST_ROWS if code else None)
        return _write_records(directory, slug, seed, n_train, n_test, public_rows, public_fraction, daily_limit, code, rerun_seconds, shape)
    if task != "binary":
        raise KitError(f"no practice competition of the task {task!r}", hint=f"one of binary, {', '.join(SHAPE_DEFINITIONS)}, answer")
    train, test = generate(seed, n_train, n_test)
    data_dir, hidden_dir = directory / "data", directory / "hidden"
    atomic_write_csv(data_dir / "train.csv", TRAIN_COLUMNS, [(r.question, r.answer, r.solution, str(r.is_correct)) for r in train])
    test_rows = [(i, r.question, r.answer, r.solution) for i, r in enumerate(test)]
    # A code competition shows its kernels only a few test rows; the whole test set waits in hidden/ for the rerun.
    visible = test_rows[:VISIBLE_TEST_ROWS] if code else test_rows
    atomic_write_csv(data_dir / "test.csv", TEST_COLUMNS, visible)
    atomic_write_csv(data_dir / "sample_submission.csv", SUBMISSION_COLUMNS, [(row[0], "True") for row in visible])
    if code:
        atomic_write_csv(hidden_dir / "test.csv", TEST_COLUMNS, test_rows)
        atomic_write_csv(hidden_dir / "sample_submission.csv", SUBMISSION_COLUMNS, [(i, "True") for i in range(n_test)])
    # the public/private split, fixed by the seed but independent of the row order
    public_rows = max(1, min(n_test - 1, round(n_test * public_fraction)))
    public_ids = set(random.Random(f"{seed}-split").sample(range(n_test), public_rows))
    atomic_write_csv(hidden_dir / "solution.csv", SOLUTION_COLUMNS,
                     [(i, str(r.is_correct), "Public" if i in public_ids else "Private") for i, r in enumerate(test)])
    return _write_records(directory, slug, seed, n_train, n_test, public_rows, public_fraction, daily_limit, code, rerun_seconds, {})


def _write_records(directory: Path, slug: str, seed: int, n_train: int, n_test: int, public_rows: int, public_fraction: float,
                   daily_limit: int, code: bool, rerun_seconds: int, shape: dict) -> PracticeCompetition:
    """Empty submissions and competition.json (`shape`: the task and server of a competition that is not binary)."""
    atomic_write_json(directory / SUBMISSIONS_FILE, {"submissions": []})
    atomic_write_json(
        directory / COMPETITION_FILE,
        {
            **shape,
            "slug": slug,
            "seed": seed,
            "n_train": n_train,
            "n_test": n_test,
            "public_rows": public_rows,
            "public_fraction": public_fraction,
            "daily_limit": daily_limit,
            "code": code,
            "rerun_seconds": rerun_seconds if code else None,
            "closed": False,
            "created": _utc_now().replace(microsecond=0).isoformat(),
            "closed_at": None,
            # Submission refs restart at 1 in each competition made here (--force makes a new one): a run's record
            # names the instance its refs belong to, so a new competition's scores never land on an old run.
            "instance": secrets.token_hex(6),
        },
    )
    return PracticeCompetition(directory)


@dataclass(frozen=True)
class PracticeSubmission:
    """A submission as the practice competition reports it; `private_score` is None until the competition closes."""

    ref: str
    date: str  # ISO-8601, UTC
    description: str
    file_name: str
    # "complete"; a file that cannot be scored is refused and not recorded. Code competitions: "pending" until the
    # rerun ends, "error" when it fails (the error says why; a failed rerun uses none of the day's submissions).
    status: str
    public_score: float | None
    private_score: float | None
    late: bool = False  # made after close(); scored, as Kaggle scores late submissions
    error: str = ""
    size: int | None = None  # the file's size in bytes, as Kaggle lists it (None for records from before kit kept it)


class PracticeCompetition:
    """A practice competition on disk: its data, and the submissions scored against its hidden solution."""

    def __init__(self, directory: Path, clock: Callable[[], datetime] = _utc_now):
        self.directory = Path(directory)
        self._clock = clock  # tests move the day forward; the limit resets at 00:00 UTC
        meta_path = self.directory / COMPETITION_FILE
        if not meta_path.is_file():
            raise KitError(f"no practice competition in {self.directory}", hint="kit practice init")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise WorkspaceError(f"{meta_path} cannot be read: {exc}", hint="kit practice init --force") from None
        self.slug: str = meta["slug"]
        self.public_rows: int = int(meta["public_rows"])
        self.daily_limit: int = int(meta["daily_limit"])
        self.code: bool = bool(meta.get("code", False))
        self.rerun_seconds: float = float(meta.get("rerun_seconds") or DEFAULT_RERUN_SECONDS)
        self.task: str = str(meta.get("task") or "binary")
        # the [task] of a shape competition (multiclass, topk, pairwise, ordinal), which scores its submissions
        self.task_table: dict | None = meta.get("task_table")
        # an inference-server competition: {module, call_seconds, startup_seconds, file}; None where kernels write files
        self.server: dict | None = meta.get("server")
        # A competition made before instances were recorded is told apart from its replacements by its creation time.
        self.instance: str = str(meta.get("instance") or f"{self.slug}@{meta.get('created', '')}")
        self._solution: dict[str, tuple[bool, bool]] | None = None  # ID -> (is_correct, public)

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def closed(self) -> bool:
        """Whether close() has run; read from disk each time, since another process may close it."""
        return bool(self._meta().get("closed"))

    def _meta(self) -> dict:
        return json.loads((self.directory / COMPETITION_FILE).read_text(encoding="utf-8"))

    def _load_solution(self) -> dict[str, tuple[bool, bool]]:
        if self._solution is None:
            path = self.directory / "hidden" / "solution.csv"
            if not path.is_file():
                raise KitError(f"{path} is missing", hint="kit practice init --force")
            with open(path, newline="", encoding="utf-8") as fh:
                self._solution = {
                    row["ID"]: (row["is_correct"] == "True", row["Usage"] == "Public") for row in csv.DictReader(fh)
                }
        return self._solution

    def score(self, csv_path: Path) -> tuple[float, float]:
        """Public and private accuracy of a submission file; SubmissionError if it cannot be scored."""
        csv_path = Path(csv_path)
        if self.task == "answer":
            return score_answers(csv_path, read_solution(self.directory / "hidden" / "solution.csv"))
        if self.task_table is not None:
            return score_shape(csv_path, self.task_table, self._shape_solution())
        solution = self._load_solution()
        try:
            text = csv_path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise SubmissionError(f"cannot read {csv_path}: {exc}", hint="submit a UTF-8 CSV with columns ID,is_correct") from None
        reader = csv.DictReader(io.StringIO(text))
        missing = [c for c in SUBMISSION_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SubmissionError(
                f"{csv_path.name}: no column {missing[0]!r} (header: {','.join(reader.fieldnames or [])})",
                hint="the header must be ID,is_correct, as in data/sample_submission.csv",
            )
        predictions: dict[str, bool] = {}
        for line, row in enumerate(reader, start=2):
            row_id = (row["ID"] or "").strip()
            value = (row["is_correct"] or "").strip().lower()
            if value not in ("true", "false"):
                raise SubmissionError(
                    f"{csv_path.name} line {line}: is_correct {row['is_correct']!r} is not True or False",
                    hint="write True or False in every row",
                )
            if row_id not in solution:
                raise SubmissionError(f"{csv_path.name} line {line}: unknown ID {row_id!r}", hint="use the IDs of data/test.csv")
            if row_id in predictions:
                raise SubmissionError(f"{csv_path.name} line {line}: ID {row_id} appears twice", hint="write each ID once")
            predictions[row_id] = value == "true"
        if len(predictions) != len(solution):
            absent = next(i for i in solution if i not in predictions)
            raise SubmissionError(
                f"{csv_path.name}: {len(solution) - len(predictions)} of {len(solution)} test IDs missing (e.g. {absent})",
                hint="predict every row of data/test.csv",
            )
        right = {True: 0, False: 0}
        for row_id, (label, public) in solution.items():
            right[public] += predictions[row_id] == label
        private_rows = len(solution) - self.public_rows
        return round(right[True] / self.public_rows, 5), round(right[False] / private_rows, 5)

    def _read_records(self) -> list[dict]:
        path = self.directory / SUBMISSIONS_FILE
        if not path.exists():
            return []
        return json.loads(path.read_text(encoding="utf-8"))["submissions"]

    def _used_today(self, records: list[dict]) -> int:
        today = self._clock().astimezone(timezone.utc).date()
        return sum(1 for r in records if r["status"] != "error" and datetime.fromisoformat(r["date"]).astimezone(timezone.utc).date() == today)

    def _view(self, record: dict, closed: bool) -> PracticeSubmission:
        return PracticeSubmission(
            ref=record["ref"],
            date=record["date"],
            description=record["description"],
            file_name=record["file_name"],
            status=record["status"],
            public_score=record["public_score"],
            private_score=record["private_score"] if closed else None,
            late=record.get("late", False),
            error=record.get("error", ""),
            size=record.get("size"),
        )

    def submit(self, csv_path: Path, message: str) -> PracticeSubmission:
        """Score `csv_path` and record it; SubmissionLimitError when today's submissions are used up."""
        if self.code:
            raise SubmissionError(f"{self.slug} is a code competition: it takes kernels, not files",
                                  hint="kit submit RUN submits the run's kernel, which is rerun on the hidden test set")
        csv_path = Path(csv_path)
        public, private = self.score(csv_path)  # a file that cannot be scored raises here and is never counted
        path = self.directory / SUBMISSIONS_FILE
        with locked(path):
            records = self._read_records()
            if self._used_today(records) >= self.daily_limit:
                raise SubmissionLimitError(
                    f"the {self.daily_limit} submissions of today (UTC) are used",
                    hint="submit again after 00:00 UTC",
                )
            closed = self.closed
            record = {
                "ref": str(max((int(r["ref"]) for r in records), default=0) + 1),
                "date": self._clock().astimezone(timezone.utc).replace(microsecond=0).isoformat(),
                "description": message,
                "file_name": csv_path.name,
                "size": csv_path.stat().st_size,
                "status": "complete",
                "public_score": public,
                "private_score": private,
                "late": closed,
            }
            atomic_write_json(path, {"submissions": records + [record]})
        return self._view(record, closed)

    def submit_code(self, kernel_dir: Path, sources: dict[str, Path], file_name: str, message: str) -> PracticeSubmission:
        """Record a pending code submission of the kernel in `kernel_dir` and start its rerun on the hidden test
        rows (kit.practice.rerun, a detached process); `sources` are its attached inputs by folder name. The rerun
        scores the `file_name` the kernel writes and completes the record."""
        if not self.code:
            raise SubmissionError(f"{self.slug} is not a code competition: it takes files",
                                  hint="kit practice init --code --force makes a code competition (its submissions are lost)")
        path = self.directory / SUBMISSIONS_FILE
        with locked(path):
            records = self._read_records()
            if self._used_today(records) >= self.daily_limit:
                raise SubmissionLimitError(f"the {self.daily_limit} submissions of today (UTC) are used", hint="submit again after 00:00 UTC")
            closed = self.closed
            record = {
                "ref": str(max((int(r["ref"]) for r in records), default=0) + 1),
                "date": self._clock().astimezone(timezone.utc).replace(microsecond=0).isoformat(),
                "description": message,
                "file_name": file_name,
                "status": "pending",
                "public_score": None,
                "private_score": None,
                "late": closed,
                "kernel": str(kernel_dir),
            }
            self._lay_out_rerun(record["ref"], Path(kernel_dir), sources)
            atomic_write_json(path, {"submissions": records + [record]})
        self._start_rerun(record["ref"])
        return self._view(record, closed)

    def rerun_dir(self, ref: str) -> Path:
        """Code submission `ref`'s rerun: its Kaggle tree, kernel and log."""
        return self.directory / RERUNS / ref

    def rerun_record(self, ref: str) -> dict:
        """Code submission `ref`'s record as submit_code wrote it (its file_name, its kernel)."""
        return next(r for r in self._read_records() if r["ref"] == ref)

    def _lay_out_rerun(self, ref: str, kernel_dir: Path, sources: dict[str, Path]) -> None:
        """Write the rerun's tree: the kernel, the competition folder with the hidden test rows, the attached sources."""
        session = self.rerun_dir(ref)
        if session.exists():
            shutil.rmtree(session)
        root = session / "kaggle"
        folder = root / "input" / "competitions" / self.slug
        folder.mkdir(parents=True)
        # The hidden rows replace the visible ones, except where a gateway holds them (an inference server sees only
        # what the gateway sends it, as on Kaggle).
        hidden = set() if self.server else {"test.csv", "sample_submission.csv"}
        for item in self.data_dir.iterdir():
            if item.name not in hidden:
                os.symlink(item.resolve(), folder / item.name)
        for name in sorted(hidden):  # the hidden rows replace the visible ones; the solution stays out of reach
            shutil.copy2(self.directory / "hidden" / name, folder / name)
        for name, source in sources.items():
            os.symlink(Path(source).resolve(), root / "input" / name)
        (root / "working").mkdir()
        shutil.copytree(kernel_dir, session / "kernel")

    def _start_rerun(self, ref: str) -> None:
        """Start the rerun as a detached process; it outlives the `kit submit` that started it, as on Kaggle."""
        session = self.rerun_dir(ref)
        subprocess.Popen(
            [sys.executable, "-m", "kit.practice.rerun", str(self.directory), ref],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(session / "runner.err", "wb"),
            cwd=session,
        )

    def finish_rerun(self, ref: str, scores: tuple[float, float] | None, error: str) -> None:
        """Complete pending submission `ref` with its rerun's (public, private) scores, or fail it with `error`."""
        path = self.directory / SUBMISSIONS_FILE
        with locked(path):
            records = self._read_records()
            for record in records:
                if record["ref"] == ref and record["status"] == "pending":
                    record["status"] = "error" if scores is None else "complete"
                    record["public_score"], record["private_score"] = scores or (None, None)
                    record["error"] = error
            atomic_write_json(path, {"submissions": records})

    def submissions(self) -> list[PracticeSubmission]:
        """Every submission, newest first (as Kaggle lists them); private scores only once closed."""
        closed = self.closed
        return [self._view(r, closed) for r in reversed(self._read_records())]

    def remaining_today(self) -> int:
        """Submissions still allowed today (UTC)."""
        return max(0, self.daily_limit - self._used_today(self._read_records()))

    def board(self) -> list[tuple[str, float, str, bool]]:
        """The public board as (team, public score, date, is you), best first: your best submission next to
        the host's baselines (every row True, every row False), scored on the public rows like any file."""
        if self.task == "answer":
            return self._answer_board()
        if self.task_table is not None:
            return self._shape_board()
        public = [label for label, is_public in self._load_solution().values() if is_public]
        true_share = round(sum(public) / len(public), 5)
        created = str(self._meta().get("created") or "")
        entries = [("baseline: all True", true_share, created, False), ("baseline: all False", round(1 - true_share, 5), created, False)]
        return self._with_your_best(entries)

    def _shape_solution(self) -> dict[str, tuple[str, bool]]:
        path = self.directory / "hidden" / "solution.csv"
        if not path.is_file():
            raise KitError(f"{path} is missing", hint="kit practice init --force")
        return read_shape_solution(path, str(self.task_table.get("id", "ID")))

    def _shape_board(self) -> list[tuple[str, float, str, bool]]:
        """A shape competition's board: the host's baseline (the task's: the majority class, the class prior for log
        loss) and your best submission, best first in the metric's direction."""
        from kit.practice.shape_competition import task_of

        described, value = shape_baseline(self.task_table, self._shape_solution())
        created = str(self._meta().get("created") or "")
        return self._with_your_best([(f"baseline: {described}", value, created, False)], lower=not task_of(self.task_table).higher_is_better)

    def _answer_board(self) -> list[tuple[str, float, str, bool]]:
        """An answer competition's board: the host's baseline (always the most common train answer) and your best."""
        import collections

        with open(self.data_dir / "train.csv", newline="", encoding="utf-8") as fh:
            common = collections.Counter(row["answer"] for row in csv.DictReader(fh)).most_common(1)[0][0]
        solution = read_solution(self.directory / "hidden" / "solution.csv")
        public = [answer for answer, is_public in solution.values() if is_public]
        created = str(self._meta().get("created") or "")
        return self._with_your_best([(f"baseline: always {common}", round(sum(a == int(common) for a in public) / len(public), 5), created, False)])

    def _with_your_best(self, entries: list[tuple[str, float, str, bool]], lower: bool = False) -> list[tuple[str, float, str, bool]]:
        """The host's `entries` with your best public score, best first in the metric's direction (`lower`: a log
        loss; your best is the latest of your submissions with that score). Ties keep the earlier entry first, as Kaggle
        ranks an earlier submission of the same score higher."""
        sign = 1 if lower else -1
        scored = [s for s in self.submissions() if s.public_score is not None]
        if scored:
            best = max(scored, key=lambda s: (-sign * s.public_score, s.date))
            entries = [*entries, ("you", best.public_score, best.date, True)]
        return sorted(entries, key=lambda e: (sign * e[1], e[2]))

    def close(self) -> None:
        """End the competition: private scores of every submission become visible; later ones are late."""
        path = self.directory / COMPETITION_FILE
        with locked(path):
            meta = self._meta()
            if not meta.get("closed"):
                meta["closed"] = True
                meta["closed_at"] = self._clock().astimezone(timezone.utc).replace(microsecond=0).isoformat()
                atomic_write_json(path, meta)
