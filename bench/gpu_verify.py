"""Whether the train and infer kernels run on a GPU, every engine and precision (a CUDA GPU; the check of issue 3).

    python bench/gpu_verify.py prep            # random-weight Llama-3.1-8B architecture in /tmp/llama8b + practice data
    python bench/gpu_verify.py arch ENGINE     # train kernel on it: 4-bit (bf16 and fp16 compute), bf16, fp16
    python bench/gpu_verify.py learn [NAME=JSON ...]  # SmolLM2-135M: untrained vs trained accuracy on the private split
    python bench/gpu_verify.py adapter         # a short train run attached as run-1, then the infer kernel on its adapter

Each kernel run is a subprocess (fresh CUDA memory, fresh unsloth patches). Results go to $OUT/<mode>.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from common import OUT, SMOLLM2, kaggle_tree, private_accuracy, run_kernel
from common import prep as prep_models

MODEL_DIR = Path("/tmp/llama8b")


def save(mode: str, results) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{mode}.json").write_text(json.dumps(results, indent=1))


def prep() -> None:
    started = time.time()
    prep_models(["8b"])
    kaggle_tree("arch", 400, 64, seed=1)
    print(f"prep done in {time.time() - started:.0f}s", flush=True)


def arch(engine: str) -> None:
    prep()
    root = kaggle_tree("arch", 400, 64, seed=1)
    variants = [("4bit-bf16", True, "bf16"), ("4bit-fp16", True, "fp16"), ("bf16", False, "bf16"), ("fp16", False, "fp16")]
    results = []
    for name, four_bit, dtype in variants:
        settings = {"competition": "practice-math", "model": str(MODEL_DIR), "engine": engine, "load_in_4bit": four_bit,
                    "dtype": dtype, "train_rows": 48, "val_rows": 16, "test_rows": 16, "batch_size": 8, "max_steps": 4,
                    "warmup_steps": 1, "logging_steps": 1, "save_steps": 2, "max_seq_length": 1024}
        results.append(run_kernel("train", settings, root, f"arch-{engine}-{name}"))
        save(f"arch-{engine}", results)


def learn(extra: list[str]) -> None:
    root = kaggle_tree("learn", 20000, 2000, seed=0)
    base = {"competition": "practice-math", "model": SMOLLM2}
    results = []
    record = run_kernel("infer", {**base}, root, "learn-untrained")
    record["private_accuracy"] = private_accuracy(root, "learn")
    results.append(record)
    save("learn", results)
    variants = [("default", {})] + [(item.split("=", 1)[0], json.loads(item.split("=", 1)[1])) for item in extra]
    for name, settings in variants:
        record = run_kernel("train", {**base, **settings}, root, f"learn-{name}")
        record["private_accuracy"] = private_accuracy(root, "learn")
        record["settings"] = settings
        results.append(record)
        save("learn", results)
    for r in results:
        print(r["label"], "rc", r["rc"], "private", r.get("private_accuracy"), "val", r.get("val_accuracy"), "s", r["seconds"], flush=True)


def adapter() -> None:
    """Train a short run, attach its output as run-1, and score with the inference kernel and that adapter."""
    import shutil

    root = kaggle_tree("learn", 20000, 2000, seed=0)
    base = {"competition": "practice-math", "model": SMOLLM2}
    results = [run_kernel("train", {**base, "train_rows": 800, "predict_test": False}, root, "adapter-train")]
    shutil.rmtree(root / "input" / "kit-run-1", ignore_errors=True)
    shutil.copytree(root / "working", root / "input" / "kit-run-1")
    record = run_kernel("infer", {**base, "adapter_run": "run-1"}, root, "adapter-infer")
    record["private_accuracy"] = private_accuracy(root, "learn")
    results.append(record)
    save("adapter", results)


if __name__ == "__main__":
    mode = sys.argv[1]
    OUT.mkdir(parents=True, exist_ok=True)
    if mode == "prep":
        prep()
    elif mode == "arch":
        arch(sys.argv[2])
    elif mode == "learn":
        learn(sys.argv[2:])
    elif mode == "adapter":
        adapter()
