"""kit.progress: bars only where asked, one final line always, nothing on stdout."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from kit import progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_stream_gets_only_the_final_line(monkeypatch):
    monkeypatch.delenv("KIT_PROGRESS", raising=False)
    err = io.StringIO()
    with progress.transfer("pull run-1", 3000, stream=err) as bar:
        bar.update(1000)
        bar.update(2000)
        bar.note("submission.csv")
        bar.done("pulled 2 files (3.0 kB)")
    assert err.getvalue() == "pulled 2 files (3.0 kB)\n"


def test_terminal_draws_a_bar_then_the_final_line(monkeypatch):
    monkeypatch.delenv("KIT_PROGRESS", raising=False)
    err = Tty()
    with progress.transfer("pull run-1", 3000, stream=err) as bar:
        bar.update(3000)
    text = err.getvalue()
    assert "3.00k" in text or "3.0k" in text or "100%" in text
    assert text.rstrip("\n").splitlines()[-1].startswith("pull run-1: done in 00:0")


def test_kit_progress_0_silences_bars_on_a_terminal(monkeypatch):
    monkeypatch.setenv("KIT_PROGRESS", "0")
    err = Tty()
    with progress.waiting("run-2", stream=err) as wait:
        wait.note("running")
        wait.done("run-2 complete after 00:01")
    assert err.getvalue() == "run-2 complete after 00:01\n"


def test_an_exception_ends_the_bar_with_failed_and_propagates(monkeypatch):
    monkeypatch.delenv("KIT_PROGRESS", raising=False)
    err = io.StringIO()
    with pytest.raises(OSError):
        with progress.bar("download data", 10, stream=err):
            raise OSError("disk full")
    assert err.getvalue().startswith("download data: failed after 00:00 (disk full)")


def test_write_keeps_event_lines_in_both_modes(monkeypatch):
    for forced, stream in (("1", io.StringIO()), ("0", io.StringIO())):
        monkeypatch.setenv("KIT_PROGRESS", forced)
        with progress.bar("sweep lr", 2, stream=stream) as bar:
            bar.write("run-3 pushed")
            bar.update()
        assert "run-3 pushed\n" in stream.getvalue()


def test_human_bytes_and_clock():
    assert progress.human_bytes(999) == "999 B"
    assert progress.human_bytes(1234567) == "1.2 MB"
    assert progress.clock(75) == "01:15"
    assert progress.clock(3725) == "1:02:05"


def test_importing_progress_does_not_import_tqdm():
    code = "import sys, kit.progress; print('tqdm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
