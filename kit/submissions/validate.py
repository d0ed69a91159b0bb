"""Validate a submission file against the competition's sample submission before anything is submitted, and
write the copy kit uploads.

The file kit uploads is kit's to write: values the scorer might read differently from the sample's spelling
(`true`, `FALSE`, `1`, `0`) are respelled as the sample spells them, blank lines are dropped and cells trimmed,
and kit says so. The run's own file is never changed. What cannot be normalized (unknown IDs, a missing row, a
value that is not a label) is refused before anything is spent.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import SubmissionError

LABELS = {"True", "False"}
# Spellings of (True, False) that a sample submission may use; a file's values are read in any of them.
SPELLINGS = (("True", "False"), ("true", "false"), ("TRUE", "FALSE"), ("1", "0"))
READS_AS = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}
MAX_SHOWN = 3


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


def label_spelling(sample_values: list[str]) -> tuple[str, str]:
    """How the sample submission spells (True, False): the first of SPELLINGS holding every value it uses."""
    used = {v.strip() for v in sample_values if v.strip()}
    return next((pair for pair in SPELLINGS if used <= set(pair)), SPELLINGS[0])


def find_problems(path: Path, sample: Path) -> list[str]:
    """Every reason the competition would refuse `path` that normalizing cannot fix (empty list = valid)."""
    return _check(path, sample)[0]


def _check(path: Path, sample: Path) -> tuple[list[str], list[list[str]], list[str]]:
    """(problems, the normalized rows with their header, what normalizing changed)."""
    expected_rows = [r for r in _read(sample) if r]
    header, expected_ids = [c.strip() for c in expected_rows[0]], [r[0].strip() for r in expected_rows[1:]]
    spelling = label_spelling([r[1] for r in expected_rows[1:] if len(r) > 1])
    rows = _read(path)
    if not rows or all(not any(cell.strip() for cell in r) for r in rows):
        return ["the file is empty"], [], []
    problems: list[str] = []
    got_header = [c.strip() for c in rows[0]]
    if got_header != header:
        if got_header and got_header[0] in expected_ids and len(got_header) == len(header):
            return [f"missing header row: expected {','.join(header)} on the first line"], [], []
        return [f"wrong header {','.join(got_header)!r}: expected {','.join(header)!r}"], [], []
    expected = set(expected_ids)
    seen: set[str] = set()
    out = [header]
    blank = trimmed = 0
    respelled: dict[str, int] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or not any(cell.strip() for cell in row):
            blank += 1
            continue
        if len(row) != len(header):
            problems.append(f"line {lineno}: {len(row)} columns, expected {len(header)}")
            continue
        trimmed += sum(cell != cell.strip() for cell in row)
        row_id, value = row[0].strip(), row[1].strip()
        if row_id not in expected:
            problems.append(f"line {lineno}: unknown ID {row_id!r}")
        elif row_id in seen:
            problems.append(f"line {lineno}: duplicate ID {row_id!r}")
        seen.add(row_id)
        label = READS_AS.get(value.lower())
        if value == "":
            problems.append(f"line {lineno}: blank {header[1]} for ID {row_id!r}")
        elif label is None:
            problems.append(f"line {lineno}: bad value {value!r} for ID {row_id!r} (expected {spelling[0]} or {spelling[1]})")
        else:
            spelled = spelling[0] if label else spelling[1]
            if spelled != value:
                respelled[f"{value}->{spelled}"] = respelled.get(f"{value}->{spelled}", 0) + 1
            out.append([row_id, spelled, *(c.strip() for c in row[2:])])
    missing = [i for i in expected_ids if i not in seen]
    if missing:
        shown = ", ".join(missing[:MAX_SHOWN]) + (", ..." if len(missing) > MAX_SHOWN else "")
        problems.append(f"{len(missing)} IDs missing: {shown}")
    changes = []
    if respelled:
        what = ", ".join(f"{k} ({n})" for k, n in sorted(respelled.items()))
        changes.append(f"{sum(respelled.values())} values respelled as the sample submission spells them: {what}")
    if blank:
        changes.append(f"{blank} blank line{'s' if blank > 1 else ''} dropped")
    if trimmed:
        changes.append(f"spaces trimmed around {trimmed} cell{'s' if trimmed > 1 else ''}")
    return problems, out, changes


def _render(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def validate_submission(path: Path, sample: Path, upload_dir: Path | None = None) -> ValidSubmission:
    """Check `path` against the sample submission; raise SubmissionError naming the first problems.

    With `upload_dir`, write the normalized copy there (upload_dir/NAME) and return it as the file to upload;
    without, a file that needs normalizing is refused with what would change."""
    path = Path(path)
    problems, rows, changes = _check(path, sample)
    if problems:
        more = f" (and {len(problems) - MAX_SHOWN} more)" if len(problems) > MAX_SHOWN else ""
        raise SubmissionError(
            f"{path} would be refused: " + "; ".join(problems[:MAX_SHOWN]) + more,
            hint="fix the file (ID,is_correct with every test ID once and True/False values); nothing was submitted",
        )
    text = _render(rows)
    if text.encode("utf-8") != path.read_bytes() and not changes:
        changes.append("rewritten as plain CSV (UTF-8 without a byte-order mark, \\n line ends, minimal quoting)")
    upload = path
    if upload_dir is not None:
        from kit.fileio import atomic_write_text

        upload = Path(upload_dir) / path.name
        atomic_write_text(upload, text)
    elif changes:
        raise SubmissionError(f"{path} needs normalizing before upload: " + "; ".join(changes), hint=f"write it as {Path(sample).name} spells it (a code competition scores the file the kernel writes)")
    trues = sum(1 for r in rows[1:] if READS_AS[r[1].lower()])
    return ValidSubmission(
        path=upload, rows=len(rows) - 1, sha256=file_sha256(upload), true_share=trues / max(len(rows) - 1, 1),
        source=path, changes=tuple(changes),
    )
