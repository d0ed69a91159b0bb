"""What the peers share (imported, never run): trl's SFTTrainer on the benchmark's rows, timed as kit's loop is timed
(the same steps, warm-up and windows: common.run_timing), and the collators that feed it.

Same terms for every trainer: bench/common.py's rows (the length mix, random token ids, one label token after each
prompt), batch 8 (one optimizer step = 8 rows), LoRA r=32 alpha=64 on the 7 projections, lr 2e-4 cosine, warm-up 10,
weight decay 0.01, clipping 1.0, seed 3407, loss on the label only, bf16 (fp16 under T4=1), fused AdamW.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
import common  # noqa: E402
from common import T4, labels_for, record, run_timing  # noqa: E402

STEPS = int(os.environ.get("STEPS", "375"))  # the protocol's run length (375 or 1000)
WARM_STEPS = int(os.environ.get("WARM_STEPS", "20"))  # compilation falls in these
REPEATS = int(os.environ.get("REPEATS", "3"))  # equal consecutive windows timed after the warm-up
LOGGING_STEPS = 10  # trl logs (and reads) the loss every this many steps, as users leave it


def rows_for(vocab: int) -> list[list[int]]:
    """The training rows of every trainer: enough for STEPS steps of 8, the same lengths and ids for all."""
    return common.random_rows(common.length_mix(max(6000, 8 * STEPS + 64), 0), 0, vocab)


def window_bounds() -> set[int]:
    """The steps after which the GPU is synchronized before the clock is read: the warm-up's end and each window's."""
    size = (STEPS - WARM_STEPS) // REPEATS
    return {WARM_STEPS + k * size for k in range(REPEATS + 1)}


class PackedCollator:
    """Padding-free batches in the form kit's flash varlen attention reads (transformers' DataCollatorWithFlattening's
    form, less the key-side copies): one row of all tokens, positions restarting at each row, the rows' cumulative
    lengths (int32) and the longest row; labels -100 but the label."""

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


def trl_train(model, tokenizer, rows, what: str, facts: dict, *, trainer: str, collator=None, peft_config=None, extra: dict | None = None,
              trainer_cls=None, config_cls=None, torch_compile: bool = False, setup_started: float | None = None) -> None:
    """trl's SFTTrainer for STEPS steps at batch 8 with kit's hyperparameters; the protocol's timing of the run."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    if trainer_cls is None:
        from trl import SFTConfig as config_cls, SFTTrainer as trainer_cls  # noqa: N813

    bounds = window_bounds()
    marks: list[float] = []
    began: list[float] = []  # wall clock at the first step, for the setup's seconds (marks are perf_counter's)
    cuda = torch.cuda.is_available()  # the CPU only for checking the harness on a tiny model (check_harness.py)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            sync()
            marks.append(time.perf_counter())
            began.append(time.time())

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in bounds or state.global_step == STEPS:
                sync()
            marks.append(time.perf_counter())

    args = config_cls(
        output_dir="/tmp/trl-out", per_device_train_batch_size=8, gradient_accumulation_steps=1, max_steps=STEPS, learning_rate=2e-4,
        lr_scheduler_type="cosine", warmup_steps=10, weight_decay=0.01, max_grad_norm=1.0, bf16=cuda and not T4, fp16=cuda and T4,
        use_cpu=not cuda, optim="adamw_torch_fused", logging_steps=LOGGING_STEPS, save_strategy="no", report_to="none", seed=3407,
        gradient_checkpointing=False, max_length=None, completion_only_loss=True, padding_free=collator is None,
        dataloader_num_workers=0, remove_unused_columns=False, torch_compile=torch_compile,
    )
    n = 8 * (STEPS + 4)
    labels = labels_for(n)
    data = Dataset.from_dict(trl_dataset_rows(rows[:n], labels))
    started = time.time()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    sft = trainer_cls(model=model, args=args, train_dataset=data, processing_class=tokenizer, data_collator=collator,
                      peft_config=peft_config, callbacks=[Clock()])
    counting = CountingCollator(sft.data_collator)
    sft.data_collator = counting
    sft.train()
    sync()
    # the k-th batch built is step k's (a prefetch may build one more, never out of order)
    step_tokens = counting.tokens[:STEPS]
    timing = run_timing(marks[: STEPS + 1], step_tokens, warm=WARM_STEPS, repeats=REPEATS, rows_per_step=8,
                        setup_s=began[0] - (setup_started or started))
    record("train_speed", {"what": what, "trainer": trainer, "batch": 8, "torch_compile": torch_compile, **timing,
                           "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
                           "losses": [h["loss"] for h in sft.state.log_history if "loss" in h],
                           "attn_implementation": getattr(getattr(sft.model, "config", None), "_attn_implementation", None),
                           **facts, **(extra or {})})
    del sft
