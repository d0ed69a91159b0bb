"""What each lever of kit's training and scoring changes, one probe at a time (a CUDA GPU; issue 6's and issue 17's
probes, kept for the levers they measured; the comparisons with peers are train_speed.py and bench/peers/).

    python bench/train_probes.py smoke        # flash varlen over packed rows against each row through SDPA; a 2-layer
                                              # model of 8B's widths: packed, fused and compiled against eager padded
    python bench/train_probes.py probe        # unsloth engine, 8B: pinned copies, the loss read a step later, fused
                                              # AdamW, batch 16; scoring with the adapter merged or not, 32k batches
    python bench/train_probes.py probe-cpu    # is a step bound by the host? queueing vs waiting, cProfile, batch 16
    python bench/train_probes.py probe-steady LABEL   # long warm-up; with and without UNSLOTH_BLOCK_CUDAGRAPHS=1
    python bench/train_probes.py probe-hf LABEL       # transformers engine: eager, compiled layers, fused AdamW, batch 16
    python bench/train_probes.py host-profile MODEL   # where the host's time goes in a step (cProfile, kernel launches)

`python bench/train_speed.py prep 8b` first (MODEL: 8b, smollm2, qwen15). Rows as bench/common.py's. Each probe
times a window of useful tokens after a few warm-up steps in one process (a probe, not the protocol's repeats);
records go to $OUT/<probe>.json.
"""

from __future__ import annotations

import gc
import inspect
import json
import math
import os
import random
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("OUT", "/tmp/out"))
MODEL_DIR = "/tmp/llama8b"
KIT_ADAPTER = "/tmp/kit-adapter"
TRAIN_BOUND = 24900  # useful tokens/s at 4N FLOPs per token and ~800 TFLOP/s (shared/reference/gpu-baselines.md)
SCORE_BOUND = 49800  # 2N
T4_BYTES = 15 * 2**30
UNSLOTH_8BIT = {"engine": "unsloth", "optim": "adamw_8bit"}
VARIANTS = {"default": {}, "round3": {"packing": "off", "fuse_projections": False}}  # kit's training, now and in round 3  # the kernel's defaults before issue 6's third round (probe modes)
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "kernels"))  # the kernels' runtime, imported as `runtime.<module>`
sys.path.insert(0, str(REPO / "bench"))

from common import cuda_profile, steady_rate  # noqa: E402  (bench/ is on the path from here)
results: dict = {}
RESULT_FILE = {"name": "speed.json"}


def save() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / RESULT_FILE["name"]).write_text(json.dumps(results, indent=1))


def section(name: str, fn) -> None:
    """Run one part; an error is recorded and the next part still runs."""
    started = time.time()
    try:
        fn()
    except Exception:
        results[name + "_error"] = traceback.format_exc()[-3000:]
        print(results[name + "_error"], flush=True)
    results.setdefault("section_seconds", {})[name] = round(time.time() - started, 1)
    save()


def length_mix(n: int, seed: int) -> list[int]:
    """Row lengths as the peers' anchors drew them: log-normal around 348 tokens, clipped to 96..1929."""
    rng = random.Random(seed)
    return [int(min(1929, max(96, rng.lognormvariate(math.log(348), 0.45)))) for _ in range(n)]


def random_rows(lengths: list[int], seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(1000, 120000) for _ in range(n)] for n in lengths]


def free_gpu() -> None:
    import torch

    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2)






def kit_config(settings: dict, model: str = MODEL_DIR) -> dict:
    from kit.workspace.kernel_config import make_config, script_settings

    return script_settings(make_config("train", {"competition": "speed", "model": model, "max_seq_length": 2048, **settings}))


def kit_model(config: dict, engine: str = "", dtype=None):
    """The base model as the train kernel loads it, the memory plan it makes, LoRA attached, the base dequantized
    and the layers compiled where the kernel would (engine and compile from the config unless `engine` is given)."""
    import torch

    from runtime.attention import use_packed_attention
    from runtime.data import padded_width
    from runtime.modeling import load_base_model, read_model_config
    from runtime.plan import detect_machine, make_plan
    from runtime.training import prepare_for_training

    made = make_plan({**config, "engine": engine or config["engine"], "load_in_4bit": True}, detect_machine(), "train",
                     read_model_config(config["model"]))  # the kernel's own plan (kernels/runtime/plan.py)
    engine = made.engine.value
    dtype = dtype or torch.bfloat16
    started = time.time()
    model, tokenizer = load_base_model(config["model"], engine=engine, dtype=dtype, quantize=True,
                                       max_seq_length=config["max_seq_length"])
    load_seconds = time.time() - started
    packed = made.packing.value
    attention = use_packed_attention(model, made.attention.value == "flash varlen") if packed else "sdpa, padded rows"
    model, made = prepare_for_training(model, config, made, dtype=dtype, longest_row=padded_width(1929, made.pad_multiple.value))
    compiled = made.compile.value
    plan = {"engine": engine, "compiled": compiled, "load_seconds": round(load_seconds, 1), "gradient_checkpointing": made.checkpointing.value,
            "chunk_tokens": made.chunk_tokens.value, "dequantized_base": made.dequantize_base.value, "packed": packed, "attention": attention,
            "fused": made.fuse_projections.value and made.dequantize_base.value, "dtype": str(dtype).removeprefix("torch."),
            "cuda_graphs": bool(made.cuda_graphs.value)}
    print("kit plan", plan, flush=True)
    return model, tokenizer, plan


def kit_train(model, tokenizer, config: dict, plan: dict, sequences: list[list[int]], batch_size: int, timed_tokens: int, warm: int,
              multiple: int = 0, profile: bool = False, sync_every_step: bool = False, graphs: bool | None = None) -> dict:
    """The train kernel's loop (training_order, split_by_tokens, train_step) at one micro-batch size; `graphs`
    overrides the plan's cuda_graphs (the passes replayed as CUDA graphs, fit.Steps's way)."""
    import torch

    from runtime.data import collate, split_by_tokens, training_order
    from runtime.graphs import GraphedPasses
    from runtime.plan import pad_multiple
    from runtime.training import make_optimizer, train_step

    packed = plan.get("packed", False)
    multiple = 1 if packed else multiple or pad_multiple(plan.get("engine", "unsloth"))
    lengths = [len(s) for s in sequences]
    labels = [500 + (i % 2) for i in range(len(sequences))]
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, config["optim"], config["learning_rate"], config["weight_decay"])
    fp16 = plan.get("dtype") == "float16"  # the T4 profile (common.emulate_t4): fp16 with a loss scaler, as the train kernel does
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)
    autocast = lambda: torch.autocast("cuda", dtype=torch.float16 if fp16 else torch.bfloat16)  # noqa: E731
    graphed = plan.get("cuda_graphs", False) if graphs is None else graphs
    passes = GraphedPasses(model, torch.float16 if fp16 else torch.bfloat16, longest_row=max(lengths)) if graphed else None
    make_batch = lambda rows: collate(  # noqa: E731
        [sequences[r] for r in rows], tokenizer.pad_token_id, label_ids=[labels[r] for r in rows],
        completion_only=config["completion_only"], packed=packed, pad_to_multiple=multiple, device="cuda",
        pad_to_bucket=passes is not None and not passes.off,
    )
    chunks_of = lambda rows: split_by_tokens(rows, lengths, plan["chunk_tokens"], multiple, packed)  # noqa: E731
    order = iter(training_order(lengths, batch_size, config["group_by_length"] and not packed, seed=batch_size))
    model.train()

    unread: list = []

    def step() -> tuple[int, int]:
        micro = [next(order) for _ in range(config["grad_accum"])]
        loss, tokens = train_step(model, micro, make_batch, chunks_of, optimizer=optimizer, scaler=scaler, trainable=trainable,
                                  max_grad_norm=config["max_grad_norm"], autocast=autocast, graphs=passes)
        # The kernel reads each step's loss (the non-finite check) once the next step is queued; sync_every_step
        # is the old way, reading it at once.
        if unread:
            float(unread.pop())
        unread.append(loss)
        if sync_every_step:
            float(unread.pop())
        return tokens, sum(len(m) for m in micro)

    started = time.perf_counter()
    for _ in range(warm):
        step()
    warm_seconds = time.perf_counter() - started
    free_gpu()
    started, useful, rows, steps = time.perf_counter(), 0, 0, 0
    marks, step_tokens = [started], []
    while useful < timed_tokens:
        tokens, n = step()
        useful, rows, steps = useful + tokens, rows + n, steps + 1
        marks.append(time.perf_counter())
        step_tokens.append(tokens)
    if unread:
        float(unread.pop())
    seconds = time.perf_counter() - started
    kernels = cuda_profile(step, 3) if profile else None
    graph_note = {"cuda_graphs": passes is not None, "graphs_summary": passes.summary()} if passes is not None else {"cuda_graphs": False}
    if passes is not None:
        passes.close()
    del optimizer
    return {**plan, "batch_size": batch_size, "multiple": multiple, "packed": packed, **({"profile": kernels} if kernels else {}), "useful_tokens_per_s": round(useful / seconds), "rows_per_s": round(rows / seconds, 2),
            "steps": steps, "rows": rows, "seconds": round(seconds, 1), "warm_steps": warm, "warm_seconds": round(warm_seconds, 1),
            **steady_rate(marks, step_tokens), "step_ms": [round(1000 * (b - a)) for a, b in zip(marks, marks[1:])],
            "step_tokens": step_tokens, "peak_gib": peak_gib(), **graph_note}


def dynamo_counters() -> dict:
    """torch.compile's counts so far: graphs compiled, recompilations and their reasons, graph breaks."""
    from torch._dynamo.utils import counters

    return {k: {str(r)[:200]: n for r, n in v.items()} for k, v in counters.items() if k in ("stats", "recompiles", "graph_break")}


def kit_score(model, tokenizer, sequences: list[list[int]], batch_size: int, max_tokens: int, multiple: int = 0, keep: dict | None = None,
              packed: bool = False) -> dict:
    """score_sequences as the kernels call it (rows sorted by length, token-budget batches, rounded widths)."""
    import torch

    from runtime.plan import pad_multiple
    from runtime.scoring import score_sequences

    def run(seqs):
        return score_sequences(model, seqs, [500, 501], tokenizer.pad_token_id, batch_size=batch_size, device="cuda:0",
                               autocast_dtype=torch.bfloat16, max_tokens=max_tokens, multiple=multiple or pad_multiple("unsloth"), packed=packed)

    run(sequences[:300])
    torch.cuda.synchronize()
    free_gpu()
    started = time.perf_counter()
    scores = run(sequences)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    assert all(0.0 <= p <= 1.0 for p in scores.prob_true)
    if keep is not None:
        keep["prob_true"] = scores.prob_true
    return {"rows": len(sequences), "packed": packed, "multiple": multiple or pad_multiple("unsloth"), "seconds": round(seconds, 1), "rows_per_s": round(len(sequences) / seconds, 1),
            "useful_tokens_per_s": round(sum(map(len, sequences)) / seconds), "batch_size": batch_size, "max_tokens": max_tokens,
            "peak_gib": peak_gib()}


def probe_hf(label: str) -> None:
    """The transformers engine (peft LoRA) at batch 8 and 16: eager, then with every decoder layer compiled
    (compile_layers), widths rounded to 8; a fresh process without unsloth's patches."""
    import torch

    from runtime.modeling import compile_layers

    RESULT_FILE["name"] = f"probe-hf-{label}.json"
    results["device"] = torch.cuda.get_device_name(0)
    results["versions"] = {"torch": torch.__version__}
    config = kit_config({"engine": "hf", "compile": "off", "optim": "adamw_8bit"})
    train_rows = random_rows(length_mix(6000, 0), 0)
    model, tokenizer, plan = kit_model(config, engine="hf")
    results["hf"] = []

    def train(name, bs, warm, timed, profile=False, settings=None):
        started = time.time()
        record = kit_train(model, tokenizer, {**config, **(settings or {})}, plan, train_rows, bs, timed_tokens=timed, warm=warm,
                           multiple=8, profile=profile)
        record.update(variant=name, wall_with_warm_s=round(time.time() - started, 1))
        if profile:
            record["gpu_ms_per_step_top30"] = round(sum(k["ms_per_step"] for k in record["profile"]), 1)
        results["hf"].append(record)
        print("hf", {k: v for k, v in record.items() if k != "profile"}, flush=True)
        save()

    section("eager", lambda: train("eager, batch 8", 8, 4, 100000, profile=True))
    results["compiled_layers"] = compile_layers(model)
    section("compiled8", lambda: train("compiled layers, batch 8", 8, 12, 300000, profile=True))
    section("compiled8_fused", lambda: train("compiled layers, batch 8, adamw_torch_fused", 8, 4, 200000,
                                             settings={"optim": "adamw_torch_fused"}))
    section("compiled16", lambda: train("compiled layers, batch 16", 16, 6, 300000))
    results["dynamo_counters"] = dynamo_counters()
    save()


def agreement(a: list[float], b: list[float]) -> dict:
    """How far two lists of P(True) are apart: largest difference, and the share of rows on the same side of 0.5."""
    return {"max_abs_diff": round(max(abs(x - y) for x, y in zip(a, b)), 5),
            "same_side_of_0.5": round(sum((x >= 0.5) == (y >= 0.5) for x, y in zip(a, b)) / len(a), 4)}


def probe() -> None:
    """Where the time goes, and what each lever changes, on one model in one process: the base dequantized or not
    (`dequantize_base`), copies to the GPU pageable or pinned, the loss read every step or one step later, the
    optimizer, the micro-batch; scoring with the adapter merged or not, and larger scoring batches."""
    import unsloth  # noqa: F401
    import torch

    from runtime import data
    from runtime.modeling import merge_adapters

    results["device"] = torch.cuda.get_device_name(0)
    config = kit_config(UNSLOTH_8BIT)
    train_rows = random_rows(length_mix(4000, 0), 0)
    test_rows = random_rows(length_mix(10000, 1), 1)
    model, tokenizer, plan = kit_model(config)
    results["probe_train"], results["probe_score"] = [], []
    pinned = data.to_device

    def pageable(tensor, device):
        return tensor.to(device)

    def train(label, bs=8, settings=None, copies=pinned, **options):
        data.to_device = copies
        record = kit_train(model, tokenizer, {**config, **(settings or {})}, plan, train_rows, bs, timed_tokens=150000, warm=8, **options)
        data.to_device = pinned
        record["variant"] = label
        results["probe_train"].append(record)
        print("probe_train", label, {k: v for k, v in record.items() if k != "profile"}, flush=True)
        save()

    def score(label, rows, max_tokens=16384):
        kept: dict = {}
        record = kit_score(model, tokenizer, rows, batch_size=8, max_tokens=max_tokens, keep=kept)
        record["variant"] = label
        results["probe_score"].append(record)
        print("probe_score", label, record, flush=True)
        save()
        return kept["prob_true"]

    section("probe_train", lambda: (
        train("pageable copies, loss read every step (before)", copies=pageable, sync_every_step=True),
        train("pinned copies, loss read a step later (the kernel now)", profile=True),
        train("the kernel now, optim=adamw_torch_fused", settings={"optim": "adamw_torch_fused"}),
        train("the kernel now, batch 16", bs=16),
    ))

    def scoring():
        unmerged = score("LoRA unmerged, 2,000 rows", test_rows[:2000])
        results["merged_layers"] = merge_adapters(model)
        merged = score("adapter merged, 2,000 rows", test_rows[:2000])
        results["scores_unmerged_vs_merged"] = agreement(unmerged, merged)
        print("agreement", results["scores_unmerged_vs_merged"], flush=True)
        score("adapter merged, 10,000 rows", test_rows)
        score("adapter merged, 10,000 rows, 32k tokens a batch", test_rows, 32768)

    section("probe_score", scoring)
    save()


def probe_cpu() -> None:
    """Is a step bound by the GPU or by Python? Time spent queueing a step against time spent waiting for it, the
    Python functions that take the CPU time (cProfile), and the allocator's retries at batch 16."""
    import cProfile
    import pstats

    import unsloth  # noqa: F401
    import torch

    from runtime import training

    results["device"] = torch.cuda.get_device_name(0)
    config = kit_config(UNSLOTH_8BIT)
    train_rows = random_rows(length_mix(4000, 0), 0)
    model, tokenizer, plan = kit_model(config)
    timing = {"queue": 0.0, "wait": 0.0}
    real_step = training.train_step

    def timed_step(*args, **kwargs):
        started = time.perf_counter()
        out = real_step(*args, **kwargs)
        timing["queue"] += time.perf_counter() - started
        started = time.perf_counter()
        float(out[0])
        timing["wait"] += time.perf_counter() - started
        return out

    training.train_step = timed_step  # kit_train imports it when called, so it gets this one
    record = kit_train(model, tokenizer, config, plan, train_rows, 8, timed_tokens=60000, warm=8, sync_every_step=True)
    training.train_step = real_step
    record.update({k + "_ms_per_step": round(1000 * v / (record["steps"] + record["warm_steps"]), 1) for k, v in timing.items()})
    results["queue_vs_wait"] = record
    print("queue_vs_wait", record, flush=True)
    save()

    profiler = cProfile.Profile()
    profiler.enable()
    kit_train(model, tokenizer, config, plan, train_rows, 8, timed_tokens=15000, warm=0)
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:40]  # by own time
    results["cprofile_tottime"] = [{"function": f"{Path(f[0]).name}:{f[1]}:{f[2]}", "calls": v[1], "tottime_s": round(v[2], 3),
                                    "cumtime_s": round(v[3], 3)} for f, v in rows]
    for r in results["cprofile_tottime"][:40]:
        print("cprofile", r, flush=True)
    save()

    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_stats().get("num_alloc_retries", 0)
    record = kit_train(model, tokenizer, config, plan, train_rows, 16, timed_tokens=100000, warm=8)
    record["alloc_retries"] = torch.cuda.memory_stats().get("num_alloc_retries", 0) - before
    record["max_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    results["batch16"] = record
    print("batch16", {k: v for k, v in record.items() if k != "profile"}, flush=True)
    save()


def probe_steady(label: str) -> None:
    """Training after a long warm-up (every width seen once), at batch 8 and 16: run it once plainly and once with
    UNSLOTH_BLOCK_CUDAGRAPHS=1 (CUDA graphs inside unsloth's compiled decoder blocks), in separate processes."""
    import unsloth  # noqa: F401
    import torch

    RESULT_FILE["name"] = f"steady-{label}.json"
    results["device"] = torch.cuda.get_device_name(0)
    results["env"] = {k: v for k, v in os.environ.items() if k.startswith("UNSLOTH_")}
    config = kit_config(UNSLOTH_8BIT)
    train_rows = random_rows(length_mix(6000, 0), 0)
    model, tokenizer, plan = kit_model(config)
    results["steady"] = []
    for bs, warm in ((8, 60), (16, 30)):
        started = time.time()
        record = kit_train(model, tokenizer, config, plan, train_rows, bs, timed_tokens=200000, warm=warm)
        record["wall_with_warm_s"] = round(time.time() - started, 1)
        record["label"] = label
        results["steady"].append(record)
        print("steady", label, record, flush=True)
        save()


def ensure_adapter(config: dict) -> None:
    """The adapter kit's training part saved, or (PARTS without kit) an untrained one: same shapes, same speed."""
    import torch

    from runtime.modeling import attach_lora, load_base_model

    if Path(KIT_ADAPTER).is_dir():
        return
    base, _ = load_base_model(MODEL_DIR, engine="hf", dtype=torch.bfloat16, quantize=True, max_seq_length=2048)
    attach_lora(base, config, engine="hf", gradient_checkpointing=False).save_pretrained(KIT_ADAPTER)
    del base
    free_gpu()


def attention_check() -> None:
    """Flash attention over packed rows (attention.flash_packed_attention) against each row on its own through
    scaled_dot_product_attention: outputs and gradients, Llama-3.1-8B's heads (32 query, 8 key/value, dim 128)."""
    import torch

    from runtime.attention import causal_attention, flash_packed_attention, varlen_attention

    lengths = length_mix(8, 5)
    total, bounds = sum(lengths), [0]
    for n in lengths:
        bounds.append(bounds[-1] + n)
    torch.manual_seed(0)
    q = torch.randn(1, 32, total, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(1, 8, total, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(1, 8, total, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    cu = torch.tensor(bounds, dtype=torch.int32, device="cuda")
    attend = flash_packed_attention(varlen_attention())
    packed, _ = attend(None, q, k, v, scaling=128**-0.5, cu_seq_lens_q=cu, max_length_q=max(lengths))
    grads = torch.autograd.grad(packed.float().square().sum(), (q, k, v))
    rows = torch.cat([causal_attention(q[:, :, a:b], k[:, :, a:b], v[:, :, a:b], 128**-0.5)[0] for a, b in zip(bounds, bounds[1:])], dim=1)
    row_grads = torch.autograd.grad(rows.float().square().sum(), (q, k, v))
    results["attention_check"] = {
        "varlen_signature": str(inspect.signature(varlen_attention())), "lengths": lengths,
        "max_abs_diff_out": (packed.float() - rows.float()).abs().max().item(),
        "max_abs_diff_grads": [(a.float() - b.float()).abs().max().item() for a, b in zip(grads, row_grads)],
        "max_abs_out": rows.float().abs().max().item(),
    }
    print("attention_check", results["attention_check"], flush=True)
    save()


def smoke() -> None:
    """GPU checks before the long runs (no wheels needed): attention_check, then a 2-layer model of Llama-3.1-8B's
    widths (bf16, random weights and adapters): packed rows, fused projections and compiled layers against padded rows
    and peft's own layers run eagerly: loss and LoRA gradients, and what torch.compile made of it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from runtime.attention import use_packed_attention
    from runtime.data import collate
    from runtime.fusion import fuse_projections
    from runtime.modeling import attach_lora, compile_layers
    from runtime.training import label_loss

    RESULT_FILE["name"] = "smoke.json"
    results["device"] = torch.cuda.get_device_name(0)
    results["versions"] = {"torch": torch.__version__}
    attention_check()
    config = kit_config({})
    shape = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=2, num_attention_heads=32,
                        num_key_value_heads=8, max_position_embeddings=4096, tie_word_embeddings=False)
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = LlamaForCausalLM(shape).to(torch.bfloat16)
        model = attach_lora(model, config, engine="hf", gradient_checkpointing=False).train()
        torch.manual_seed(1)
        for p in model.parameters():
            if p.requires_grad:
                torch.nn.init.normal_(p, std=0.02)
        models.append(model)
    eager, fast = models
    results["smoke_attention"] = use_packed_attention(fast, True)
    results["smoke_fused_groups"] = fuse_projections(fast.get_base_model().model.layers)
    compile_layers(fast)
    checks = []
    for seed in range(4):
        lengths = length_mix(8, 10 + seed)
        rows = random_rows(lengths, seed)
        rows = [[min(t, 31999) for t in r] for r in rows]
        labels = [500 + (i % 2) for i in range(8)]
        record = {"tokens": sum(lengths)}
        for name, model, packed in (("eager_padded", eager, False), ("fast_packed", fast, True)):
            model.zero_grad(set_to_none=True)
            started = time.perf_counter()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = label_loss(model, collate(rows, 0, label_ids=labels, packed=packed, pad_to_multiple=8, device="cuda"))
            loss.backward()
            torch.cuda.synchronize()
            record[name + "_s"] = round(time.perf_counter() - started, 3)
            record[name + "_loss"] = loss.item()
            record[name + "_grads"] = torch.cat([p.grad.flatten().float() for p in model.parameters() if p.requires_grad])
        a, b = record.pop("eager_padded_grads"), record.pop("fast_packed_grads")
        record["grad_rel_diff"] = round(((a - b).norm() / a.norm()).item(), 5)
        checks.append(record)
        print("smoke", record, flush=True)
    results["smoke_checks"] = checks
    results["dynamo_counters"] = dynamo_counters()
    print("dynamo", results["dynamo_counters"], flush=True)
    save()








def host_profile(model_key: str) -> None:
    """Where the host's time goes in kit's default step at batch 8 (cProfile over ~6 steps, own time), and how many
    kernels a step launches (torch.profiler): a step of a small model is bound by the host, not by the GPU."""
    import cProfile
    import pstats

    import torch
    from torch.profiler import ProfilerActivity, profile

    from common import MODELS, model_facts

    path = MODELS.get(model_key, model_key)
    facts = model_facts(path)
    config = kit_config({}, path)
    model, tokenizer, plan = kit_model(config)
    rows = [[min(t, facts["vocab"] - 1) for t in r] for r in random_rows(length_mix(6000, 0), 0)]
    kit_train(model, tokenizer, config, plan, rows, 8, timed_tokens=30000, warm=20)
    profiler = cProfile.Profile()
    profiler.enable()
    out = kit_train(model, tokenizer, config, plan, rows, 8, timed_tokens=15000, warm=0)
    profiler.disable()
    top = sorted(pstats.Stats(profiler).stats.items(), key=lambda kv: -kv[1][2])[:30]
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        kit_train(model, tokenizer, config, plan, rows, 8, timed_tokens=9000, warm=0)
        torch.cuda.synchronize()
    events = prof.key_averages()
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx"))
    results["host_profile"] = {"steps": out["steps"], "seconds": out["seconds"], **facts, "kernel_launches_in_9000_tokens": launches,
                               "cprofile_tottime": [{"function": f"{Path(f[0]).name}:{f[1]}:{f[2]}", "calls": v[1], "tottime_s": round(v[2], 3)}
                                                    for f, v in top]}
    save()


if __name__ == "__main__":
    mode = sys.argv[1]
    OUT.mkdir(parents=True, exist_ok=True)
    if mode == "smoke":
        smoke()
    elif mode == "probe-cpu":
        RESULT_FILE["name"] = "probe-cpu.json"
        probe_cpu()
    elif mode == "probe-steady":
        probe_steady(sys.argv[2])
    elif mode == "probe-hf":
        probe_hf(sys.argv[2])
    elif mode == "probe":
        RESULT_FILE["name"] = "probe.json"
        probe()
    elif mode == "host-profile":
        RESULT_FILE["name"] = "host-profile.json"
        host_profile(sys.argv[2])
