"""Issue 30: what README command (1) costs, from a fresh clone, as a new user runs it.

    python bench/readme_command.py [--runs 3] [--repo /work/main] [--commit HEAD] [--out bench/results/issue30]

Each run clones the repository at the commit into a new folder, takes README.md's first ```bash block from that
clone, and runs it in two timed parts with bash from the clone's root: the installs (everything before
`kit practice init`: the venv, torch, kit, the model package) and the main job (the rest: the practice competition, the
train kernel with --wait, the submission, the leaderboard, the run's summary). kit's model cache (KIT_CACHE_DIR) is a
new folder each run, so the model is prepared as on a first run. Beside each step's wall time: its CPU time (every
process of the clone, from /proc) and the machine's load (1-minute load average every 5 s). On a shared machine the
load says how much else was running, and the CPU time what the step itself costs.

Prints a Markdown table (each run, then the median and the range) and writes every run's figures and the main job's
full output to OUT/readme_command-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

SPLIT = " && kit practice init"


def readme_command(readme: str) -> tuple[str, str]:
    """(installs, main job) of README.md's first bash block."""
    block = re.search(r"```bash\n(.*?)\n```", readme, re.S)
    if not block or SPLIT not in block.group(1):
        raise SystemExit(f"README.md's first bash block has no '{SPLIT.strip()}' to split the installs from the main job")
    command = " ".join(block.group(1).split())
    installs, _, rest = command.partition(SPLIT)
    return installs, SPLIT.removeprefix(" && ") + rest


class Watch:
    """While a step runs: the 1-minute load average every 5 s, and the CPU time of every process of the clone (its
    venv's python: kit's commands and the detached kernel alike), read from /proc every 0.5 s. On a shared machine the
    wall time says how long a person waited; the CPU time is the step's own work, which the other jobs do not change."""

    def __init__(self, clone: Path) -> None:
        self.needle = str(clone).encode()
        self.load: list[float] = []
        self.ticks: dict[tuple[str, str], int] = {}  # (pid, start time) -> the most utime + stime seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        last_load = 0.0
        while not self._stop.is_set():
            if time.monotonic() - last_load >= 5:
                self.load.append(os.getloadavg()[0])
                last_load = time.monotonic()
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    if self.needle not in (proc / "cmdline").read_bytes():
                        continue
                    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                key = (proc.name, fields[19])  # starttime: a reused pid is another process
                self.ticks[key] = max(self.ticks.get(key, 0), int(fields[11]) + int(fields[12]))
            self._stop.wait(0.5)

    def cpu_seconds(self) -> float:
        return sum(self.ticks.values()) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> "Watch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def timed(command: str, cwd: Path, env: dict[str, str]) -> dict:
    with Watch(cwd) as watch:
        started = time.monotonic()
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - started
    return {"seconds": round(seconds, 1), "exit": done.returncode, "cpu_seconds": round(watch.cpu_seconds(), 1),
            "load_mean": round(statistics.fmean(watch.load), 2), "load_max": round(max(watch.load), 2),
            "stdout": done.stdout, "stderr": done.stderr}


def one_run(repo: str, commit: str, work: Path) -> dict:
    clone = work / "kit"
    subprocess.run(["git", "clone", "-q", repo, str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
    installs, job = readme_command((clone / "README.md").read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "KIT_WORKSPACE")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if "venv" not in p)
    env["KIT_CACHE_DIR"] = str(work / "kit-cache")
    install = timed(installs, clone, env)
    main_job = timed(". .venv/bin/activate && " + job, clone, env) if install["exit"] == 0 else None
    if main_job is not None:  # the kernel's own log, for where its time went
        logs = sorted(clone.glob(".kit/local/run-*/log.txt"))
        main_job["kernel_log"] = logs[0].read_text(encoding="utf-8", errors="replace")[-20000:] if logs else ""
    return {"installs": {k: v for k, v in install.items() if k not in ("stdout", "stderr")} | {"tail": install["stderr"][-2000:]},
            "main_job": main_job, "commands": {"installs": installs, "main_job": job}}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} s [{min(values):.0f}-{max(values):.0f}]" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "issue30")
    args = parser.parse_args()
    commit = subprocess.run(["git", "-C", args.repo, "rev-parse", args.commit], capture_output=True, text=True, check=True).stdout.strip()
    started = dt.datetime.now(dt.timezone.utc)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
               "cpu": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                            if line.startswith("model name")), "") if Path("/proc/cpuinfo").exists() else ""}
    runs = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="readme-command-") as folder:
            run = one_run(args.repo, commit, Path(folder))
        run["ended"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        runs.append(run)
        job = run["main_job"] or {}
        print(f"run {i + 1}: installs {run['installs']['seconds']} s (exit {run['installs']['exit']}), main job "
              f"{job.get('seconds', '-')} s, {job.get('cpu_seconds', '-')} CPU-s (exit {job.get('exit', '-')}), "
              f"load {job.get('load_mean', '-')} mean / {job.get('load_max', '-')} max", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"readme_command-{started:%Y%m%dT%H%M}.json"
    path.write_text(json.dumps({"commit": commit, "started": started.isoformat(timespec="seconds"), "machine": machine, "runs": runs}, indent=1))
    ok = [r for r in runs if r["main_job"] and r["main_job"]["exit"] == 0]
    print(f"\ncommit {commit[:7]}, {started:%Y-%m-%d %H:%M} UTC, {machine['cpus']} CPUs ({machine['cpu']}); {path}\n")
    print("| run | installs (wall) | main job (wall) | main job (CPU time) | load during the main job (mean / max) | exit |")
    print("|---|---|---|---|---|---|")
    for i, r in enumerate(runs, 1):
        job = r["main_job"] or {}
        print(f"| {i} | {r['installs']['seconds']:.0f} s | {job.get('seconds', 0):.0f} s | {job.get('cpu_seconds', 0):.0f} s | "
              f"{job.get('load_mean', '-')} / {job.get('load_max', '-')} | {job.get('exit', r['installs']['exit'])} |")
    print(f"| median [range] | {spread([r['installs']['seconds'] for r in runs])} | {spread([r['main_job']['seconds'] for r in ok])} | "
          f"{spread([r['main_job']['cpu_seconds'] for r in ok])} | | {len(ok)}/{len(runs)} exit 0 |")


if __name__ == "__main__":
    main()
