"""The reference competition's seed notebook as a recipe (not a trainer at equal settings): unsloth QLoRA nf4, r=128,
micro-batch 2 x grad-accum 4, rows padded to the longest of each micro-batch, loss on every token, unsloth's
recomputation, 8-bit AdamW; its prediction = `generate` 64 new tokens, then a regex for True/False.

    python bench/peers/seeds_recipe.py train MODEL     # MICRO_STEPS (48) timed micro-steps after 8 warm-up ones
    python bench/peers/seeds_recipe.py predict MODEL   # ROWS (96) rows of the length mix, batches of 16

A ratio of kit against this is recipe against recipe (rank, 4-bit, recomputation, loss on every token all differ)
and is labelled so in bench/RESULTS.md; the trainer-against-trainer comparison is trl_peft.py / unsloth_trl.py.
Records go to $OUT/train_speed.json (train) and $OUT/predict_speed.json (predict).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
from common import MODELS, TARGETS, free_gpu, guarded, length_mix, model_facts, peak_gib, record  # noqa: E402


def load(path: str):
    import unsloth  # noqa: F401  (first: it patches transformers)
    import torch
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(path, max_seq_length=2048, load_in_4bit=True, dtype=torch.bfloat16)
    model = FastLanguageModel.get_peft_model(model, r=128, lora_alpha=128, lora_dropout=0, bias="none", target_modules=TARGETS,
                                             use_gradient_checkpointing="unsloth", random_state=3407)
    return model, tokenizer


def train(path: str) -> None:
    """The seeds' loop: micro-batch 2 in data order, padded to the longest, attention mask, loss on every token."""
    import bitsandbytes as bnb
    import torch

    facts = model_facts(path)
    model, _ = load(path)
    micro_steps, warm = int(os.environ.get("MICRO_STEPS", "48")), 8
    lengths = iter(length_mix(6000, 0))
    opt = bnb.optim.AdamW8bit([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
    model.train()

    def micro_step(k: int) -> int:
        ls = [next(lengths), next(lengths)]
        width = max(ls)
        ids = torch.randint(1000, min(120000, facts["vocab"]), (2, width), device="cuda")
        mask = torch.zeros(2, width, dtype=torch.long, device="cuda")
        for i, n in enumerate(ls):
            mask[i, :n] = 1
        out = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100))
        (out.loss / 4).backward()
        if k % 4 == 3:
            opt.step()
            opt.zero_grad(set_to_none=True)
        return sum(ls)

    for k in range(warm):
        micro_step(k)
    torch.cuda.synchronize()
    free_gpu()
    started, useful = time.perf_counter(), 0
    for k in range(micro_steps):
        useful += micro_step(k)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    record("train_speed", {"what": "the seeds' recipe (unsloth QLoRA r=128, mb 2 x ga 4, padded, loss on all tokens)", "trainer": "seeds recipe",
                           "useful_tokens_per_s": {"median": round(useful / seconds), "values": [round(useful / seconds)], "n": 1},
                           "micro_steps": micro_steps, "seconds": round(seconds, 1), "peak_gib": peak_gib(), **facts})


def predict(path: str) -> None:
    """Left-padded batches of 16, generate 64 new tokens, decode, regex True/False."""
    import torch
    from unsloth import FastLanguageModel

    facts = model_facts(path)
    model, tokenizer = load(path)
    FastLanguageModel.for_inference(model)
    lengths = length_mix(16 + int(os.environ.get("ROWS", "96")), 1)

    def one(ls: list[int]) -> None:
        width = max(ls)
        ids = torch.randint(1000, min(120000, facts["vocab"]), (len(ls), width), device="cuda")
        mask = torch.zeros(len(ls), width, dtype=torch.long, device="cuda")
        for i, n in enumerate(ls):
            mask[i, width - n:] = 1
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=64, min_new_tokens=64, do_sample=False,
                                 use_cache=True, pad_token_id=0)
        for text in tokenizer.batch_decode(out[:, width:], skip_special_tokens=True):
            re.search(r"\b(True|False)\b", text)

    one(lengths[:16])
    torch.cuda.synchronize()
    started = time.perf_counter()
    for i in range(16, len(lengths), 16):
        one(lengths[i:i + 16])
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    rows = len(lengths) - 16
    record("predict_speed", {"what": "the seeds' recipe: generate 64 + regex", "trainer": "seeds recipe", "rows": rows,
                             "rows_per_s": round(rows / seconds, 2), "seconds_for_10k_rows_projected": round(10000 * seconds / rows),
                             "peak_gib": peak_gib(), **facts})


if __name__ == "__main__":
    mode, model_key = sys.argv[1], sys.argv[2]
    path = MODELS.get(model_key, model_key)
    guarded("train_speed" if mode == "train" else "predict_speed", f"seeds recipe {mode}", lambda: {"train": train, "predict": predict}[mode](path))
