"""GPU verification of the train/infer kernels (issue 3), run on the device machine.

    python bench/gpu_verify.py prep            # random-weight Llama-3.1-8B architecture in /tmp/llama8b + practice data
    python bench/gpu_verify.py arch ENGINE     # train kernel on it: 4-bit (bf16 and fp16 compute), bf16, fp16
    python bench/gpu_verify.py learn [NAME=JSON ...]  # SmolLM2-135M: untrained vs trained accuracy on the private split

Each kernel run is a subprocess (fresh CUDA memory, fresh unsloth patches). Results go to $OUT/<mode>.json.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("OUT", "/tmp/out"))
MODEL_DIR = Path("/tmp/llama8b")
PRACTICE = Path("/tmp/practice")
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "kernels"))  # the kernels' runtime, imported as `runtime.<module>`


def llama31_8b_config():
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192},
        bos_token_id=128000, eos_token_id=128001, tie_word_embeddings=False,
    )


def make_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from kit.practice.data import generate

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    rows, _ = generate(1, 300, 0)
    corpus = [f"{r.question} {r.answer} {r.solution} True False" for r in rows]
    trainer = trainers.BpeTrainer(vocab_size=4000, special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>")


def kaggle_tree(name: str, n_train: int, n_test: int, seed: int = 0) -> Path:
    """A Kaggle-like tree with the practice competition attached; returns its root (KIT_KAGGLE_ROOT)."""
    from kit.practice.competition import init_practice

    root = Path("/tmp/kaggle-" + name)
    comp = PRACTICE / name
    if not (comp / "data" / "train.csv").is_file():
        init_practice(comp, seed=seed, n_train=n_train, n_test=n_test, force=True)
    link = root / "input" / "competitions" / "practice-math"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(comp / "data")
    return root


def run_kernel(kernel: str, settings: dict, root: Path, label: str) -> dict:
    """Run kernels/<kernel>.main(config) in a subprocess under a fresh working folder; return its record."""
    from kit.workspace.kernel_config import make_config, script_settings

    config = script_settings(make_config(kernel, settings))
    working = root / "working"
    subprocess.run(["rm", "-rf", str(working)], check=True)
    code = (f"import json,sys; sys.path.insert(0,{str(REPO / 'kernels')!r}); from {kernel} import main; "
            f"main(json.loads({json.dumps(json.dumps(config))}))")
    env = {**os.environ, "KIT_KAGGLE_ROOT": str(root), "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    started = time.time()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    seconds = time.time() - started
    log = proc.stdout + proc.stderr
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{label}.log").write_text(log[-200000:])
    record = {"label": label, "rc": proc.returncode, "seconds": round(seconds, 1)}
    if proc.returncode == 0 and (working / "metrics.json").is_file():
        metrics = json.loads((working / "metrics.json").read_text())
        record.update({k: v for k, v in metrics.items() if k != "steps"})
        record["losses"] = [s["loss"] for s in metrics.get("steps", [])]
    else:
        record["error"] = log[-3000:]
    print(json.dumps({k: v for k, v in record.items() if k not in ("losses",)})[:1500], flush=True)
    return record


def private_accuracy(root: Path, name: str) -> float | None:
    """Accuracy of working/submission.csv on the practice competition's private rows."""
    submission = root / "working" / "submission.csv"
    if not submission.is_file():
        return None
    predicted = {r["ID"]: r["is_correct"] for r in csv.DictReader(open(submission))}
    truth = [r for r in csv.DictReader(open(PRACTICE / name / "hidden" / "solution.csv")) if r["Usage"] == "Private"]
    return sum(predicted.get(r["ID"]) == r["is_correct"] for r in truth) / len(truth)


def save(mode: str, results) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{mode}.json").write_text(json.dumps(results, indent=1))


def prep() -> None:
    import torch
    from transformers import AutoModelForCausalLM

    started = time.time()
    if not (MODEL_DIR / "config.json").is_file():
        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(llama31_8b_config(), dtype=torch.bfloat16)
        model.save_pretrained(MODEL_DIR, max_shard_size="5GB")
        make_tokenizer().save_pretrained(MODEL_DIR)
        del model
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
