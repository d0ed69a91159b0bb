"""Atomic writes and advisory locks for the files a person owns (leaderboard.csv, run records)."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import glob
import io
import json
import os
import re
import secrets
import stat
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator


def within(path: Path, root: Path) -> bool:
    """Whether `path`, links followed, is inside folder `root` (a link out of it is not)."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return False
    return True


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader sees the old file or the new one, never a half.

    The file keeps its mode (a new one gets the umask's), and the temporary file is named after this process, so
    that one left by a killed writer is removed by the next write (`clean_temps`) rather than lasting."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_temps(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0o666 less the umask, as open() gives
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            with contextlib.suppress(FileNotFoundError):
                os.fchmod(fh.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_csv(path: Path, header: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    """Write a CSV file (the header, then `rows`; "\n" line ends) atomically, as atomic_write_text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def clean_temps(path: Path) -> list[Path]:
    """Remove the temporary files of writes to `path` whose writer is gone (killed mid-write); returns them.

    Ours are `.NAME.PID.RANDOM.tmp`; older kits wrote `.NAME.RANDOM.tmp`, removed once an hour old."""
    path = Path(path)
    removed = []
    ours = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]+\.tmp")
    older = re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}\.tmp")
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = ours.fullmatch(tmp.name)
        try:
            if match:
                stale = int(match.group(1)) != os.getpid() and not _alive(int(match.group(1)))
            else:
                stale = bool(older.fullmatch(tmp.name)) and time.time() - tmp.stat().st_mtime > 3600
            if stale:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # another writer cleaned it first
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def atomic_write_json(path: Path, data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


class LockBusy(Exception):
    """locked(wait=False) found the lock held; the message is the holder's text."""


@contextlib.contextmanager
def locked(path: Path, holder: str = "", on_wait: Callable[[str], None] | None = None, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive advisory lock tied to `path` (a sibling `.lock` file) for the block.

    `holder` (who holds it: a pid and a command) is written into the lock file while held; when the lock is taken,
    `on_wait` is told the current holder's text before this process blocks, so a command can say what it waits for;
    with `wait=False` a held lock raises LockBusy instead.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(f".{path.name}.lock")
    with open(lock_path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            current = fh.read().strip()
            if not wait:
                raise LockBusy(current) from None
            if on_wait is not None:
                on_wait(current)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            if holder:
                fh.seek(0)
                fh.truncate()
                fh.write(holder)
                fh.flush()
            yield
        finally:
            if holder:
                fh.seek(0)
                fh.truncate()
                fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)
