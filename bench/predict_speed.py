"""How fast kit predicts (scores rows), and whether a compiled scorer gives the eager one's probabilities (a CUDA GPU).

    python bench/predict_speed.py 8b [VARIANT...]   # the infer kernel's scoring as its plan makes it (engine, packing,
                                                    # token budget) on 10,000 rows of the length mix, Llama-3.1-8B
                                                    # architecture (random weights, an untrained r=32 adapter merged),
                                                    # REPEATS (3) times back to back; then each VARIANT on 2,000 rows
    python bench/predict_speed.py check-compiled    # SmolLM2-135M's real weights (the bundled GGUF) on the practice
                                                    # competition's 500 validation rows: P(True) eager against the
                                                    # decoder layers compiled; the rule for a compiled default is a
                                                    # largest difference within 1e-3

VARIANT: packed-32k, packed-64k, padded-16k, packed-32k-compiled (rows packed or padded, padded tokens a batch,
decoder layers compiled). Each figure is the time of score_sequences over all rows after a warm-up on 300 rows; the
load is listed apart, and so is the first call's compilation where the layers are compiled. Records go to
$OUT/predict_speed.json. `python bench/train_speed.py prep 8b` first; on the device machine run it through
bench/device.sh (wheels; the bundled GGUF for check-compiled).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import common
from common import MODELS, SMOLLM2, guarded, record

REPEATS = int(os.environ.get("REPEATS", "3"))
VARIANTS = {
    # name: (packed rows, padded tokens a batch, decoder layers compiled)
    "packed-32k": (True, 32768, False),
    "packed-64k": (True, 65536, False),
    "padded-16k": (False, 16384, False),
    "packed-32k-compiled": (True, 32768, True),
}


def infer_plan(model: str):
    from runtime.modeling import read_model_config
    from runtime.plan import detect_machine, make_plan

    from kit.workspace.kernel_config import make_config, script_settings

    config = script_settings(make_config("infer", {"competition": "speed", "model": model, "max_seq_length": 2048}))
    return config, make_plan(config, detect_machine(), "infer", read_model_config(model))


def predict_8b(variants: list[str]) -> None:
    import torch

    import kit_steps
    from runtime.modeling import compile_layers, load_for_scoring
    from runtime.plan import pad_multiple

    config, plan = infer_plan(MODELS["8b"])
    kit_steps.ensure_adapter(kit_steps.kit_config(MODELS["8b"]))
    engine = plan.scoring_engines.value[0]
    started = time.time()
    model, tokenizer = load_for_scoring(MODELS["8b"], Path(kit_steps.KIT_ADAPTER), engine=engine, dtype=torch.bfloat16,
                                        quantize=plan.load_in_4bit.value, max_seq_length=config["max_seq_length"],
                                        dequantize=config["dequantize_base"], packed=plan.packing.value,
                                        flash=plan.attention.value == "flash varlen", fuse=config["fuse_projections"])
    base = {"model": "llama8b", "engine": engine, "packed": plan.packing.value, "score_tokens": plan.score_tokens.value,
            "load_s": round(time.time() - started, 1)}
    rows = common.random_rows(common.length_mix(10000, 1), 1)
    keep: dict = {}
    runs = [kit_steps.kit_score(model, tokenizer, rows, batch_size=config["batch_size"], max_tokens=plan.score_tokens.value,
                                multiple=pad_multiple(engine), packed=plan.packing.value, keep=keep) for _ in range(REPEATS)]
    record("predict_speed", {"what": "kit predict default (the infer kernel's plan), 10,000 rows", **base,
                             "seconds": common.summary([r["seconds"] for r in runs]), "runs": runs})
    reference = keep["prob_true"]
    compiled = False
    for name in variants:
        packed, tokens, compile_ = VARIANTS[name]

        def one(name=name, packed=packed, tokens=tokens, compile_=compile_):
            nonlocal compiled
            first_call_s = None
            if compile_ and not compiled:
                compile_layers(model)
                compiled = True
                started = time.perf_counter()
                kit_steps.kit_score(model, tokenizer, rows[:300], batch_size=config["batch_size"], max_tokens=tokens, multiple=8,
                                    packed=packed, warm_rows=0)
                first_call_s = round(time.perf_counter() - started, 1)  # the compilation, paid once a run
            kept: dict = {}
            out = kit_steps.kit_score(model, tokenizer, rows[::5], batch_size=config["batch_size"], max_tokens=tokens, multiple=8,
                                      packed=packed, keep=kept)
            record("predict_speed", {"what": f"kit predict, variant {name} (not the default), 2,000 rows", **base, "variant": name,
                                     "compiled": compile_, "first_call_with_compilation_s": first_call_s,
                                     "vs_default": kit_steps.agreement(kept["prob_true"], reference[::5]), **out})

        guarded("predict_speed", f"predict variant {name}", one)


def check_compiled() -> None:
    """Eager against compiled decoder layers on real weights: the same validation rows the train kernel scores."""
    import torch

    import kit_steps
    from kit.workspace.kernel_config import make_config, script_settings
    from runtime.data import load_task, training_rows
    from runtime.evaluate import label_tokens
    from runtime.modeling import compile_layers, load_for_scoring, resolve_model
    from runtime.scoring import score_sequences

    root = common.kaggle_tree("learn", 20000, 2000, seed=0)
    os.environ["KIT_KAGGLE_ROOT"] = str(root)
    config = script_settings(make_config("train", {"competition": "practice-math", "model": SMOLLM2}))
    data = training_rows(config, load_task(config))
    path = resolve_model(config["model"])
    model, tokenizer = load_for_scoring(path, None, engine="hf", dtype=torch.bfloat16, quantize=False, max_seq_length=config["max_seq_length"],
                                        packed=True, flash=True)
    labels = label_tokens(tokenizer, data.task, config["prompt"], data, config)
    seqs = data.encode(tokenizer, labels.template, data.split.val, config["max_seq_length"])

    def score():
        return score_sequences(model, seqs, labels.token_ids, tokenizer.pad_token_id, batch_size=8, device="cuda:0",
                               autocast_dtype=torch.bfloat16, max_tokens=16384, multiple=8, packed=True).prob_true

    eager = score()
    compile_layers(model)
    compiled = score()
    result = kit_steps.agreement(eager, compiled)
    record("predict_speed", {"what": "compiled scorer against eager, SmolLM2-135M real weights, 500 validation rows", "rows": len(seqs),
                             **result, "within_1e-3": result["max_abs_diff"] <= 1e-3})


if __name__ == "__main__":
    mode = sys.argv[1]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if mode == "8b":
        predict_8b(sys.argv[2:])
    elif mode == "check-compiled":
        guarded("predict_speed", "check-compiled", check_compiled)
    else:
        sys.exit(__doc__)
