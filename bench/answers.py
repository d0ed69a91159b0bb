"""Generated answers (issue 26): SmolLM2 on the practice answer competition, untrained against fine-tuned, by the
kernels as a user runs them: accuracy on the shared validation rows and seconds a row.

    python3 bench/answers.py untrained [--val-rows V] [--samples S] [--max-new-tokens T] [KEY=VALUE...]
    python3 bench/answers.py trained   [--train-rows N] [--val-rows V] [--samples S] [--max-new-tokens T] [KEY=VALUE...]

The practice answer competition (kit/practice/answer_competition.py): math word problems whose answers are exact
integers, seed 0, 4,000 train rows; the task is exactly what `kit practice init --task answer` writes into kit.toml
(prompt over `problem`, the worked `solution` taught as the completion, answers read from \\boxed{}). `untrained`
runs the infer kernel with no adapter, `trained` the train kernel (LoRA, the loss on the completion only), whose
validation loads the adapter it saved as the infer kernel does. Both generate for the same validation rows (fixed
by val_seed) with transformers' generate (vLLM where installed), N samples a row, majority vote. Records go to
$OUT/answers.json. On the device machine run it through bench/device.sh, which rebuilds the bundled GGUF.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import common
from common import PRACTICE, SMOLLM2, record

NAME = "answers"


def answer_tree(n_train: int) -> Path:
    """A Kaggle tree with the practice answer competition attached (no server: the kernels answer the rows)."""
    from kit.practice.competition import init_practice

    comp = PRACTICE / NAME
    if not (comp / "data" / "train.csv").is_file():
        init_practice(comp, n_train=n_train, n_test=50, force=True, task="answer")
    root = Path("/tmp/kaggle-" + NAME)
    link = root / "input" / "competitions" / "practice-math"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(comp / "data")
    return root


def run(kernel: str, settings: dict, label: str) -> dict:
    """The kernel with the practice answer task, as kit build renders it (the sampling settings and `task`)."""
    import json
    import subprocess
    import sys
    import time

    from kit.practice.answer_competition import task_table
    from kit.task import Task
    from kit.workspace.kernel_config import make_config, script_settings

    root = answer_tree(4000)
    config = script_settings(make_config(kernel, settings), generated=True)
    config["task"] = Task.from_dict(task_table(None, 0)).to_dict()
    working = root / "working"
    shutil.rmtree(working, ignore_errors=True)
    code = (f"import json,sys; sys.path.insert(0,{str(common.REPO / 'kernels')!r}); from {kernel} import main; "
            f"main(json.loads({json.dumps(json.dumps(config))}))")
    started = time.time()
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "KIT_KAGGLE_ROOT": str(root), "PYTHONUNBUFFERED": "1"},
                          capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    common.OUT.mkdir(parents=True, exist_ok=True)
    (common.OUT / f"{label}.log").write_text(log[-200000:])
    result = {"label": label, "rc": proc.returncode, "seconds": round(time.time() - started, 1)}
    if proc.returncode == 0 and (working / "metrics.json").is_file():
        metrics = json.loads((working / "metrics.json").read_text())
        keep = ("val_accuracy", "val_rows", "val_seconds", "val_seconds_per_row", "val_answered", "train_seconds", "train_rows",
                "train_loss_last", "generation_engine", "engine", "dtype", "gpu")
        result.update({k: metrics[k] for k in keep if k in metrics})
    else:
        result["error"] = log[-3000:]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["untrained", "trained"])
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--val-rows", type=int, default=100)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=224)
    parser.add_argument("extra", nargs="*", help="more settings, KEY=VALUE")
    args = parser.parse_intermixed_args()
    # 4-bit off (a 135M model needs no quantizing, and the GPU image has no bitsandbytes), compile and graphs off (a
    # generated answer's batches are never graphed: several targets a row; compiling would cost the short run more)
    settings = {"competition": "practice-math", "model": SMOLLM2, "val_rows": args.val_rows, "samples": args.samples,
                "max_new_tokens": args.max_new_tokens, "max_seq_length": 512, "batch_size": 32, "load_in_4bit": False,
                **dict(item.split("=", 1) for item in args.extra)}
    if args.what == "untrained":
        result = run("infer", {**settings, "test_rows": 1}, f"answers-untrained-{args.samples}")
    else:
        result = run("train", {**settings, "train_rows": args.train_rows, "predict_test": False, "compile": "off", "cuda_graphs": "off"},
                     f"answers-trained-{args.train_rows}-{args.samples}")
    record(NAME, {"what": args.what, "samples": args.samples, "max_new_tokens": args.max_new_tokens, **result})


if __name__ == "__main__":
    main()
