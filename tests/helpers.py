"""Test kernels: small templates that stand in for the real ones where a test is about kit's plumbing."""

from __future__ import annotations

from pathlib import Path

# Predicts every test row False (the majority class) and writes the files a train run writes.
CONSTANT_TEMPLATE = '''"""Test kernel: predict a constant."""

CONFIG: dict = {}  # kit:config

import csv
import json
import time

from runtime.paths import competition_dir, working_dir

def main(config):
    print("step 1 loss 0.69", flush=True)
    time.sleep(float(config.get("warmup_steps", 0)) / 10)
    test = competition_dir(config["competition"]) / "test.csv"
    with open(test, newline="") as fh:
        ids = [row["ID"] for row in csv.DictReader(fh)]
    with open(working_dir() / "submission.csv", "w") as fh:
        fh.write("ID,is_correct\\n" + "".join(f"{i},False\\n" for i in ids))
    (working_dir() / "metrics.json").write_text(json.dumps({"val_accuracy": 0.6, "val_rows": 10}))
    (working_dir() / "adapter").mkdir()
    (working_dir() / "adapter" / "weights.bin").write_bytes(b"0" * 10)
    print("done", flush=True)

if __name__ == "__main__":
    main(CONFIG)
'''

FAILING_TEMPLATE = '''"""Test kernel: fails."""

CONFIG: dict = {}  # kit:config

print("loading model", flush=True)
raise RuntimeError("CUDA out of memory while loading the model")
'''


def install_template(workspace: Path, text: str, kernel: str = "train") -> None:
    """Replace the workspace's template of `kernel` with `text`."""
    (workspace / "kernels" / f"{kernel}.py").write_text(text)

# Writes what the real train kernel writes, with made-up but deterministic numbers: per-step loss and learning
# rate in metrics.json, val_predictions.csv on the shared validation rows (fixed by val_seed), test_probs.csv and
# submission.csv. Its `seed` setting changes its predictions, so that runs differ.
PROBS_TEMPLATE = '''"""Test kernel: deterministic probabilities, realistic outputs."""

CONFIG: dict = {}  # kit:config

import csv
import json
import math
import random

from runtime.paths import competition_dir, working_dir

def main(config):
    comp = competition_dir(config["competition"])
    with open(comp / "train.csv", newline="") as fh:
        labels = [row["is_correct"] == "True" for row in csv.DictReader(fh)]
    val = sorted(random.Random(config["val_seed"]).sample(range(len(labels)), min(config["val_rows"], len(labels) // 2)))
    rng = random.Random(config["seed"])
    out = working_dir()
    with open(out / "val_predictions.csv", "w") as fh:
        fh.write("row,is_correct,prob_true\\n")
        right = 0
        for r in val:
            p = rng.uniform(0.55, 0.95) if rng.random() < 0.7 else rng.uniform(0.05, 0.45)
            p = p if labels[r] else 1 - p
            right += (p >= 0.5) == labels[r]
            fh.write(f"{r},{labels[r]},{p:.6f}\\n")
    with open(comp / "test.csv", newline="") as fh:
        ids = [row["ID"] for row in csv.DictReader(fh)]
    probs = [rng.random() for _ in ids]
    with open(out / "test_probs.csv", "w") as fh:
        fh.write("ID,prob_true\\n" + "".join(f"{i},{p:.6f}\\n" for i, p in zip(ids, probs)))
    with open(out / "submission.csv", "w") as fh:
        fh.write("ID,is_correct\\n" + "".join(f"{i},{p >= 0.5}\\n" for i, p in zip(ids, probs)))
    n, peak, warmup = 120, config["learning_rate"], config["warmup_steps"]
    steps = []
    for s in range(1, n + 1):
        lr = peak * s / warmup if s <= warmup else peak * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (n - warmup)))
        loss = 0.3 + 0.45 * math.exp(-s / 30) + rng.gauss(0, 0.08)
        steps.append({"step": s, "phase_step": s, "loss": round(loss, 5), "lr": lr, "tokens": 4000, "tokens_per_s": 900.0, "elapsed_s": s * 4.4})
    metrics = {"val_rows": len(val), "val_accuracy": right / len(val), "val_loss": 0.5, "threshold": 0.5, "test_rows": len(ids),
               "wall_seconds": 600.0, "train_loss_last": steps[-1]["loss"], "steps": steps}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print("done", flush=True)

if __name__ == "__main__":
    main(CONFIG)
'''

# A kernel for code competitions: predicts False for every test row it finds and records what it saw (rerun flag,
# rows, whether 127.0.0.1:$KIT_TEST_PORT answered) in seen.json. KIT_TEST_RERUN=fail|slow makes only the rerun fail
# or overrun its time limit, as a kernel that works on the visible rows and breaks on the hidden ones.
RERUN_TEMPLATE = '''"""Test kernel: a code-competition notebook."""

CONFIG: dict = {}  # kit:config

import csv
import json
import os
import socket
import time

from runtime.paths import competition_dir, working_dir

def main(config):
    rerun = bool(os.environ.get("KAGGLE_IS_COMPETITION_RERUN"))
    with open(competition_dir(config["competition"]) / "test.csv", newline="") as fh:
        ids = [row["ID"] for row in csv.DictReader(fh)]
    if rerun and os.environ.get("KIT_TEST_RERUN") == "fail":
        raise RuntimeError("the hidden rows broke me")
    if rerun and os.environ.get("KIT_TEST_RERUN") == "slow":
        time.sleep(60)
    online = False
    if os.environ.get("KIT_TEST_PORT"):
        try:
            socket.create_connection(("127.0.0.1", int(os.environ["KIT_TEST_PORT"])), timeout=2).close()
            online = True
        except OSError:
            pass
    with open(working_dir() / "submission.csv", "w") as fh:
        fh.write("ID,is_correct\\n" + "".join(f"{i},False\\n" for i in ids))
    with open(working_dir() / "test_probs.csv", "w") as fh:
        fh.write("ID,prob_true\\n" + "".join(f"{i},0.25\\n" for i in ids))
    (working_dir() / "seen.json").write_text(json.dumps({"rerun": rerun, "rows": len(ids), "online": online}))
    (working_dir() / "metrics.json").write_text(json.dumps({"val_accuracy": 0.6, "val_rows": 10, "wall_seconds": 1.5}))
    print("done", flush=True)

if __name__ == "__main__":
    main(CONFIG)
'''

# An inference-server notebook built on the kernels' own serve.py (predict, its budget, the serve / local-gateway
# branch) without a model: it answers each problem with the length of its text. On the rerun KIT_TEST_SERVE makes
# predict raise, or sleep past the gateway's deadline (a predict that ignores its budget), or never serve at all.
SERVE_TEMPLATE = '''"""Test kernel: an inference-server notebook."""

CONFIG: dict = {}  # kit:config

import json
import os
import time

from runtime.answering import server_spec
from runtime.paths import competition_dir, working_dir
from runtime.serve import RowAnswerer, serve_or_run_local_gateway
from runtime.task import Task

def main(config):
    mode = os.environ.get("KIT_TEST_SERVE", "") if os.environ.get("KAGGLE_IS_COMPETITION_RERUN") else ""
    if mode == "never":
        time.sleep(60)
    spec = server_spec(Task.from_dict(config["task"]))
    calls = []

    def answer(model, row, seconds):
        calls.append(row)
        if mode == "slow" and len(calls) > 1:
            time.sleep(spec.call_seconds + 2)
        return len(row["problem"]) % 1000

    answerer = RowAnswerer(spec, lambda: "no model", answer, lambda given: 0)
    if mode == "raise":
        def answerer(*args):
            raise RuntimeError("predict broke on the hidden rows")
    how = serve_or_run_local_gateway(spec, answerer, competition_dir(config["competition"]), working_dir())
    (working_dir() / "metrics.json").write_text(json.dumps({"server": how, "wall_seconds": 1.0}))
    print("done", flush=True)

if __name__ == "__main__":
    main(CONFIG)
'''
