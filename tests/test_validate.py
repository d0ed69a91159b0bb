"""Submission validation reads the file row by row: memory bounded by the sample, not the file; IDs of any shape."""

from __future__ import annotations

import tracemalloc

import pytest

from kit.errors import SubmissionError
from kit.submissions.validate import find_problems, validate_submission


def _write(path, header, rows):
    path.write_text(header + "\n" + "".join(f"{r}\n" for r in rows))
    return path


@pytest.mark.fault(number=13, scenario="a large submission.csv (60,000 rows here; 194 MB in bench/submission_memory.py)",
                   sees="checked row by row: peak memory under 0.6 x the file here (21-31 MB for 194 MB), valid or refused in one line")
def test_a_large_file_is_checked_in_memory_bounded_by_the_sample(tmp_path):
    # 60,000 rows (0.7 MB): the old reader kept every row as lists of strings (about 10 MB for this file, 816 MB
    # for 19.5 MB). Streaming keeps a byte per ID, a few buffers and the few problems it shows.
    n = 60_000
    sample = _write(tmp_path / "sample.csv", "ID,is_correct", (f"{i},False" for i in range(n)))
    sub = _write(tmp_path / "submission.csv", "ID,is_correct", (f"{i},{'true' if i % 2 else 'False'}" for i in range(n)))
    tracemalloc.start()
    try:
        valid = validate_submission(sub, sample, upload_dir=tmp_path / "upload")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert valid.rows == n and valid.true_share == pytest.approx(0.5)
    assert (tmp_path / "upload" / "submission.csv").read_text().splitlines()[:3] == ["ID,is_correct", "0,False", "1,True"]
    assert peak < 0.6 * sub.stat().st_size, f"peak {peak / 1e6:.1f} MB for a {sub.stat().st_size / 1e6:.1f} MB file"


@pytest.mark.fault(number=13, scenario="a submission.csv of 50,000 unknown IDs", sees="refused with the first 3 and \"(and 49987 more)\"; nothing written")
def test_a_file_of_only_bad_rows_is_refused_with_a_count_not_a_list(tmp_path):
    sample = _write(tmp_path / "sample.csv", "ID,is_correct", (f"{i},False" for i in range(10)))
    sub = _write(tmp_path / "submission.csv", "ID,is_correct", (f"{i},True" for i in range(50_000)))
    tracemalloc.start()
    try:
        with pytest.raises(SubmissionError) as refused:
            validate_submission(sub, sample, upload_dir=tmp_path / "upload")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "unknown ID '10'" in str(refused.value) and "(and 49987 more)" in str(refused.value)
    assert not (tmp_path / "upload" / "submission.csv").exists() and not list((tmp_path / "upload").iterdir())
    assert peak < 0.5 * sub.stat().st_size


@pytest.mark.parametrize("ids", [["q-a", "q-b", "q-c", "q-d", "q-e"], ["7", "700000000", "3", "12", "5"], ["007", "1", "2", "3", "4"]])
def test_ids_of_any_shape_are_checked_alike(tmp_path, ids):
    sample = _write(tmp_path / "sample.csv", "ID,is_correct", (f"{i},False" for i in ids))
    good = _write(tmp_path / "good.csv", "ID,is_correct", (f"{i},True" for i in reversed(ids)))
    assert find_problems(good, sample) == []
    bad = _write(tmp_path / "bad.csv", "ID,is_correct", [f"{ids[0]},True", f"{ids[0]},False", "8,True", f"{ids[1]},True"])
    problems = find_problems(bad, sample)
    assert problems == [f"line 3: duplicate ID {ids[0]!r}", "line 4: unknown ID '8'", f"3 IDs missing: {ids[2]}, {ids[3]}, {ids[4]}"]
