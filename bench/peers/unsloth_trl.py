"""unsloth's FastLanguageModel and its patched trl SFTTrainer at unsloth's defaults, on the protocol's rows and length.

    python bench/peers/unsloth_trl.py MODEL

MODEL: 8b, smollm2, qwen15 (random weights; `python bench/train_speed.py prep MODEL` first) or a model folder.
Settings: the base in bf16 (`load_in_4bit=False`: room enough; under T4=1 4-bit in fp16, as a T4 needs), LoRA r=32
through `get_peft_model` with no recomputation (under T4=1 unsloth's own, without which it runs out of 15 GiB),
padding-free rows (unsloth then attends with PyTorch's flash varlen), completion-only loss; unsloth compiles its
blocks itself. Records go to $OUT/train_speed.json. Env: STEPS (375), WARM_STEPS (20), REPEATS (3), T4.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/
from common import MODELS, T4, TARGETS, emulate_t4, guarded, model_facts  # noqa: E402
from peers.harness import rows_for, trl_train  # noqa: E402


def main(model_key: str) -> None:
    import unsloth  # first: it patches transformers and trl
    import torch
    from unsloth import FastLanguageModel

    path = MODELS.get(model_key, model_key)
    facts = model_facts(path)
    rows = rows_for(facts["vocab"])
    setup_started = time.time()
    model, tokenizer = FastLanguageModel.from_pretrained(path, max_seq_length=2048, dtype=torch.float16 if T4 else torch.bfloat16, load_in_4bit=T4)
    model = FastLanguageModel.get_peft_model(model, r=32, lora_alpha=64, lora_dropout=0, bias="none", target_modules=TARGETS,
                                             use_gradient_checkpointing="unsloth" if T4 else False, random_state=3407)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    from trl import SFTConfig, SFTTrainer

    trl_train(model, tokenizer, rows, "unsloth + trl SFTTrainer, padding-free" + (", 4-bit fp16, recomputation" if T4 else ", bf16 LoRA"),
              facts, trainer="unsloth", extra={"unsloth": unsloth.__version__}, trainer_cls=SFTTrainer, config_cls=SFTConfig,
              setup_started=setup_started)


if __name__ == "__main__":
    if T4:
        emulate_t4()
    guarded("train_speed", "unsloth + trl SFTTrainer", lambda: main(sys.argv[1]), trainer="unsloth", model=Path(MODELS.get(sys.argv[1], sys.argv[1])).name)
