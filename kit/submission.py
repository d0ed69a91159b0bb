"""Validate a submission file against the competition's sample submission before anything is submitted."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from kit.errors import SubmissionError

LABELS = {"True", "False"}
MAX_SHOWN = 3


@dataclass(frozen=True)
class ValidSubmission:
    """A submission file that passed validation."""

    path: Path
    rows: int
    sha256: str
    true_share: float


def file_sha256(path: Path) -> str:
    """The file's SHA-256, to recognise the same file submitted twice."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return [row for row in csv.reader(fh)]
    except FileNotFoundError:
        raise SubmissionError(f"no submission file at {path}", hint="kit pull RUN fetches a run's outputs") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SubmissionError(f"{path} is not a readable CSV file: {exc}") from None


def find_problems(path: Path, sample: Path) -> list[str]:
    """Every reason the competition would refuse `path`, compared with `sample` (empty list = valid)."""
    expected_rows = _read(sample)
    header, expected_ids = expected_rows[0], [r[0] for r in expected_rows[1:] if r]
    rows = _read(path)
    if not rows or all(not any(cell.strip() for cell in r) for r in rows):
        return ["the file is empty"]
    problems: list[str] = []
    got_header = [c.strip() for c in rows[0]]
    if got_header != header:
        if got_header and got_header[0] in expected_ids and len(got_header) == len(header):
            return [f"missing header row: expected {','.join(header)} on the first line"]
        return [f"wrong header {','.join(got_header)!r}: expected {','.join(header)!r}"]
    expected = set(expected_ids)
    seen: set[str] = set()
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            problems.append(f"line {lineno}: blank line")
            continue
        if len(row) != len(header):
            problems.append(f"line {lineno}: {len(row)} columns, expected {len(header)}")
            continue
        row_id, value = row[0].strip(), row[1].strip()
        if row_id not in expected:
            problems.append(f"line {lineno}: unknown ID {row_id!r}")
        elif row_id in seen:
            problems.append(f"line {lineno}: duplicate ID {row_id!r}")
        seen.add(row_id)
        if value == "":
            problems.append(f"line {lineno}: blank {header[1]} for ID {row_id!r}")
        elif value not in LABELS:
            problems.append(f"line {lineno}: bad value {value!r} for ID {row_id!r} (expected True or False)")
    missing = [i for i in expected_ids if i not in seen]
    if missing:
        shown = ", ".join(missing[:MAX_SHOWN]) + (", ..." if len(missing) > MAX_SHOWN else "")
        problems.append(f"{len(missing)} IDs missing: {shown}")
    return problems


def validate_submission(path: Path, sample: Path) -> ValidSubmission:
    """Check `path` against the sample submission; raise SubmissionError naming the first problems."""
    problems = find_problems(path, sample)
    if problems:
        more = f" (and {len(problems) - MAX_SHOWN} more)" if len(problems) > MAX_SHOWN else ""
        raise SubmissionError(
            f"{path} would be refused: " + "; ".join(problems[:MAX_SHOWN]) + more,
            hint="fix the file (ID,is_correct with every test ID once and True/False values); nothing was submitted",
        )
    rows = _read(path)[1:]
    trues = sum(1 for r in rows if r and r[1].strip() == "True")
    return ValidSubmission(path=Path(path), rows=len(rows), sha256=file_sha256(path), true_share=trues / max(len(rows), 1))
