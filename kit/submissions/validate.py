"""Validate a submission file against the competition's sample submission before anything is submitted, and
write the copy kit uploads.

The file kit uploads is kit's to write: values the scorer might read differently from the sample's spelling
(`true`, `FALSE`, `1`, `0`) are respelled as the sample spells them, blank lines are dropped and cells trimmed,
and kit says so. The run's own file is never changed. What cannot be normalized (unknown IDs, a missing row, a
value that is not a label) is refused before anything is spent.

The file is read once, row by row, and the normalized copy written as it is read: memory grows with the sample
submission (the competition's IDs), never with the file checked, so a file of any size is checked or refused in
bounded memory. What one competition shape accepts in a row's values is a `ValueCheck`: the generic part here
(header, blank lines, columns, unknown / duplicate / missing IDs, normalizing) calls it once per row.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator, Protocol

from kit.errors import SubmissionError

LABELS = {"True", "False"}
# Spellings of (True, False) that a sample submission may use; a file's values are read in any of them.
SPELLINGS = (("True", "False"), ("true", "false"), ("TRUE", "FALSE"), ("1", "0"))
READS_AS = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}
MAX_SHOWN = 3
CHUNK = 1 << 16  # bytes read at a time when hashing


@dataclass(frozen=True)
class ValidSubmission:
    """A submission file that passed validation; `path` is the file to upload (kit's normalized copy when
    `upload_dir` was given), `source` the run's file it was made from, `changes` what normalizing changed."""

    path: Path
    rows: int
    sha256: str
    true_share: float
    source: Path | None = None
    changes: tuple[str, ...] = field(default_factory=tuple)


class RowProblem(Exception):
    """A row's values the competition would refuse; the message names the value (never more than the row)."""


class ValueCheck(Protocol):
    """What one competition shape accepts in the value cells of a row (every cell after the ID)."""

    def check(self, row_id: str, values: list[str]) -> list[str]:
        """The values as kit uploads them (respelled where the sample spells them otherwise); RowProblem if refused."""

    def changes(self) -> list[str]:
        """What normalizing changed, once the whole file was read (e.g. '3 values respelled ...')."""

    def summary(self) -> float:
        """The share of rows predicted True (shown before the submission is spent); 0.0 where it means nothing."""


def file_sha256(path: Path) -> str:
    """The file's SHA-256, to recognise the same file submitted twice (read in chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_rows(path: Path) -> Iterator[list[str]]:
    """The CSV file's rows, one at a time; SubmissionError if it is missing or not a readable CSV file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            yield from csv.reader(fh)
    except FileNotFoundError:
        raise SubmissionError(f"no submission file at {path}", hint="kit pull RUN fetches a run's outputs") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SubmissionError(f"{path} is not a readable CSV file: {exc}") from None


def label_spelling(sample_values: list[str]) -> tuple[str, str]:
    """How the sample submission spells (True, False): the first of SPELLINGS holding every value it uses."""
    used = {v.strip() for v in sample_values if v.strip()}
    return next((pair for pair in SPELLINGS if used <= set(pair)), SPELLINGS[0])


ROW_NUMBER = re.compile(r"0|[1-9][0-9]{0,17}")  # an ID that is a row number, as most competitions' IDs are
MAX_DISTINCT = 64  # distinct first values kept from the sample: enough to tell how it spells its labels


class Sample:
    """The sample submission: its header, its IDs, and which of them a file has given (what a file is checked
    against).

    Where every ID is a row number and they are dense (most competitions), an ID's place is its number and the
    IDs cost one byte each; otherwise a dict from ID to place. The sample is read twice to choose, never kept."""

    def __init__(self, path: Path):
        self.path = Path(path)
        rows = self._rows()
        self.header = [c.strip() for c in next(rows, [])]
        count, low, high, numbers = 0, None, None, True
        self.first_values: set[str] = set()  # the distinct values of the first value column, up to MAX_DISTINCT
        for row in rows:
            row_id = row[0].strip()
            count += 1
            if len(self.first_values) < MAX_DISTINCT and len(row) > 1:
                self.first_values.add(row[1].strip())
            if numbers and ROW_NUMBER.fullmatch(row_id):
                number = int(row_id)
                low = number if low is None else min(low, number)
                high = number if high is None else max(high, number)
            else:
                numbers = False
        self.low = low if numbers and low is not None and high - low < 4 * count + 1024 else None
        if self.low is not None:
            self._place: dict[str, int] | None = None
            self.state = bytearray(high - self.low + 1)  # 0: not an ID, 1: an ID not given yet, 2: given
            for row_id in self.ids():
                self.state[int(row_id) - self.low] = 1
        else:
            self._place = {}
            for row_id in self.ids():
                self._place.setdefault(row_id, len(self._place))
            self.state = bytearray(b"\x01") * len(self._place)
        self.count = self.state.count(1)

    def _rows(self) -> Iterator[list[str]]:
        return (r for r in read_rows(self.path) if r)

    def ids(self) -> Iterator[str]:
        """The sample's IDs in its order (read again from the file)."""
        rows = self._rows()
        next(rows, None)
        return (row[0].strip() for row in rows)

    def place(self, row_id: str) -> int | None:
        """Where `row_id` is kept, or None when it is not one of the sample's IDs."""
        if self._place is not None:
            return self._place.get(row_id)
        if not ROW_NUMBER.fullmatch(row_id):
            return None
        place = int(row_id) - self.low
        return place if 0 <= place < len(self.state) and self.state[place] else None

    def __contains__(self, row_id: str) -> bool:
        return self.place(row_id) is not None

    def give(self, place: int) -> bool:
        """Mark the ID at `place` given; False when it already was (a duplicate)."""
        first = self.state[place] == 1
        self.state[place] = 2
        return first

    def missing(self) -> tuple[int, list[str]]:
        """How many IDs no row gave, and the first few of them in the sample's order."""
        missing = self.state.count(1)
        first: list[str] = []
        if missing:
            for row_id in self.ids():
                place = self.place(row_id)
                if place is not None and self.state[place] == 1 and row_id not in first:
                    first.append(row_id)
                    if len(first) > MAX_SHOWN:
                        break
        return missing, first


class BinaryLabels:
    """The binary task's values: one True/False label, respelled as the sample spells it."""

    def __init__(self, sample: Sample):
        self.column = sample.header[1] if len(sample.header) > 1 else "value"
        self.spelling = label_spelling(list(sample.first_values))
        self.respelled: dict[str, int] = {}
        self.trues = self.rows = 0

    def check(self, row_id: str, values: list[str]) -> list[str]:
        value = values[0] if values else ""
        label = READS_AS.get(value.lower())
        if value == "":
            raise RowProblem(f"blank {self.column} for ID {row_id!r}")
        if label is None:
            raise RowProblem(f"bad value {value!r} for ID {row_id!r} (expected {self.spelling[0]} or {self.spelling[1]})")
        spelled = self.spelling[0] if label else self.spelling[1]
        if spelled != value:
            self.respelled[f"{value}->{spelled}"] = self.respelled.get(f"{value}->{spelled}", 0) + 1
        self.rows += 1
        self.trues += label
        return [spelled, *values[1:]]

    def changes(self) -> list[str]:
        if not self.respelled:
            return []
        what = ", ".join(f"{k} ({n})" for k, n in sorted(self.respelled.items()))
        return [f"{sum(self.respelled.values())} values respelled as the sample submission spells them: {what}"]

    def summary(self) -> float:
        return self.trues / max(self.rows, 1)


class TaskValues:
    """A [task]'s values (kit.task, the kernels' own module): labels from its label set, respelled as the task spells
    them ("3.0" -> "3", "true" -> "True"); at most k labels, joined by its separator; probabilities in [0, 1], each
    row's per-class probabilities summing to 1 where the metric is log loss."""

    def __init__(self, task):
        self.task = task
        self.respelled = 0
        self.positives = self.rows = 0
        classes = task.classes()
        self.expected = {"label": f"labels ({_few(classes)})", "number": f"scores ({_few(classes)})",
                         "top_k": f"up to {task.k} labels ({_few(classes)}) separated by {task.separator!r}",
                         "probability": f"P({classes[0]}) between 0 and 1",
                         "probabilities": "one probability per class" + (", summing to 1" if task.metric == "log_loss" else "")}[task.output]

    def check(self, row_id: str, values: list[str]) -> list[str]:
        from kit.task import TaskError, check_cells

        task = self.task
        original = values
        if task.output in ("label", "number") and values:
            spelled = task.canonical(values[0])
            values = [spelled if spelled is not None else values[0], *values[1:]]
        elif task.output == "top_k" and values:
            labels = [task.canonical(x) or x for x in task.top_k_labels(values[0])]
            values = [task.separator.join(labels), *values[1:]]
        if values != original:
            self.respelled += 1
        try:
            check_cells(task, values, f"ID {row_id!r}")
        except TaskError as exc:
            raise RowProblem(exc.problem.removeprefix(f"ID {row_id!r}: ") + f" for ID {row_id!r} (expected {self.expected})") from None
        self.rows += 1
        if task.kind == "binary":
            first = values[0]
            self.positives += first == task.classes()[0] if task.output == "label" else float(first) >= 0.5
        return values

    def changes(self) -> list[str]:
        return [f"{self.respelled} values respelled as the task spells its labels"] if self.respelled else []

    def summary(self) -> float:
        return self.positives / max(self.rows, 1)


def values_for(task) -> ValueCheck | None:
    """The ValueCheck of a task's submission: None (the sample's True/False spelling, BinaryLabels) for a binary
    task submitting true/false labels, as kit has always checked them; else TaskValues."""
    binary_words = task.kind == "binary" and task.output == "label" and all(c.lower() in READS_AS for c in task.classes())
    return None if binary_words else TaskValues(task)


def _few(names, limit: int = 6) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


class _Out:
    """Where the normalized rows go: hashed as they are written, and written to `fh` when there is one."""

    def __init__(self, fh: IO[str] | None):
        self.fh = fh
        self.digest = hashlib.sha256()

    def write(self, text: str) -> None:
        self.digest.update(text.encode("utf-8"))
        if self.fh is not None:
            self.fh.write(text)


@dataclass
class _Result:
    problems: list[str]  # the first MAX_SHOWN
    more: int = 0  # how many past those
    rows: int = 0
    changes: list[str] = field(default_factory=list)
    sha256: str = ""


class _Problems:
    """The first few problems in full and how many there were: a file of millions of bad rows stays small here."""

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.count = 0

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.shown) < MAX_SHOWN:
            self.shown.append(text)



def _check(path: Path, sample: Sample, values: ValueCheck, out: _Out) -> _Result:
    """Read `path` row by row, check each against the sample and `values`, and write the normalized rows to `out`."""
    rows = read_rows(path)
    lineno = 0
    first: list[str] | None = None
    blank_before = 0
    for lineno, row in enumerate(rows, start=1):  # the header is the first line with a cell that is not blank
        if any(cell.strip() for cell in row):
            first = row
            break
        blank_before += 1
    if first is None:
        return _Result(["the file is empty"])
    header = sample.header
    got_header = [c.strip() for c in first]
    if got_header != header:
        if got_header and got_header[0] in sample and len(got_header) == len(header):
            return _Result([f"missing header row: expected {','.join(header)} on the first line"])
        return _Result([f"wrong header {','.join(got_header)!r}: expected {','.join(header)!r}"])
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    problems = _Problems()
    blank, trimmed, written = blank_before, 0, 0
    for lineno, row in enumerate(rows, start=lineno + 1):
        if not any(cell.strip() for cell in row):
            blank += 1
            continue
        if len(row) != len(header):
            problems.add(f"line {lineno}: {len(row)} columns, expected {len(header)}")
            continue
        trimmed += sum(cell != cell.strip() for cell in row)
        cells = [c.strip() for c in row]
        row_id = cells[0]
        place = sample.place(row_id)
        if place is None:
            problems.add(f"line {lineno}: unknown ID {row_id!r}")
        elif not sample.give(place):
            problems.add(f"line {lineno}: duplicate ID {row_id!r}")
        try:
            normalized = values.check(row_id, cells[1:])
        except RowProblem as problem:
            problems.add(f"line {lineno}: {problem}")
            continue
        if not problems.count:
            writer.writerow([row_id, *normalized])
            written += 1
    missing, first_missing = sample.missing()
    if missing:
        shown = ", ".join(first_missing[:MAX_SHOWN]) + (", ..." if missing > MAX_SHOWN else "")
        problems.add(f"{missing} IDs missing: {shown}")
    if problems.count:
        return _Result(problems.shown, problems.count - len(problems.shown))
    changes = values.changes()
    if blank:
        changes.append(f"{blank} blank line{'s' if blank > 1 else ''} dropped")
    if trimmed:
        changes.append(f"spaces trimmed around {trimmed} cell{'s' if trimmed > 1 else ''}")
    return _Result([], rows=written, changes=changes, sha256=out.digest.hexdigest())


def find_problems(path: Path, sample: Path) -> list[str]:
    """The first reasons the competition would refuse `path` that normalizing cannot fix (empty list = valid)."""
    known = Sample(sample)
    return _check(Path(path), known, BinaryLabels(known), _Out(None)).problems


@contextlib.contextmanager
def _upload_file(upload: Path | None) -> Iterator[tuple[IO[str] | None, Path | None]]:
    """A temporary file beside `upload`, renamed onto it only when the block ends without an error and it was kept."""
    if upload is None:
        yield None, None
        return
    upload.parent.mkdir(parents=True, exist_ok=True)
    tmp = upload.with_name(f".{upload.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            yield fh, tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def validate_submission(path: Path, sample: Path, upload_dir: Path | None = None, values: ValueCheck | None = None) -> ValidSubmission:
    """Check `path` against the sample submission; raise SubmissionError naming the first problems.

    With `upload_dir`, write the normalized copy there (upload_dir/NAME) and return it as the file to upload;
    without, a file that needs normalizing is refused with what would change. `values` checks each row's values
    (the binary True/False labels when not given)."""
    path = Path(path)
    known = Sample(sample)
    values = values if values is not None else BinaryLabels(known)
    upload = Path(upload_dir) / path.name if upload_dir is not None else None
    with _upload_file(upload) as (fh, tmp):
        result = _check(path, known, values, _Out(fh))
        if result.problems:
            raise SubmissionError(
                f"{path} would be refused: " + "; ".join(result.problems) + (f" (and {result.more} more)" if result.more else ""),
                hint=f"fix the file ({','.join(known.header)} with every test ID once and {getattr(values, 'expected', 'True/False values')}); nothing was submitted",
            )
        changes = result.changes
        if result.sha256 != file_sha256(path) and not changes:
            changes.append("rewritten as plain CSV (UTF-8 without a byte-order mark, \\n line ends, minimal quoting)")
        if fh is not None and tmp is not None and upload is not None:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(tmp, upload)
    if upload is None:
        if changes:
            raise SubmissionError(f"{path} needs normalizing before upload: " + "; ".join(changes), hint=f"write it as {Path(sample).name} spells it (a code competition scores the file the kernel writes)")
        upload = path
    return ValidSubmission(
        path=upload, rows=result.rows, sha256=result.sha256, true_share=values.summary(), source=path, changes=tuple(changes),
    )


def validate_gateway_output(path: Path, sample: Path, task) -> ValidSubmission:
    """An inference-server run's file (the gateway's Parquet, read with polars; or CSV) checked as the task checks a
    submission: the header, every id of the sample once, each answer of the task's type and range."""
    import polars as pl

    from kit.task import TaskError, check_submission

    path = Path(path)
    try:
        frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema_length=0)
        expected = pl.read_csv(sample, infer_schema_length=0).to_series(0).to_list()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise SubmissionError(f"{path.name} cannot be read: {exc}", hint="pull the run again (kit pull RUN); nothing was submitted") from None
    if task.kind == "answer" and task.answer == "integer" and len(frame.columns) > 1 and not frame.dtypes[1].is_integer():
        raise SubmissionError(f"{path} would be refused: its {frame.columns[1]} column is {frame.dtypes[1]}, not integers",
                              hint="the gateway's answers must be integers; nothing was submitted")
    rows = ([("" if v is None else str(v)) for v in row] for row in frame.iter_rows())
    try:
        count = check_submission(task, list(frame.columns), rows, expected, name=path.name)
    except TaskError as exc:
        raise SubmissionError(f"{path} would be refused: {exc.problem}", hint=f"{exc.fix}; nothing was submitted") from None
    return ValidSubmission(path=path, rows=count, sha256=file_sha256(path), true_share=0.0, source=path)
