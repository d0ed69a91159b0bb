"""transformers + peft + trl's SFTTrainer at its best documented settings, on the protocol's rows and run length.

    python bench/peers/trl_peft.py MODEL [--attention varlen|sdpa] [--no-compile]

MODEL: 8b, smollm2, qwen15 (random weights; `python bench/train_speed.py prep MODEL` first) or a model folder.
The settings (bench/RESULTS.md, Protocol): the base in bf16 (no 4-bit: faster with this much memory), LoRA through
`peft_config`, `torch_compile=True` (transformers compiles the whole model), padding-free rows with a
completion-only loss, trl's fused output layer (trl 1.15 installs it itself: log-probabilities at the labelled
positions only, no full logits), and flash varlen attention: `varlen` registers PyTorch's flash varlen attention
with transformers (what kit uses; no flash-attn package exists for this machine) fed by a packing collator, `sdpa`
is what transformers gives padding-free rows without it (a block-diagonal mask from the position ids). Records go
to $OUT/train_speed.json. Env: STEPS (375), WARM_STEPS (20), REPEATS (3).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
from common import MODELS, TARGETS, guarded, model_facts  # noqa: E402
from peers.harness import PackedCollator, rows_for, trl_train  # noqa: E402


def main(model_key: str, attention: str, torch_compile: bool) -> None:
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from runtime.attention import use_packed_attention
    from runtime.plan import detect_machine

    path = MODELS.get(model_key, model_key)
    facts = model_facts(path)
    rows = rows_for(facts["vocab"])
    setup_started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    lora = LoraConfig(r=32, lora_alpha=64, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM", target_modules=TARGETS)
    placed = {"device_map": {"": 0}} if torch.cuda.is_available() else {}
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, attn_implementation="sdpa", **placed)
    model.config.use_cache = False
    collator = None
    if attention == "varlen":
        use_packed_attention(model, detect_machine().flash_attention())
        collator = PackedCollator(tokenizer.pad_token_id)
    what = f"transformers + peft + trl SFTTrainer, padding-free, {attention} attention{', torch_compile' if torch_compile else ''}"
    trl_train(model, tokenizer, rows, what, facts, trainer="trl", collator=collator, peft_config=lora, torch_compile=torch_compile,
              extra={"attention": attention}, setup_started=setup_started)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--attention", choices=["varlen", "sdpa"], default="varlen")
    parser.add_argument("--no-compile", action="store_true", help="torch_compile=False (not the peer's best setting)")
    args = parser.parse_args()
    what = f"transformers + peft + trl SFTTrainer, {args.attention} attention, torch_compile={not args.no_compile}"
    guarded("train_speed", what, lambda: main(args.model, args.attention, not args.no_compile), trainer="trl", model=Path(MODELS.get(args.model, args.model)).name)
