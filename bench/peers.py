"""Issue 17: kit's training loop against the trainers a user would pick instead, and kit on small models.

    python bench/peers.py prep                  # random-weight models: 8B (/tmp/llama8b), SmolLM2-135M and Qwen2.5-1.5B shapes
    python bench/peers.py kit MODEL [trl]       # kit's default (the train kernel's functions); with trl: then trl's SFTTrainer
                                                # on the model kit prepared (its levers: fused projections, compiled layers,
                                                # flash varlen attention fed by a collator), same process, same rows
    python bench/peers.py trl MODEL ATTN...     # transformers + peft + trl SFTTrainer: padding-free, completion-only loss,
                                                # bf16, fused AdamW; ATTN = sdpa (what transformers gives packed rows:
                                                # a block mask) or varlen (PyTorch's flash varlen, fed by a collator)
    python bench/peers.py unsloth MODEL         # unsloth (bf16 LoRA, no recomputation) + trl SFTTrainer, padding-free
    python bench/peers.py table                 # the side-by-side table from $OUT/peers.json

MODEL is 8b, smollm2 or qwen15. Every mode runs in its own process (unsloth patches transformers when imported) and
adds its records to $OUT/peers.json. Rows are bench/speed.py's: the length mix (log-normal around 348 tokens,
96..1929), random token ids, a one-token label after each prompt; every trainer sees the same rows at batch 8
(one optimizer step = 8 rows), LoRA r=32 alpha=64 on the 7 projections, lr 2e-4 cosine, warm-up 10, weight decay
0.01, clipping 1.0 (kit's defaults). "Useful tokens" are prompt tokens (pad tokens never count).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "kernels"))  # the kernels' runtime, imported as `runtime.<module>`
sys.path.insert(0, str(REPO / "bench"))
OUT = Path(os.environ.get("OUT", "/tmp/out"))
RESULTS = OUT / "peers.json"
MODELS = {"8b": "/tmp/llama8b", "smollm2": "/tmp/smollm2-135m", "qwen15": "/tmp/qwen25-15b"}
TIMED_TOKENS = int(os.environ.get("TIMED_TOKENS", "150000"))
WARM_STEPS = int(os.environ.get("WARM_STEPS", "20"))
MIN_TIMED_STEPS = 20  # trl's timed window: at least this many steps (about TIMED_TOKENS otherwise)
LOGGING_STEPS = 10  # trl logs (and reads) the loss every this many steps, as users leave it
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
T4 = os.environ.get("T4") == "1"  # the T4 profile emulated on this GPU (bench/issue17.py emulate_t4): fp16, no flash attention, 15 GiB
T4_LABEL = " [T4 profile: fp16, no flash, 15 GiB]"
MATMUL_FLOPS = 800e12  # bf16 dense, measured on these GPUs (shared/reference/gpu-baselines.md, KINDS.md: 769-798)


def record(entry: dict) -> None:
    """Add one measurement to $OUT/peers.json (processes run one after another, so read-modify-write is safe)."""
    OUT.mkdir(parents=True, exist_ok=True)
    if T4:
        import torch

        entry = {**entry, "what": entry["what"] + T4_LABEL, "max_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2)}
    entries = json.loads(RESULTS.read_text()) if RESULTS.is_file() else []
    entries.append({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **entry})
    RESULTS.write_text(json.dumps(entries, indent=1))
    print("RECORD", json.dumps({k: v for k, v in entry.items() if k not in ("step_ms", "step_tokens", "profile")})[:2000], flush=True)


def guarded(name: str, fn, **context) -> None:
    """Run one measurement; an error is recorded and the next one still runs."""
    try:
        fn()
    except Exception:
        record({"what": name, "error": traceback.format_exc()[-2500:], **context})


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


def prep(small_only: bool = False) -> None:
    """The random-weight models on local disk (the 8B one as bench/gpu_verify.py makes it)."""
    import torch
    from transformers import AutoModelForCausalLM

    from gpu_verify import make_tokenizer, prep as prep_8b

    if not small_only:
        prep_8b()
    for name, make in (("smollm2", smollm2_config), ("qwen15", qwen15_config)):
        folder = Path(MODELS[name])
        if (folder / "config.json").is_file():
            continue
        with torch.device("cuda"):
            model = AutoModelForCausalLM.from_config(make(), dtype=torch.bfloat16)
        model.save_pretrained(folder)
        make_tokenizer().save_pretrained(folder)
        del model
    print("prep done", flush=True)


def rows_for(vocab: int, n: int = 6000) -> list[list[int]]:
    """bench/speed.py's training rows (same lengths, same seed), token ids kept inside the model's vocabulary."""
    from speed import length_mix

    rng = random.Random(0)
    top = min(vocab, 120000)
    return [[rng.randrange(1000, top) for _ in range(n)] for n in length_mix(n, 0)]


def labels_for(n: int) -> list[int]:
    return [500 + (i % 2) for i in range(n)]


def model_facts(path: str) -> dict:
    """Parameter count (all weights, as the issue's bounds count them) and the bf16 bound at 4N FLOPs a token."""
    from transformers import AutoConfig

    from runtime.plan import bf16_weight_bytes

    config = AutoConfig.from_pretrained(path)
    params = bf16_weight_bytes(config) // 2
    return {"model": Path(path).name, "params": params, "bound_tokens_per_s": round(MATMUL_FLOPS / (4 * params)), "vocab": config.vocab_size}


def kit_default_config(path: str, settings: dict | None = None) -> dict:
    from kit.workspace.kernel_config import make_config, script_settings

    return script_settings(make_config("train", {"competition": "speed", "model": path, "max_seq_length": 2048, **(settings or {})}))


# ---------------------------------------------------------------- kit


def kit(model_key: str, then_trl: bool) -> None:
    """kit's default training (bench/speed.py's kit_model and kit_train: the train kernel's functions) at batch 8,
    then speed-only probes at larger batches, a GPU profile, and (then_trl) trl's SFTTrainer on kit's prepared model."""
    import torch

    import speed

    path = MODELS.get(model_key, model_key)
    facts = model_facts(path)
    if os.environ.get("CPP_WRAPPER") == "1":
        # inductor's C++ wrapper: the compiled layers launch their kernels from C++, not from generated Python
        import torch._inductor.config

        torch._inductor.config.cpp_wrapper = True
        facts["cpp_wrapper"] = True
    from runtime.environment import torch_dtype
    from runtime.plan import choose_dtype, detect_machine

    config = kit_default_config(path)
    rows = rows_for(facts["vocab"])
    model, tokenizer, plan = speed.kit_model(config, dtype=torch_dtype(choose_dtype(config["dtype"], detect_machine()).value))
    batches = [int(b) for b in os.environ.get("KIT_BATCHES", "8").split(",")]
    # KIT_GRAPHS=plan,off,on: the plan's cuda_graphs decision first (kit's default), then forced off/on beside it
    modes = {"plan": None, "on": True, "off": False}
    for bs in batches:
        for mode in os.environ.get("KIT_GRAPHS", "plan").split(","):
            def one(bs=bs, mode=mode):
                started = time.time()
                out = speed.kit_train(model, tokenizer, config, plan, rows, bs, timed_tokens=TIMED_TOKENS * max(1, bs // 8), warm=WARM_STEPS,
                                      profile=bs == 8 and os.environ.get("PROFILE") == "1", graphs=modes[mode])
                if "profile" in out:
                    out["gpu_ms_per_step_top30"] = round(sum(k["ms_per_step"] for k in out["profile"]), 1)
                label = "kit default" if mode == "plan" else f"kit, cuda_graphs={mode}"
                record({"what": label + ("" if bs == 8 else f" (speed probe: batch {bs})"), "trainer": "kit", "batch": bs,
                        "wall_with_warm_s": round(time.time() - started, 1), "dynamo": speed.dynamo_counters(), **facts, **out})

            guarded(f"kit batch {bs} graphs {mode}", one, trainer="kit", **facts)
    if os.environ.get("KIT_THEN_COMPILED") == "1" and not plan["compiled"]:
        # the same model with its decoder layers compiled (compile=on beside the plan's graphs of the eager layers)
        from runtime.modeling import compile_layers

        def compiled_run():
            compile_layers(model)
            started = time.time()
            out = speed.kit_train(model, tokenizer, config, {**plan, "compiled": True}, rows, 8, timed_tokens=TIMED_TOKENS, warm=WARM_STEPS)
            record({"what": "kit, compile=on (layers compiled, then graphed)", "trainer": "kit", "batch": 8,
                    "wall_with_warm_s": round(time.time() - started, 1), "dynamo": speed.dynamo_counters(), **facts, **out, "compiled": True})

        guarded("kit compiled", compiled_run, trainer="kit", **facts)
    if os.environ.get("HOST_PROFILE") == "1":
        guarded("host profile", lambda: host_profile(model, tokenizer, config, plan, rows, facts), **facts)
    if then_trl:
        guarded("trl on kit's model", lambda: trl_train(model, tokenizer, rows, "trl SFTTrainer on kit's prepared model (kit's levers)",
                                                       facts, collator=PackedCollator(tokenizer.pad_token_id), extra=plan), **facts)


def host_profile(model, tokenizer, config, plan, rows, facts) -> None:
    """Where the host's time goes in kit's step at batch 8 (cProfile over ~6 steps, own time), and how many kernels a
    step launches (torch.profiler): a step of a small model is bound by the host, not by the GPU."""
    import cProfile
    import pstats

    import torch
    from torch.profiler import ProfilerActivity, profile

    import speed

    profiler = cProfile.Profile()
    profiler.enable()
    out = speed.kit_train(model, tokenizer, config, plan, rows, 8, timed_tokens=15000, warm=0)
    profiler.disable()
    stats = pstats.Stats(profiler)
    top = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:30]
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        speed.kit_train(model, tokenizer, config, plan, rows, 8, timed_tokens=9000, warm=0)
        torch.cuda.synchronize()
    events = prof.key_averages()
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx"))
    cpu_top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:25]
    record({"what": "kit host profile, batch 8", "trainer": "kit-probe", "steps": out["steps"], "seconds": out["seconds"], **facts,
            "cprofile_tottime": [{"function": f"{Path(f[0]).name}:{f[1]}:{f[2]}", "calls": v[1], "tottime_s": round(v[2], 3),
                                  "cumtime_s": round(v[3], 3)} for f, v in top],
            "profiled_steps_tokens": 9000, "kernel_launches": launches,
            "cpu_self_top": [{"op": e.key[:80], "count": e.count, "self_cpu_ms": round(e.self_cpu_time_total / 1000, 1)} for e in cpu_top]})


# ---------------------------------------------------------------- trl


class PackedCollator:
    """Padding-free batches for trl's SFTTrainer in the form kit's flash varlen attention reads (what
    transformers.DataCollatorWithFlattening gives, less the key-side copies): one row of all tokens, positions
    restarting at each row, the rows' cumulative lengths (int32) and the longest row; labels -100 but the label."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        ids, labels, pos, bounds = [], [], [], [0]
        for ex in examples:
            ids.extend(ex["input_ids"])
            labels.extend([-100] + list(ex["labels"][1:]))
            pos.extend(range(len(ex["input_ids"])))
            bounds.append(bounds[-1] + len(ex["input_ids"]))
        return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]), "position_ids": torch.tensor([pos]),
                "cu_seq_lens_q": torch.tensor(bounds, dtype=torch.int32), "max_length_q": max(b - a for a, b in zip(bounds, bounds[1:]))}


class CountingCollator:
    """Wraps a collator: the useful (prompt) tokens of every batch it builds, in the order the trainer takes them."""

    def __init__(self, inner):
        self.inner = inner
        self.tokens: list[int] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, examples):
        self.tokens.append(sum(len(ex["input_ids"]) - 1 for ex in examples))
        return self.inner(examples)


def trl_dataset_rows(prompts: list[list[int]], label_ids: list[int]) -> dict:
    """Pre-tokenized prompt + label columns: trl builds labels from completion_mask (completion-only loss)."""
    return {"input_ids": [p + [y] for p, y in zip(prompts, label_ids)], "completion_mask": [[0] * len(p) + [1] for p in prompts]}


def trl_dataset(rows: list[list[int]], n: int):
    """Pre-tokenized prompt + label rows: trl builds labels from completion_mask (completion-only loss)."""
    from datasets import Dataset

    labels = labels_for(n)
    return Dataset.from_dict({"input_ids": [r + [labels[i]] for i, r in enumerate(rows[:n])],
                              "completion_mask": [[0] * len(r) + [1] for r in rows[:n]]})


def trl_train(model, tokenizer, rows, what: str, facts: dict, *, collator=None, peft_config=None, extra: dict | None = None,
              trainer_cls=None, config_cls=None) -> None:
    """trl's SFTTrainer at batch 8 with kit's hyperparameters; times the steps after WARM_STEPS (useful tokens/s)."""
    import torch
    from transformers import TrainerCallback

    if trainer_cls is None:
        from trl import SFTConfig as config_cls, SFTTrainer as trainer_cls  # noqa: N813

    steps = WARM_STEPS + max(MIN_TIMED_STEPS, TIMED_TOKENS // 2800)
    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= WARM_STEPS:
                if (state.global_step == WARM_STEPS or state.global_step == steps) and torch.cuda.is_available():
                    torch.cuda.synchronize()
                marks.append(time.perf_counter())

    cuda = torch.cuda.is_available()
    args = config_cls(
        output_dir="/tmp/trl-out", per_device_train_batch_size=8, gradient_accumulation_steps=1, max_steps=steps, learning_rate=2e-4,
        lr_scheduler_type="cosine", warmup_steps=10, weight_decay=0.01, max_grad_norm=1.0, bf16=cuda and not T4, fp16=cuda and T4, use_cpu=not cuda, optim="adamw_torch_fused",
        logging_steps=LOGGING_STEPS, save_strategy="no", report_to="none", seed=3407, gradient_checkpointing=False, max_length=None,
        completion_only_loss=True, padding_free=collator is None, dataloader_num_workers=0, remove_unused_columns=False,
    )
    data = trl_dataset(rows, 8 * (steps + 4))
    started = time.time()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer = trainer_cls(model=model, args=args, train_dataset=data, processing_class=tokenizer, data_collator=collator,
                          peft_config=peft_config, callbacks=[Clock()])
    counting = CountingCollator(trainer.data_collator)
    trainer.data_collator = counting
    setup_s = time.time() - started
    trainer.train()
    if cuda:
        torch.cuda.synchronize()
    # the k-th batch built is step k's (a prefetch may build one more, never out of order)
    step_tokens = counting.tokens[WARM_STEPS:steps]
    seconds = marks[-1] - marks[0]
    import speed

    out = {"what": what, "trainer": "trl", "batch": 8, "steps": len(step_tokens), "warm_steps": WARM_STEPS,
           "useful_tokens_per_s": round(sum(step_tokens) / seconds), "rows_per_s": round(8 * len(step_tokens) / seconds, 2),
           "seconds": round(seconds, 1), "setup_s": round(setup_s, 1), "wall_with_warm_s": round(time.time() - started, 1),
           "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
           "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h], "attn_implementation": getattr(getattr(trainer.model, "config", None), "_attn_implementation", None),
           "step_ms": [round(1000 * (b - a)) for a, b in zip(marks, marks[1:])], "step_tokens": step_tokens,
           **speed.steady_rate(marks, step_tokens), **facts, **(extra or {})}
    out["versions"] = versions()
    record(out)
    del trainer


def versions() -> dict:
    found = {}
    for name in ("torch", "transformers", "peft", "trl", "unsloth", "datasets"):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = getattr(module, "__version__", "?")
    return found


def trl_peer(model_key: str, attentions: list[str]) -> None:
    """transformers + peft + trl on the bf16 base (the fastest a user gets on a GPU this size: no 4-bit)."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from runtime.attention import use_packed_attention

    path = MODELS.get(model_key, model_key)
    facts = model_facts(path)
    rows = rows_for(facts["vocab"])
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    lora = LoraConfig(r=32, lora_alpha=64, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM", target_modules=TARGETS)
    for attention in attentions:
        def one(attention=attention):
            placed = {"device_map": {"": 0}} if torch.cuda.is_available() else {}
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, attn_implementation="sdpa", **placed)
            model.config.use_cache = False
            collator = None
            if attention == "varlen":
                use_packed_attention(model, __import__("runtime.plan", fromlist=["x"]).detect_machine().flash_attention())  # PyTorch's flash varlen, registered with transformers (as kit does)
                collator = PackedCollator(tokenizer.pad_token_id)
            trl_train(model, tokenizer, rows, f"transformers + peft + trl SFTTrainer, padding-free, {attention} attention", facts,
                      collator=collator, peft_config=lora, extra={"attention": attention})
            del model
            torch.cuda.empty_cache()

        guarded(f"trl {attention}", one, trainer="trl", **facts)


def unsloth_peer(model_key: str) -> None:
    """unsloth's FastLanguageModel (bf16 base, LoRA without recomputation: room enough) + its patched trl SFTTrainer,
    padding-free (unsloth then attends with PyTorch's varlen flash attention), completion-only loss."""
    import unsloth  # noqa: F401  (first: it patches transformers and trl)
    import torch
    from unsloth import FastLanguageModel

    path = MODELS.get(model_key, model_key)
    facts = model_facts(path)
    rows = rows_for(facts["vocab"])

    def one():
        started = time.time()
        # the T4 profile: 4-bit (a bf16 8B base does not fit in 15 GiB) and fp16
        model, tokenizer = FastLanguageModel.from_pretrained(path, max_seq_length=2048, dtype=torch.float16 if T4 else torch.bfloat16, load_in_4bit=T4)
        model = FastLanguageModel.get_peft_model(model, r=32, lora_alpha=64, lora_dropout=0, bias="none", target_modules=TARGETS,
                                                 use_gradient_checkpointing="unsloth" if T4 else False,  # T4: without recomputation it runs out of 15 GiB
                                                 random_state=3407)
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
        from trl import SFTConfig, SFTTrainer

        trl_train(model, tokenizer, rows, "unsloth + trl SFTTrainer, padding-free, bf16 LoRA", facts,
                  extra={"load_s": round(time.time() - started, 1), "unsloth": unsloth.__version__}, trainer_cls=SFTTrainer,
                  config_cls=SFTConfig)

    guarded("unsloth", one, trainer="unsloth", **facts)


# ---------------------------------------------------------------- table


def table(path: Path = RESULTS) -> str:
    """Markdown: every measurement of a model side by side, with its ratio to the strongest peer of that model."""
    entries = [e for e in json.loads(path.read_text()) if "useful_tokens_per_s" in e]
    lines = ["| model | trainer | useful tokens/s | steady | rows/s | peak GiB | share of bf16 bound | vs strongest peer |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for model, t4 in dict.fromkeys((e["model"], T4_LABEL in e["what"]) for e in entries):
        rows = [e for e in entries if e["model"] == model and (T4_LABEL in e["what"]) == t4]
        peers = [e["useful_tokens_per_s"] for e in rows if e["trainer"] != "kit" and "kit's" not in e["what"]]
        best = max(peers) if peers else None
        for e in rows:
            ratio = f"{e['useful_tokens_per_s'] / best:.2f}x" if best else ""
            lines.append(f"| {model} | {e['what']} | {e['useful_tokens_per_s']:,} | {e.get('steady_tokens_per_s', 0):,} | {e['rows_per_s']} | "
                         f"{e['peak_gib']} | {100 * e['useful_tokens_per_s'] / e['bound_tokens_per_s']:.0f}% | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if T4:
        from issue17 import emulate_t4

        emulate_t4()
    if mode == "prep":
        prep(small_only="small" in args)
    elif mode == "kit":
        kit(args[0], "trl" in args[1:])
    elif mode == "trl":
        trl_peer(args[0], args[1:] or ["sdpa", "varlen"])
    elif mode == "unsloth":
        unsloth_peer(args[0])
    elif mode == "table":
        print(table(Path(args[0]) if args else RESULTS))
