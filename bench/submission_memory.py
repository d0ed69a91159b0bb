"""Issue 25's figure: checking a 200 MB submission.csv takes bounded memory (kit/submissions/validate.py).

It writes the files itself (under a temporary folder, or --dir), then checks each in a fresh process and prints
the seconds and the process's peak resident memory:

    python bench/submission_memory.py            # a 200 MB file (15 M rows) against a 10,000-ID sample
    python bench/submission_memory.py --mb 20    # a smaller one

Two cases: the file against a 10,000-ID sample (the practice competition's size: refused for its unknown IDs,
after reading every row), and a valid file of as many rows against a sample of those IDs (memory then grows with
the sample, the competition's test set, not with the file).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROW_BYTES = 14  # "12345678,True\n" on average, about


def write_files(folder: Path, mb: int) -> dict[str, Path]:
    """sample_small.csv (10,000 IDs), sample_big.csv (every ID of the big file), submission.csv (`mb` MB)."""
    rows = mb * 1_000_000 // ROW_BYTES
    files = {"small": folder / "sample_small.csv", "big": folder / "sample_big.csv", "submission": folder / "submission.csv"}
    with open(files["small"], "w") as fh:
        fh.write("ID,is_correct\n" + "".join(f"{i},False\n" for i in range(10_000)))
    with open(files["big"], "w") as big, open(files["submission"], "w") as sub:
        big.write("ID,is_correct\n")
        sub.write("ID,is_correct\n")
        for start in range(0, rows, 100_000):
            ids = range(start, min(start + 100_000, rows))
            big.write("".join(f"{i},False\n" for i in ids))
            sub.write("".join(f"{i},{'True' if i % 3 else 'false'}\n" for i in ids))
    return files


CHILD = """
import json, resource, sys, time
from pathlib import Path
from kit.errors import SubmissionError
from kit.submissions.validate import validate_submission
start = time.perf_counter()
try:
    valid = validate_submission(Path(sys.argv[1]), Path(sys.argv[2]), upload_dir=Path(sys.argv[3]))
    outcome = f"valid, {valid.rows} rows, {len(valid.changes)} change(s)"
except SubmissionError as exc:
    outcome = "refused: " + str(exc)[:160]
seconds = time.perf_counter() - start
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": round(seconds, 1), "peak_mb": round(peak_mb), "outcome": outcome}))
"""


def measure(submission: Path, sample: Path, upload_dir: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(submission), str(sample), str(upload_dir)], capture_output=True,
                          text=True, check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="the submission's size in MB")
    parser.add_argument("--dir", type=Path, help="where to write the files (a temporary folder if not given)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        files = write_files(Path(tmp), args.mb)
        size = files["submission"].stat().st_size / 1e6
        for name in ("small", "big"):
            result = measure(files["submission"], files[name], Path(tmp) / "upload")
            print(json.dumps({"file_mb": round(size), "sample": name, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
