"""Behaviour check for refactors of the kernels: build the real train and infer kernels with kit's builder, run each
as `python kernel.py` on the CPU on a tiny Llama (2 layers, width 32, random weights, an in-process BPE tokenizer) and
a small synthetic competition, and keep what they wrote.

    python bench/kernel_parity.py run OUT_DIR          # OUT_DIR/train/ and OUT_DIR/infer/: metrics, predictions, logs
    python bench/kernel_parity.py compare BEFORE AFTER # the same figures (timings aside) and the same predictions?

Everything is seeded and runs in fp32 on the CPU, so two runs of the same code give the same numbers bit for bit.
"The same" means: every key of BEFORE's JSON files has the same value in AFTER's, and every column of BEFORE's CSV
files has the same cells in AFTER's (by name, row for row); what AFTER adds (issue 24: val_metric, p_<class>
columns) is listed, not compared. The run's own folder in a value (the model's path) is compared without it.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Wall-clock figures: they differ between any two runs.
TIMING_KEYS = {"wall_seconds", "train_seconds", "val_seconds", "test_seconds", "train_tokens_per_s", "test_rows_per_s",
               "tokens_per_s", "elapsed_s"}
OUTPUT_FILES = ("metrics.json", "config.json", "val_predictions.csv", "submission.csv", "test_probs.csv")


def tiny_model(folder: Path) -> None:
    """A 2-layer Llama with random weights (seed 0) and a byte-level BPE tokenizer trained in-process."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["Question: what is 12 + 30? Given answer: 42. Solution: x = 12 + 30 print(x) True False correct"] * 50
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>", "<pad>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def competition(folder: Path, n_train: int = 96, n_test: int = 24) -> None:
    """train.csv and test.csv of arithmetic questions, 40% of the given answers right."""
    folder.mkdir(parents=True)
    with open(folder / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "answer", "solution", "is_correct"])
        for i in range(n_train):
            ok = i % 5 < 2
            w.writerow([f"what is 12 + {i}?", str(12 + i if ok else 13 + i), f"x = 12 + {i}\nprint(x)\n{12 + i}", str(ok)])
    with open(folder / "test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ID", "question", "answer", "solution"])
        for i in range(n_test):
            w.writerow([i, f"what is 30 + {i}?", str(30 + i if i % 3 else 31 + i), f"x = 30 + {i}\nprint(x)\n{30 + i}"])


def build(kernel: str, settings: dict, folder: Path) -> Path:
    """kit build of the repo's kernel template with `settings`; returns the script."""
    from kit.build.script import build_kernel
    from kit.workspace.kernel_config import make_config

    return build_kernel(kernel, make_config(kernel, settings), folder, REPO / "kernels", run_id="run-1").script


def run_kernel(script: Path, root: Path, out: Path) -> None:
    """`python kernel.py` with the Kaggle tree at `root`; its working folder and log copied to `out`."""
    env = {**os.environ, "KIT_KAGGLE_ROOT": str(root), "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, str(script)], env=env, cwd=script.parent, capture_output=True, text=True, timeout=900)
    (script.parent / "log.txt").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"{script} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    shutil.copytree(root / "working", out, ignore=shutil.ignore_patterns("*.pt", "adapter", "checkpoints"))
    shutil.copy(script.parent / "log.txt", out / "log.txt")


def run(out: Path) -> None:
    """Train (6 steps, validation, test) then infer with its adapter; outputs under out/train and out/infer."""
    work = out / "work"
    root = work / "kaggle"
    tiny_model(work / "model")
    competition(root / "input" / "competitions" / "tiny-comp")
    common = {"competition": "tiny-comp", "model": str(work / "model"), "val_rows": 16}
    train = build("train", {**common, "train_rows": 48, "batch_size": 4, "max_steps": 6, "r": 4, "lora_alpha": 8, "learning_rate": 1e-3,
                            "warmup_steps": 1, "logging_steps": 1, "threshold": "tune"}, work / "train")
    run_kernel(train, root, out / "train")
    shutil.copytree(root / "working", root / "input" / "kit-run-1")  # the infer kernel finds run-1's adapter there
    shutil.rmtree(root / "working")
    infer = build("infer", {**common, "adapter_run": "run-1", "threshold": "tune", "batch_size": 8}, work / "infer")
    run_kernel(infer, root, out / "infer")


def without_timings(value):
    """`value` with every wall-clock figure dropped (recursively)."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def csv_columns(path: Path) -> dict[str, list[str]]:
    """A CSV file as {column: its cells, top to bottom}."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    return {name: [r[i] for r in body] for i, name in enumerate(header)}


def same_keys(a, b, root_a: str, root_b: str) -> bool:
    """Whether every key of `a` (recursively in dicts) has the same value in `b`, each run's folder left out."""
    if isinstance(a, dict):
        return isinstance(b, dict) and all(k in b and same_keys(v, b[k], root_a, root_b) for k, v in a.items())
    if isinstance(a, str) and isinstance(b, str):
        return a.replace(root_a, "") == b.replace(root_b, "")
    return a == b


def compare(before: Path, after: Path) -> bool:
    """Print, per kernel and file, whether AFTER has BEFORE's figures; True when it has all of them."""
    same = True
    for kernel in ("train", "infer"):
        for name in OUTPUT_FILES:
            a, b = before / kernel / name, after / kernel / name
            if not a.exists() and not b.exists():
                continue
            added: list[str] = []
            if not (a.exists() and b.exists()):
                equal = False
            elif name.endswith(".json"):
                old, new = without_timings(json.loads(a.read_text())), without_timings(json.loads(b.read_text()))
                equal = same_keys(old, new, str(before.resolve()), str(after.resolve()))
                added = [k for k in new if k not in old]
            else:
                old, new = csv_columns(a), csv_columns(b)
                equal = all(new.get(column) == cells for column, cells in old.items())
                added = [c for c in new if c not in old]
            print(f"{kernel}/{name}: {'the same' if equal else 'DIFFERENT'}" + (" (timings aside)" if name == "metrics.json" else "")
                  + (f"; added: {', '.join(added)}" if added else ""))
            same &= equal
    return same


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        run(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(0 if compare(Path(sys.argv[2]), Path(sys.argv[3])) else 1)
    else:
        sys.exit(__doc__)
