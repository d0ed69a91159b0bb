"""What every benchmark of bench/ shares (imported by them, never run): where records go, the rows every trainer
sees, the random-weight models, the practice competition laid out as Kaggle lays it out, and the statistics of the
protocol at the top of bench/RESULTS.md (repeats reported as median and range, every run listed).

Records: each script appends its measurements to $OUT/<name>.json (one JSON list; processes run one after another,
so read-modify-write is safe), with the date, the GPU and the versions, and prints a `RECORD {...}` line.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "bench", REPO / "kernels", REPO):  # kit, the kernels' runtime (`runtime.<module>`), bench's modules
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
OUT = Path(os.environ.get("OUT", "/tmp/out"))
PRACTICE = Path("/tmp/practice")
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
MODELS = {"8b": "/tmp/llama8b", "smollm2": "/tmp/smollm2-135m", "qwen15": "/tmp/qwen25-15b"}  # random weights (prep)
MATMUL_FLOPS = 800e12  # bf16 dense, measured on these GPUs (shared/reference/gpu-baselines.md, KINDS.md: 769-798)
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
T4 = os.environ.get("T4") == "1"  # the T4 profile emulated on this GPU (emulate_t4): fp16, no flash attention, 15 GiB
T4_MEMORY = 15 * 2**30


# ---------------------------------------------------------------- records


def machine() -> dict:
    """The GPU and the versions a record was measured with."""
    found = {}
    for name in ("torch", "transformers", "peft", "trl", "unsloth", "datasets", "bitsandbytes"):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = getattr(module, "__version__", "?")
    gpu = None
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        gpu = sys.modules["torch"].cuda.get_device_name(0)
    return {"gpu": gpu, "versions": found, "commit": os.environ.get("KIT_COMMIT", "")}


def record(name: str, entry: dict) -> None:
    """Append one measurement to $OUT/<name>.json and print it."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    if T4:
        entry = {**entry, "t4_profile": True}
    entries = json.loads(path.read_text()) if path.is_file() else []
    entries.append({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **machine(), **entry})
    path.write_text(json.dumps(entries, indent=1))
    short = {k: v for k, v in entry.items() if k not in ("step_ms", "step_tokens", "profile", "losses", "prob_true")}
    print("RECORD", json.dumps(short)[:2500], flush=True)


def guarded(name: str, what: str, fn, **context) -> None:
    """Run one measurement; an error is recorded (not hidden) and the next measurement still runs."""
    try:
        fn()
    except Exception:
        record(name, {"what": what, "error": traceback.format_exc()[-2500:], **context})


# ---------------------------------------------------------------- statistics


def summary(values: list[float]) -> dict:
    """Median and range of repeats, with every value listed (the protocol: no run left out)."""
    values = [v for v in values if v is not None]
    if not values:
        return {}
    return {"median": round(statistics.median(values), 4 if max(values) < 10 else 1), "min": min(values), "max": max(values),
            "n": len(values), "values": values}


def windows(marks: list[float], step_tokens: list[int], first: int, count: int) -> list[dict]:
    """Split the steps after the first `first` into `count` equal consecutive windows: each window's useful tokens/s.
    marks[i] is the time step i ended (marks[0] = training started), step_tokens[i] step i+1's useful tokens."""
    steps = len(step_tokens) - first
    size = steps // count
    out = []
    for k in range(count):
        a, b = first + k * size, first + (k + 1) * size
        seconds = marks[b] - marks[a]
        tokens = sum(step_tokens[a:b])
        out.append({"steps": b - a, "seconds": round(seconds, 2), "useful_tokens_per_s": round(tokens / seconds),
                    "rows_per_s": None})
    return out


def steady_rate(marks: list[float], step_tokens: list[int]) -> dict:
    """Tokens/s over the steps that took at most twice the median time per token (a step that met a new shape and
    compiled is left out), with the count and seconds of those left out."""
    per_token = sorted((b - a) / max(t, 1) for a, b, t in zip(marks, marks[1:], step_tokens))
    median = per_token[len(per_token) // 2]
    kept = [(b - a, t) for a, b, t in zip(marks, marks[1:], step_tokens) if (b - a) / max(t, 1) <= 2 * median]
    slow = [(b - a) for a, b, t in zip(marks, marks[1:], step_tokens) if (b - a) / max(t, 1) > 2 * median]
    return {"steady_tokens_per_s": round(sum(t for _, t in kept) / sum(d for d, _ in kept)), "slow_steps": len(slow),
            "slow_steps_seconds": round(sum(slow), 1)}


def cuda_profile(step, steps: int) -> list[dict]:
    """GPU time by kernel over `steps` calls of step(), largest first (torch.profiler)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    rows = [(e.key, e.device_time_total, e.count) for e in prof.key_averages() if e.device_time_total > 0]
    total = sum(t for _, t, _ in rows)
    rows.sort(key=lambda r: -r[1])
    return [{"kernel": k[:90], "ms_per_step": round(t / 1000 / steps, 2), "share": round(t / total, 3), "calls": c} for k, t, c in rows[:30]]


def run_timing(marks: list[float], step_tokens: list[int], *, warm: int, repeats: int, rows_per_step: int,
               setup_s: float) -> dict:
    """The protocol's figures of one training run of len(step_tokens) steps: `repeats` consecutive equal windows after
    `warm` warm-up steps (their rates, median and range), the steady rate, and the wall time from the first step
    (compilation included) to the end of the run, plus the setup before it (load, LoRA, compile wrappers)."""
    parts = windows(marks, step_tokens, warm, repeats)
    for part in parts:
        part["rows_per_s"] = round(rows_per_step * part["steps"] / part["seconds"], 2)
    rates = [p["useful_tokens_per_s"] for p in parts]
    timed_steps = sum(p["steps"] for p in parts)
    timed_s = sum(p["seconds"] for p in parts)
    return {"steps": len(step_tokens), "warm_steps": warm, "warm_seconds": round(marks[warm] - marks[0], 1),
            "train_wall_s": round(marks[-1] - marks[0], 1), "setup_s": round(setup_s, 1), "windows": parts,
            "useful_tokens_per_s": summary(rates), "seconds_per_step": round(timed_s / timed_steps, 4),
            "total_useful_tokens": sum(step_tokens), **steady_rate(marks[warm:], step_tokens[warm:]),
            "step_ms": [round(1000 * (b - a)) for a, b in zip(marks, marks[1:])], "step_tokens": step_tokens}


def projected_wall(timing: dict, steps: int) -> float:
    """Wall time of a run of `steps` steps projected from a measured one: its warm-up (compilation included) plus the
    remaining steps at its timed seconds per step. A projection, labelled as such wherever it is shown."""
    return round(timing["warm_seconds"] + (steps - timing["warm_steps"]) * timing["seconds_per_step"], 1)


# ---------------------------------------------------------------- rows


def length_mix(n: int, seed: int) -> list[int]:
    """Row lengths of the reference competition's mix: log-normal around 348 tokens, clipped to 96..1929."""
    rng = random.Random(seed)
    return [int(min(1929, max(96, rng.lognormvariate(math.log(348), 0.45)))) for _ in range(n)]


def random_rows(lengths: list[int], seed: int, vocab: int = 128256) -> list[list[int]]:
    """Random token ids (speed does not depend on them) inside the model's vocabulary."""
    rng = random.Random(seed)
    top = min(vocab, 120000)
    return [[rng.randrange(1000, top) for _ in range(n)] for n in lengths]


def labels_for(n: int) -> list[int]:
    """One label token after each prompt, alternating two ids (the loss is on the label only)."""
    return [500 + (i % 2) for i in range(n)]


# ---------------------------------------------------------------- models


def llama31_8b_config():
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 8192},
        bos_token_id=128000, eos_token_id=128001, tie_word_embeddings=False,
    )


def smollm2_config():
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                       num_key_value_heads=3, max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=100000.0,
                       tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)


def qwen15_config():
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                       num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6, rope_theta=1000000.0,
                       tie_word_embeddings=True, use_sliding_window=False, bos_token_id=151643, eos_token_id=151643)


MODEL_CONFIGS = {"8b": llama31_8b_config, "smollm2": smollm2_config, "qwen15": qwen15_config}


def make_tokenizer():
    """A small BPE tokenizer trained on practice rows (the random-weight models need one; speed ignores it)."""
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


def prep(keys: list[str]) -> None:
    """The random-weight models on local disk (MODELS), made on the GPU in bf16; kept while the machine is warm."""
    import torch
    from transformers import AutoModelForCausalLM

    for key in keys:
        folder = Path(MODELS[key])
        if (folder / "config.json").is_file():
            continue
        started = time.time()
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            model = AutoModelForCausalLM.from_config(MODEL_CONFIGS[key](), dtype=torch.bfloat16)
        model.save_pretrained(folder, max_shard_size="5GB")
        make_tokenizer().save_pretrained(folder)
        del model
        print(f"prep {key}: {time.time() - started:.0f} s", flush=True)


def model_facts(path: str) -> dict:
    """Parameter count (all weights, as the bounds count them) and the bf16 training bound at 4N FLOPs a token."""
    from transformers import AutoConfig

    from runtime.plan import bf16_weight_bytes

    config = AutoConfig.from_pretrained(path)
    params = bf16_weight_bytes(config) // 2
    return {"model": Path(path).name, "params": params, "bound_tokens_per_s": round(MATMUL_FLOPS / (4 * params)), "vocab": config.vocab_size}


def free_gpu() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def emulate_t4() -> None:
    """A T4 on this GPU, as far as the code outside Triton and PyTorch can tell: compute capability 7.5 (so no bf16 and
    no flash attention are chosen), flash attention off in PyTorch's SDPA, and 15 GiB for this process. Call before
    unsloth or transformers is imported: they read the capability once."""
    import torch

    real = torch.cuda.get_device_capability

    def capability(device=None):
        # Triton and PyTorch compile for the capability they read: they get the real one (sm_90 code, or nothing runs)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        return real(device) if caller.startswith(("triton", "torch")) else (7, 5)

    torch.cuda.get_device_capability = capability
    torch.cuda.is_bf16_supported = lambda including_emulation=True: False
    torch.backends.cuda.enable_flash_sdp(False)
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(T4_MEMORY / total, 0)


# ---------------------------------------------------------------- the practice competition, as Kaggle lays it out


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
    """Run kernels/<kernel>.main(config) in a subprocess under a fresh working folder; its metrics.json as a record
    (the log goes to $OUT/<label>.log)."""
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
    result = {"label": label, "rc": proc.returncode, "seconds": round(seconds, 1)}
    if proc.returncode == 0 and (working / "metrics.json").is_file():
        metrics = json.loads((working / "metrics.json").read_text())
        result.update({k: v for k, v in metrics.items() if k != "steps"})
        result["losses"] = [s["loss"] for s in metrics.get("steps", [])]
    else:
        result["error"] = log[-3000:]
    return result


def private_accuracy(root: Path, name: str) -> float | None:
    """Accuracy of working/submission.csv on the practice competition's private rows."""
    submission = root / "working" / "submission.csv"
    if not submission.is_file():
        return None
    predicted = {r["ID"]: r["is_correct"] for r in csv.DictReader(open(submission))}
    truth = [r for r in csv.DictReader(open(PRACTICE / name / "hidden" / "solution.csv")) if r["Usage"] == "Private"]
    return sum(predicted.get(r["ID"]) == r["is_correct"] for r in truth) / len(truth)
