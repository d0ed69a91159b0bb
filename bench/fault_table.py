"""Issue 14's table for bench/RESULTS.md: each fault class, the scenarios tried, how many kit handled, and what the
user sees. It runs the fault tests (the real CLI and the real kaggle client against the fault-injecting stand-in)
and reads the `fault(number, scenario, sees)` mark of each test: a scenario is handled when its test passes (each
asserts 0 double pushes, 0 double submissions, 0 wrong credits, 0 phantom runs, 0 tracebacks, 0 lost rows).

    python bench/fault_table.py            # print the table
    python bench/fault_table.py --write    # and put it in bench/RESULTS.md between its markers

A helper adding a fault class adds its test file to FAULT_TESTS and marks its tests the same way.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAULT_TESTS = ["tests/test_exactly_once.py", "tests/test_hints.py", "tests/test_kaggle_answers.py", "tests/test_hostile_inputs.py",
               "tests/test_validate.py", "tests/test_local_backend.py::test_a_local_kernel_gets_no_credentials"]
CLASSES = {
    1: "A score credited to the wrong run",
    2: "Double submissions",
    3: "Double pushes (two paid sessions)",
    4: "One bad record breaks everything",
    5: "Damaged files",
    6: "Parallel writers",
    7: "Settings (nan, inf)",
    8: "Silence and wrong hints",
    9: "Spellings the scorer may read differently",
    10: "Kaggle's answer for a kernel that does not exist (403)",
    11: "Requests Kaggle processes long after the client gave up",
    12: "Credentials in a local kernel's environment",
    13: "Hostile or odd inputs",
    14: "A copied workspace",
    15: "Doctor, HTML 5xx, a run that never started, the score wait",
}
BEGIN, END = "<!-- fault-table:begin -->", "<!-- fault-table:end -->"


class Collect:
    """A pytest plugin: each marked test case's class, scenario, what the user sees, and whether it passed."""

    def __init__(self) -> None:
        self.marks: dict[str, dict] = {}
        self.passed: dict[str, bool] = {}

    def pytest_collection_modifyitems(self, items) -> None:
        for item in items:
            mark = item.get_closest_marker("fault")
            if mark is not None:
                self.marks[item.nodeid] = mark.kwargs

    def pytest_runtest_logreport(self, report) -> None:
        if report.nodeid in self.marks and (report.when == "call" or report.failed):
            self.passed[report.nodeid] = self.passed.get(report.nodeid, True) and report.passed


def table(collected: Collect) -> str:
    rows: dict[int, dict[str, list]] = defaultdict(lambda: {"cases": [], "sees": []})
    for nodeid, mark in collected.marks.items():
        row = rows[mark["number"]]
        row["cases"].append((mark["scenario"], collected.passed.get(nodeid, False)))
        if mark["sees"] not in row["sees"]:
            row["sees"].append(mark["sees"])
    lines = ["| fault class | scenarios tried | handled | what the user sees |", "|---|---|---|---|"]
    for number in sorted(rows):
        cases = rows[number]["cases"]
        scenarios = sorted({s for s, _ in cases})
        failed = sorted({s for s, ok in cases if not ok})
        tried = "; ".join(f"{s} (x{sum(1 for c, _ in cases if c == s)})" if sum(1 for c, _ in cases if c == s) > 1 else s for s in scenarios)
        handled = f"{sum(ok for _, ok in cases)}/{len(cases)}" + (f" (not: {'; '.join(failed)})" if failed else "")
        lines.append(f"| {number}. {CLASSES.get(number, '')} | {tried} | {handled} | {'; '.join(rows[number]['sees'])} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="put the table into bench/RESULTS.md")
    args = parser.parse_args()
    collected = Collect()
    start = time.monotonic()
    code = pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT), *(str(ROOT / t) for t in FAULT_TESTS)], plugins=[collected])
    took = time.monotonic() - start
    text = table(collected)
    header = (f"`python bench/fault_table.py --write` on {platform.node() or 'this machine'} ({platform.processor() or platform.machine()}, "
              f"Python {platform.python_version()}), {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {took:.0f} s; "
              f"tests: {', '.join(FAULT_TESTS)}.")
    print(header + "\n\n" + text)
    if args.write:
        path = ROOT / "bench" / "RESULTS.md"
        results = path.read_text(encoding="utf-8")
        block = f"{BEGIN}\n{header}\n\n{text}\n{END}"
        if BEGIN in results and END in results:
            results = results[: results.index(BEGIN)] + block + results[results.index(END) + len(END):]
        else:
            results = results.rstrip("\n") + "\n\n## Issue 14: exactly once under faults\n\n" + block + "\n"
        path.write_text(results, encoding="utf-8")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
