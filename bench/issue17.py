"""Issue 17's remaining figures: prediction levers on the 8B architecture, the T4 profile, accuracy against the peers.

    python bench/issue17.py predict [VARIANT...]   # 10,000 rows of the length mix on the 8B architecture (random
                                                   # weights, an untrained adapter merged): the infer kernel's
                                                   # functions with engine hf, then each scoring VARIANT on 2,000 rows
                                                   # and the fastest on all 10,000
    python bench/issue17.py accuracy kit|trl|unsloth   # SmolLM2-135M (the real weights) on the practice competition:
                                                   # kit's train kernel, or a peer trained on the same rows, scored
                                                   # on the same validation rows with the same threshold rule
    python bench/issue17.py practice [KEY=VALUE...] # kit's train kernel with the practice defaults (8,000 rows, the test
                                                   # set scored): train seconds, whole run, validation and private accuracy
    T4=1 python bench/peers.py kit 8b | unsloth 8b # the T4 profile (emulate_t4 below), kit against unsloth + trl

Records go to $OUT/issue17.json (one list, read-modify-write: the modes run one after another).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "kernels"))  # the kernels' runtime, imported as `runtime.<module>`
sys.path.insert(0, str(REPO / "bench"))
OUT = Path(os.environ.get("OUT", "/tmp/out"))
RESULTS = OUT / "issue17.json"
T4_MEMORY = 15 * 2**30
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
ACCURACY_ROWS = int(os.environ.get("ACCURACY_ROWS", "3000"))  # training rows for the accuracy runs (all trainers the same)


def record(entry: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    entries = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    entries.append({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **entry})
    RESULTS.write_text(json.dumps(entries, indent=1))
    print("RECORD", json.dumps(entry)[:1500], flush=True)


def guarded(name: str, fn) -> None:
    try:
        fn()
    except Exception:
        record({"what": name, "error": traceback.format_exc()[-2500:]})


def emulate_t4() -> None:
    """A T4 on this GPU, as far as the code can tell: compute capability 7.5 (so no bf16 and no flash attention are
    chosen), flash attention off in PyTorch's SDPA (a T4 has none), and 15 GiB for this process (the allocator
    refuses more). Call before unsloth or transformers is imported: they read the capability once."""
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


# ---------------------------------------------------------------- prediction

VARIANTS = {
    # name: (packed rows, padded tokens a batch, decoder layers compiled)
    "packed-16k": (True, 16384, False),
    "packed-32k": (True, 32768, False),
    "packed-64k": (True, 65536, False),
    "padded-16k": (False, 16384, False),
    "packed-32k-compiled": (True, 32768, True),
}


def predict(variants: list[str]) -> None:
    """The infer kernel's scoring (load_for_scoring: 4-bit load, base dequantized, adapter merged, projections fused;
    score_sequences) with engine hf, 10,000 rows at the kernel's sizes, then the variants on every 5th row, then the
    fastest variant on all 10,000 rows."""
    import torch

    import speed
    from runtime.modeling import compile_layers, load_for_scoring
    from runtime.plan import SCORE_TOKENS

    defaults = speed.kit_config({})
    speed.ensure_adapter(defaults)
    started = time.time()
    model, tokenizer = load_for_scoring(speed.MODEL_DIR, Path(speed.KIT_ADAPTER), engine="hf", dtype=torch.bfloat16, quantize=True,
                                        max_seq_length=defaults["max_seq_length"], dequantize=defaults["dequantize_base"], packed=True)
    load_s = round(time.time() - started, 1)
    rows = speed.random_rows(speed.length_mix(10000, 1), 1)
    base = {"model": "llama8b", "engine": "hf", "load_s": load_s, "batch_size": defaults["batch_size"]}
    if os.environ.get("FULL"):  # FULL=VARIANT: only that variant on all 10,000 rows, then its agreement with eager packed-16k
        full = os.environ["FULL"]
        packed, tokens, compile_ = VARIANTS[full]
        keep_eager: dict = {}
        speed.kit_score(model, tokenizer, rows[::10], batch_size=defaults["batch_size"], max_tokens=SCORE_TOKENS, multiple=8, packed=True, keep=keep_eager)
        if compile_:
            compile_layers(model)
        keep_full: dict = {}
        out = speed.kit_score(model, tokenizer, rows, batch_size=defaults["batch_size"], max_tokens=tokens, multiple=8, packed=packed, keep=keep_full)
        diffs = sorted(abs(a - b) for a, b in zip(keep_full["prob_true"][::10], keep_eager["prob_true"]))
        record({"what": f"kit predict, variant {full}, 10,000 rows", **base, "variant": full, "compiled": compile_,
                "prob_true_diff_vs_eager": {"max": diffs[-1], "p99": diffs[int(0.99 * len(diffs))], "median": diffs[len(diffs) // 2]},
                "same_side_of_0.5": sum((a >= 0.5) == (b >= 0.5) for a, b in zip(keep_full["prob_true"][::10], keep_eager["prob_true"])) / len(diffs),
                **out})
        return
    keep: dict = {}
    out = speed.kit_score(model, tokenizer, rows, batch_size=defaults["batch_size"], max_tokens=SCORE_TOKENS, multiple=8, packed=True, keep=keep)
    record({"what": "kit predict, infer kernel (engine hf: packed, fused, merged), 10,000 rows", **base, **out})
    reference = keep["prob_true"]
    timings = {}
    compiled = False
    for name in variants:
        packed, tokens, compile_ = VARIANTS[name]

        def one(name=name, packed=packed, tokens=tokens, compile_=compile_):
            nonlocal compiled
            if compile_ and not compiled:
                compile_layers(model)
                compiled = True
            keep_v: dict = {}
            out = speed.kit_score(model, tokenizer, rows[::5], batch_size=defaults["batch_size"], max_tokens=tokens, multiple=8, packed=packed, keep=keep_v)
            diff = max(abs(a - b) for a, b in zip(keep_v["prob_true"], reference[::5]))
            timings[name] = out["seconds"]
            record({"what": f"kit predict variant {name}, 2,000 rows", **base, "variant": name, "compiled": compile_,
                    "max_abs_diff_prob_true": diff, **out})

        guarded(f"predict variant {name}", one)
    if timings:
        best = min(timings, key=timings.get)
        packed, tokens, _ = VARIANTS[best]
        out = speed.kit_score(model, tokenizer, rows, batch_size=defaults["batch_size"], max_tokens=tokens, multiple=8, packed=packed)
        record({"what": f"kit predict, fastest variant {best}, 10,000 rows", **base, "variant": best, **out})


# ---------------------------------------------------------------- accuracy


def practice_settings() -> dict:
    return {"competition": "practice-math", "model": SMOLLM2, "predict_test": False, "train_rows": ACCURACY_ROWS}


def accuracy(trainer: str) -> None:
    from gpu_verify import kaggle_tree, run_kernel

    root = kaggle_tree("learn", 20000, 2000, seed=0)
    if trainer == "kit":
        result = run_kernel("train", practice_settings(), root, "accuracy-kit")
        record({"what": "accuracy, kit default (train kernel)", "trainer": "kit", **{k: v for k, v in result.items() if k != "error"},
                **({"error": result["error"]} if "error" in result else {})})
        return
    os.environ["KIT_KAGGLE_ROOT"] = str(root)
    guarded(f"accuracy {trainer}", lambda: peer_accuracy(trainer))


def practice(overrides: list[str]) -> None:
    """kit's default run on the practice competition (20,000 train / 2,000 test rows, seed 0), as README's figures."""
    from gpu_verify import kaggle_tree, private_accuracy, run_kernel

    settings = {"competition": "practice-math", "model": SMOLLM2}
    settings.update(dict(item.split("=", 1) for item in overrides))
    label = "practice-" + ("-".join(overrides).replace("=", "_") or "default")
    root = kaggle_tree("learn", 20000, 2000, seed=0)
    result = run_kernel("train", settings, root, label)
    keep = ("rc", "seconds", "wall_seconds", "train_seconds", "train_tokens", "train_tokens_per_s", "val_accuracy", "val_loss",
            "train_rows", "cuda_graphs", "graphs", "compiled", "engine", "predict_seconds", "val_seconds", "error")
    record({"what": f"practice run, kit train kernel ({' '.join(overrides) or 'defaults'})", "settings": settings,
            **{k: v for k, v in result.items() if k in keep or k.startswith("graph")},
            "private_accuracy": private_accuracy(root, "learn")})


def peer_accuracy(trainer: str) -> None:
    """A peer trained on the train kernel's rows (same split, prompt, encoding, hyperparameters: kit's defaults),
    then scored on its validation rows with kit's scoring and threshold rule: only the trainer differs."""
    if trainer == "unsloth":
        import unsloth  # noqa: F401  (first: it patches transformers and trl)
    import torch
    from kit.workspace.kernel_config import make_config, script_settings

    from runtime.data import encode_prompts, label_token_ids, parse_label, read_table, split_rows
    from runtime.modeling import resolve_model
    from runtime.paths import competition_dir
    from runtime.prompts import get_prompt
    from runtime.scoring import resolve_threshold, score_sequences, val_metrics
    from peers import trl_dataset_rows

    config = script_settings(make_config("train", practice_settings()))
    table = read_table(competition_dir(config["competition"]) / "train.csv")
    labels = [parse_label(v) for v in table["is_correct"]]
    split = split_rows(labels, val_rows=config["val_rows"], val_seed=config["val_seed"], train_rows=config["train_rows"],
                       seed=config["seed"], balance=config["balance"], offset=config["data_offset"])
    path = resolve_model(config["model"])
    started = time.time()
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    if trainer == "unsloth":
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(path, max_seq_length=config["max_seq_length"], dtype=torch.bfloat16, load_in_4bit=False)
        model = FastLanguageModel.get_peft_model(model, r=config["r"], lora_alpha=config["lora_alpha"], lora_dropout=0, bias="none",
                                                 target_modules=targets, use_gradient_checkpointing=False, random_state=config["seed"])
        peft_config = None
    else:
        from peft import LoraConfig
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, device_map={"": 0})
        peft_config = LoraConfig(r=config["r"], lora_alpha=config["lora_alpha"], lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                                 target_modules=targets)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    template = get_prompt(config["prompt"])
    true_id, false_id = label_token_ids(tokenizer, template)
    column = lambda name, rows: [table[name].iat[i] for i in rows]  # noqa: E731
    encode = lambda rows: encode_prompts(tokenizer, template, column("question", rows), column("answer", rows), column("solution", rows),  # noqa: E731
                                         config["max_seq_length"])
    train_seqs, val_seqs = encode(split.train), encode(split.val)
    train_ids = [true_id if labels[i] else false_id for i in split.train]
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    data = Dataset.from_dict(trl_dataset_rows(train_seqs, train_ids))
    args = SFTConfig(output_dir="/tmp/trl-acc", per_device_train_batch_size=config["batch_size"], gradient_accumulation_steps=config["grad_accum"],
                     num_train_epochs=config["epochs"], learning_rate=config["learning_rate"], lr_scheduler_type=config["lr_scheduler"],
                     warmup_steps=config["warmup_steps"], weight_decay=config["weight_decay"], max_grad_norm=config["max_grad_norm"], bf16=True,
                     optim="adamw_torch_fused", logging_steps=50, save_strategy="no", report_to="none", seed=config["seed"],
                     gradient_checkpointing=False, max_length=None, completion_only_loss=True, padding_free=True, dataloader_num_workers=0)
    trainer_obj = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft_config)
    train_started = time.time()
    trainer_obj.train()
    train_s = time.time() - train_started
    scored = trainer_obj.model
    val_labels = [labels[i] for i in split.val]
    scores = score_sequences(scored, val_seqs, true_id, false_id, tokenizer.pad_token_id, batch_size=config["batch_size"], labels=val_labels,
                             device="cuda:0", autocast_dtype=torch.bfloat16, max_tokens=16384, multiple=8)
    threshold = resolve_threshold(config["threshold"], scores.prob_true, val_labels)
    metrics = val_metrics(scores, val_labels, threshold)
    name = "unsloth + trl SFTTrainer" if trainer == "unsloth" else "transformers + peft + trl SFTTrainer"
    record({"what": f"accuracy, {name} (padding-free, completion-only)", "trainer": trainer, "train_rows": len(split.train),
            "train_seconds": round(train_s, 1), "seconds": round(time.time() - started, 1), **metrics,
            "losses": [h["loss"] for h in trainer_obj.state.log_history if "loss" in h]})


if __name__ == "__main__":
    mode = sys.argv[1]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if mode == "predict":
        predict([v for v in sys.argv[2:] if v != "none"] if sys.argv[2:] else list(VARIANTS))
    elif mode == "accuracy":
        accuracy(sys.argv[2])
    elif mode == "practice":
        practice(sys.argv[2:])
