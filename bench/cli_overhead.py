"""Issue 6, kit's own overhead: `kit --help` and `kit leaderboard` on a 1,000-row leaderboard.csv, as whole processes.

    python bench/cli_overhead.py [runs]     # median [min-max] of `runs` timed runs (default 10) after one warm-up

The leaderboard is written into a fresh workspace (kit init) with every column of kit's schema filled.
"""

from __future__ import annotations

import csv
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(command: list[str], cwd: Path, runs: int) -> str:
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)  # warm-up: file cache, .pyc
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        seconds.append(time.perf_counter() - started)
    return f"{statistics.median(seconds):.3f} s [{min(seconds):.3f}-{max(seconds):.3f}]"


def main(runs: int) -> None:
    from kit.leaderboard.sheet import SCHEMA

    kit = [str(Path(sys.executable).with_name("kit"))]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        subprocess.run(kit + ["init"], cwd=root, check=True, capture_output=True)
        rng = random.Random(0)
        with open(root / "leaderboard.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([c.name for c in SCHEMA])
            for i in range(1, 1001):
                row = {c.name: "" for c in SCHEMA}
                row.update(run=f"run-{i}", kernel="train", status="complete", backend="local", model="auto", prompt="grader",
                           train_rows=8000, r=32, lora_alpha=64, learning_rate=2e-4)
                for name in ("val_accuracy", "public_score", "private_score"):
                    if name in row:
                        row[name] = f"{0.6 + 0.2 * rng.random():.4f}"
                writer.writerow(row.values())
        print(f"kit --help: {timed(kit + ['--help'], root, runs)}")
        print(f"kit leaderboard (1,000 rows): {timed(kit + ['leaderboard'], root, runs)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
