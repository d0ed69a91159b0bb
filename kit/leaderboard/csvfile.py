"""A CSV file a person edits (leaderboard.csv): read and written back with every cell as it was.

kit refuses, in one line naming the file, the line and the fix, what it cannot read without losing something: text
that is not UTF-8 (UTF-16, binary), an unbalanced quote (which would swallow the rows after it into one cell), a
column name used twice (one of the two would be lost), a row with more cells than the header. What it writes
keeps the file's byte-order mark and line ending, so a spreadsheet's file reads the same after kit rewrote it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from kit.errors import WorkspaceError

BOM = "\ufeff"
# A line that starts like one of kit's rows: inside a quoted cell it means an opening quote was never closed.
ROW_START = re.compile(r"(^|\n)run-\d+,")


@dataclass
class CsvTable:
    """A CSV file's header and rows (each a dict of the header's names), and how the file was written."""

    header: list[str] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)
    bom: bool = False
    newline: str = "\n"


def _problem(path: Path, line: int | None, what: str, fix: str) -> WorkspaceError:
    return WorkspaceError(f"{path}:{line}: {what}" if line else f"{path}: {what}", hint=fix)


def _text(path: Path) -> str | None:
    """The file's text (None when there is no file), or a one-line error for what is not UTF-8 text."""
    restore = f"save it as CSV UTF-8, or restore it (git checkout -- {path.name})"
    if path.is_dir():
        raise _problem(path, None, "is a folder, not a CSV file", f"move the folder away; kit writes {path.name} as a file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _problem(path, None, f"cannot be read ({exc.strerror})", f"check its permissions (ls -l {path})") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _problem(path, None, "is UTF-16 text, not UTF-8", restore)
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise _problem(path, line, "holds a NUL byte: not a text file", restore)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _problem(path, line, f"byte 0x{data[exc.start]:02x} is not UTF-8 text", restore) from None


def read_table(path: Path, key: str = "run") -> CsvTable:
    """The file's header and rows; an empty table when there is no file or it is empty."""
    path = Path(path)
    text = _text(path)
    if text is None:
        return CsvTable()
    bom = text.startswith(BOM)
    text = text[1:] if bom else text
    if not text.strip():
        return CsvTable(bom=bom)
    newline = "\r\n" if "\r\n" in text.split("\n", 1)[0] + "\n" else "\n"
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _problem(path, start, f"unreadable CSV ({exc}): an unbalanced quote?", f"close or remove the quote on line {start}") from None
    header = records[0][1]
    seen: dict[str, int] = {}
    for column, name in enumerate(header, start=1):
        if name in seen:
            raise _problem(path, 1, f"column {name!r} appears twice (columns {seen[name]} and {column})", "rename one of them")
        seen[name] = column
    if key not in header:
        raise _problem(path, 1, f"no {key!r} column in the header", f"restore its header (git checkout -- {path.name})")
    rows = []
    for line, cells in records[1:]:
        if not cells:  # a blank line
            continue
        for cell in cells:
            if "\n" in cell and ROW_START.search(cell):
                raise _problem(path, line, "a quote opened here is never closed, so the rows after it read as one cell",
                               f"close or remove the quote on line {line}")
        if len(cells) > len(header):
            raise _problem(path, line, f"row {cells[0]!r} has {len(cells) - len(header)} more cells than the header",
                           "add a name for the extra column to the header, or remove the extra cells")
        rows.append(dict(zip(header, cells + [""] * (len(header) - len(cells)))))
    return CsvTable(header, rows, bom, newline)


def render_table(table: CsvTable) -> str:
    """The text of `table`, with the byte-order mark and line ending it was read with."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=table.header, lineterminator=table.newline, extrasaction="raise")
    writer.writeheader()
    for row in table.rows:
        writer.writerow({k: row.get(k, "") for k in table.header})
    return (BOM if table.bom else "") + out.getvalue()

