"""kit's own functions driven for timing (imported by train_speed.py, predict_speed.py and train_probes.py; never run):
the model as the train kernel loads and prepares it under its plan (kernels/runtime/plan.py), the train kernel's
loop (training_order, split_by_tokens, train_step, CUDA graphs where the plan takes them), and the kernels' scoring
(score_sequences). Nothing here is a re-implementation: each step calls the kernels' runtime.
"""

from __future__ import annotations

import time
from pathlib import Path

import common  # noqa: F401  (sys.path: kit, the kernels' runtime)
from common import MODELS, free_gpu, labels_for, peak_gib

KIT_ADAPTER = "/tmp/kit-adapter"


def kit_config(model: str, settings: dict | None = None) -> dict:
    """The train kernel's config with kit's defaults (as `kit build train` makes it) for a model folder."""
    from kit.workspace.kernel_config import make_config, script_settings

    return script_settings(make_config("train", {"competition": "speed", "model": model, "max_seq_length": 2048, **(settings or {})}))


def kit_model(config: dict, engine: str = "", dtype=None):
    """The base model as the train kernel loads it, the plan it makes, LoRA attached, the base dequantized, the
    projections fused and the layers compiled where the plan says so. Returns (model, tokenizer, plan summary)."""
    from runtime.attention import use_packed_attention
    from runtime.data import padded_width
    from runtime.environment import torch_dtype
    from runtime.modeling import load_base_model, read_model_config
    from runtime.plan import choose_dtype, detect_machine, make_plan
    from runtime.training import prepare_for_training

    machine = detect_machine()
    made = make_plan({**config, "engine": engine or config["engine"], "load_in_4bit": True}, machine, "train",
                     read_model_config(config["model"]))
    engine = made.engine.value
    dtype = dtype or torch_dtype(choose_dtype(config["dtype"], machine).value)
    started = time.time()
    model, tokenizer = load_base_model(config["model"], engine=engine, dtype=dtype, quantize=True, max_seq_length=config["max_seq_length"])
    load_seconds = time.time() - started
    packed = made.packing.value
    attention = use_packed_attention(model, made.attention.value == "flash varlen") if packed else "sdpa, padded rows"
    model, made = prepare_for_training(model, config, made, dtype=dtype, longest_row=padded_width(1929, made.pad_multiple.value))
    plan = {"engine": engine, "compiled": made.compile.value, "load_seconds": round(load_seconds, 1),
            "gradient_checkpointing": made.checkpointing.value, "chunk_tokens": made.chunk_tokens.value,
            "dequantized_base": made.dequantize_base.value, "packed": packed, "attention": attention,
            "fused": made.fuse_projections.value and made.dequantize_base.value, "dtype": str(dtype).removeprefix("torch."),
            "cuda_graphs": bool(made.cuda_graphs.value)}
    print("kit plan", plan, flush=True)
    return model, tokenizer, plan


def kit_train(model, tokenizer, config: dict, plan: dict, sequences: list[list[int]], batch_size: int, steps: int,
              multiple: int = 0, graphs: bool | None = None, sync_every_step: bool = False, on_step=None) -> tuple[list[float], list[int], dict]:
    """`steps` optimizer steps of the train kernel's loop at one micro-batch size. Returns the time each step ended
    (marks[0] = before the first), each step's useful (prompt) tokens, and what the graphs did. `graphs` overrides
    the plan's cuda_graphs; sync_every_step reads each loss at once (the kernel reads it one step later)."""
    import torch

    from runtime.data import collate, split_by_tokens, training_order
    from runtime.graphs import GraphedPasses
    from runtime.plan import pad_multiple
    from runtime.training import make_optimizer, train_step

    packed = plan.get("packed", False)
    multiple = 1 if packed else multiple or pad_multiple(plan.get("engine", "unsloth"))
    lengths = [len(s) for s in sequences]
    labels = labels_for(len(sequences))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, config["optim"], config["learning_rate"], config["weight_decay"])
    device = "cuda" if torch.cuda.is_available() else "cpu"  # the CPU only for checking this script on a tiny model
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    fp16 = plan.get("dtype") == "float16"  # the T4 profile: fp16 with a loss scaler, as the train kernel does
    scaler = torch.amp.GradScaler(device, enabled=fp16)
    autocast = lambda: torch.autocast(device, dtype=torch.float16 if fp16 else torch.bfloat16)  # noqa: E731
    graphed = plan.get("cuda_graphs", False) if graphs is None else graphs
    passes = GraphedPasses(model, torch.float16 if fp16 else torch.bfloat16, longest_row=max(lengths)) if graphed else None
    make_batch = lambda rows: collate(  # noqa: E731
        [sequences[r] for r in rows], tokenizer.pad_token_id, label_ids=[labels[r] for r in rows],
        completion_only=config["completion_only"], packed=packed, pad_to_multiple=multiple, device=device,
        pad_to_bucket=passes is not None and not passes.off,
    )
    chunks_of = lambda rows: split_by_tokens(rows, lengths, plan["chunk_tokens"], multiple, packed)  # noqa: E731
    order = iter(training_order(lengths, batch_size, config["group_by_length"] and not packed, seed=batch_size))
    model.train()
    unread: list = []
    marks, step_tokens = [], []
    sync()
    marks.append(time.perf_counter())
    for _ in range(steps):
        micro = [next(order) for _ in range(config["grad_accum"])]
        loss, tokens = train_step(model, micro, make_batch, chunks_of, optimizer=optimizer, scaler=scaler, trainable=trainable,
                                  max_grad_norm=config["max_grad_norm"], autocast=autocast, graphs=passes)
        # the kernel reads each step's loss (its non-finite check) once the next step is queued
        if unread:
            float(unread.pop())
        unread.append(loss)
        if sync_every_step:
            float(unread.pop())
        marks.append(time.perf_counter())
        step_tokens.append(tokens)
        if on_step is not None:
            on_step(len(step_tokens))
    if unread:
        float(unread.pop())
    sync()
    marks[-1] = time.perf_counter()
    note = {"cuda_graphs": passes is not None, **({"graphs_summary": passes.summary()} if passes is not None else {})}
    if passes is not None:
        passes.close()
    del optimizer
    return marks, step_tokens, {"batch_size": batch_size, "multiple": multiple, "packed": packed, "peak_gib": peak_gib(), **note}


def dynamo_counters() -> dict:
    """torch.compile's counts so far: graphs compiled, recompilations and their reasons, graph breaks."""
    from torch._dynamo.utils import counters

    return {k: {str(r)[:200]: n for r, n in v.items()} for k, v in counters.items() if k in ("stats", "recompiles", "graph_break")}


def kit_score(model, tokenizer, sequences: list[list[int]], batch_size: int, max_tokens: int, multiple: int = 0, keep: dict | None = None,
              packed: bool = False, warm_rows: int = 300) -> dict:
    """score_sequences as the kernels call it (rows sorted by length, token-budget batches), timed after a warm-up
    on `warm_rows` rows (0: the first call's compilation counts in the time)."""
    import torch

    from runtime.plan import pad_multiple
    from runtime.scoring import score_sequences

    def run(seqs):
        return score_sequences(model, seqs, [500, 501], tokenizer.pad_token_id, batch_size=batch_size, device="cuda:0",
                               autocast_dtype=torch.bfloat16, max_tokens=max_tokens, multiple=multiple or pad_multiple("unsloth"), packed=packed)

    if warm_rows:
        run(sequences[:warm_rows])
    torch.cuda.synchronize()
    free_gpu()
    started = time.perf_counter()
    scores = run(sequences)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    assert all(0.0 <= p <= 1.0 for p in scores.prob_true)
    if keep is not None:
        keep["prob_true"] = scores.prob_true
    return {"rows": len(sequences), "packed": packed, "seconds": round(seconds, 1), "rows_per_s": round(len(sequences) / seconds, 1),
            "useful_tokens_per_s": round(sum(map(len, sequences)) / seconds), "batch_size": batch_size, "max_tokens": max_tokens,
            "peak_gib": peak_gib()}


def ensure_adapter(config: dict) -> None:
    """An untrained r=32 adapter for the 8B model (same shapes, so the same scoring speed as a trained one)."""
    import torch

    from runtime.modeling import attach_lora, load_base_model

    if Path(KIT_ADAPTER).is_dir():
        return
    base, _ = load_base_model(MODELS["8b"], engine="hf", dtype=torch.bfloat16, quantize=True, max_seq_length=2048)
    attach_lora(base, config, engine="hf", gradient_checkpointing=False).save_pretrained(KIT_ADAPTER)
    del base
    free_gpu()


def agreement(a: list[float], b: list[float]) -> dict:
    """How far two lists of P(True) are apart: largest, 99th-percentile and median difference, and the share of rows
    on the same side of 0.5."""
    diffs = sorted(abs(x - y) for x, y in zip(a, b))
    return {"max_abs_diff": diffs[-1], "p99_abs_diff": diffs[int(0.99 * (len(diffs) - 1))], "median_abs_diff": diffs[len(diffs) // 2],
            "same_side_of_0.5": round(sum((x >= 0.5) == (y >= 0.5) for x, y in zip(a, b)) / len(a), 4)}
