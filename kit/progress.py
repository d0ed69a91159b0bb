"""Progress on stderr for transfers, waits and sweeps: a tqdm bar on a terminal, one plain line otherwise.

Every bar ends with one line that says what happened ("pulled 3 files, 1.2 MB", "run-4 complete after 07:12"),
in both modes, so a log or a CI transcript keeps the outcome without the redraws. stdout is never touched: it
carries data. `KIT_PROGRESS=0` silences the bars (the final lines stay); `KIT_PROGRESS=1` draws them even when
stderr is not a terminal (tests, `script`). tqdm is imported only when a bar is drawn, so the CLI starts light.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any


def bars_enabled(stream: IO[str] | None = None) -> bool:
    """Whether to draw live bars: on a terminal unless KIT_PROGRESS=0; anywhere with KIT_PROGRESS=1."""
    forced = os.environ.get("KIT_PROGRESS", "").strip().lower()
    if forced in ("0", "false", "no", "off"):
        return False
    if forced in ("1", "true", "yes", "on"):
        return True
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def human_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as Kaggle and pip show sizes)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover - the loop always returns


def clock(seconds: float) -> str:
    """Elapsed time as MM:SS (HH:MM:SS past an hour)."""
    s = int(seconds)
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


class Progress:
    """One task's progress: `update(n)` as work is done, `note(text)` for a status, `done(line)` at the end.

    Use it as a context manager; leaving it on an exception ends it with "DESC: failed after MM:SS (ERROR)"
    unless `done`/`fail` was called. With `total=None` (a wait, a sweep of unknown length) the bar shows a
    count and the elapsed time instead of a percentage.
    """

    def __init__(self, desc: str, total: float | None = None, unit: str = "it", *, stream: IO[str] | None = None,
                 enabled: bool | None = None, bar_format: str | None = None):
        self.desc = desc
        self.total = total
        self.unit = unit
        self.count = 0.0
        self.started = time.monotonic()
        self.stream = stream or sys.stderr
        self.finished = False
        self._bar: Any = None
        if bars_enabled(self.stream) if enabled is None else enabled:
            from tqdm import tqdm  # imported here: only commands that draw a bar pay for it

            self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", unit_divisor=1000,
                             file=self.stream, leave=False, dynamic_ncols=True, mininterval=0.2, bar_format=bar_format)

    @property
    def drawn(self) -> bool:
        """Whether a live bar is drawn (a terminal); without one, callers print state changes as lines."""
        return self._bar is not None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def update(self, n: float = 1) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(n)

    def set_total(self, total: float | None) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def note(self, text: str) -> None:
        """A short status beside the bar ("running", the log's last line); nothing when bars are off."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def write(self, line: str) -> None:
        """A line that stays (an event of a sweep) above the bar, or plainly when bars are off."""
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def done(self, line: str | None = None) -> None:
        """End the bar and print its final line (default: "DESC: done in MM:SS")."""
        if self.finished:
            return
        self.finished = True
        if self._bar is not None:
            self._bar.close()
        print(line if line is not None else f"{self.desc}: done in {clock(self.elapsed)}", file=self.stream, flush=True)

    def stop(self) -> None:
        """End the bar without a line: the caller says what happened (a wait that Ctrl-C stopped, not failed)."""
        if self._bar is not None and not self.finished:
            self._bar.close()
        self.finished = True

    def fail(self, reason: str) -> None:
        self.done(f"{self.desc}: failed after {clock(self.elapsed)} ({reason})")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.finished:
            return
        if exc_type is None:
            self.done()
        elif issubclass(exc_type, KeyboardInterrupt):  # Ctrl-C stopped kit, not the work: nothing failed
            self.done(f"{self.desc}: interrupted after {clock(self.elapsed)}")
        else:
            self.fail(str(exc).splitlines()[0] if str(exc) else exc_type.__name__)


def bar(desc: str, total: float | None = None, unit: str = "it", **kwargs: Any) -> Progress:
    """A progress bar for `total` units (bytes with unit="B"); see Progress."""
    return Progress(desc, total=total, unit=unit, **kwargs)


def transfer(desc: str, total_bytes: float | None = None, **kwargs: Any) -> Progress:
    """A bar for a download or an upload, in bytes."""
    return Progress(desc, total=total_bytes, unit="B", **kwargs)


def waiting(desc: str, **kwargs: Any) -> Progress:
    """A bar with no total for a wait (a run, a score): note() the state, done() the outcome."""
    # No rate or count: a wait's polls mean nothing to the user; the elapsed time and the state do.
    kwargs.setdefault("bar_format", "{desc}  {elapsed}  {postfix}")
    return Progress(desc, total=None, unit="poll", **kwargs)
