"""Issue 24: scoring 3 classes is not measurably slower than 2 (nor 5, nor 65): each class costs one column of the
label logits at the last prompt position, after the one forward pass every row takes anyway.

    python bench/class_count.py [--rows N] [--repeats R] [--device cpu|cuda] [--layers L]

SmolLM2-135M's shape with random weights (the time does not depend on the weights), N rows of random tokens of
60-400 tokens (the practice shapes' range), scored by runtime.scoring.score_sequences as the kernels call it,
with 2, 3, 5 and 65 label tokens, the counts taken in turn R times (so drift hits every count alike). Prints the
median and range of each count's seconds and writes $OUT/class_count.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "kernels", REPO):
    sys.path.insert(0, str(path))
OUT = Path(os.environ.get("OUT", "/tmp/out"))
COUNTS = (2, 3, 5, 65)


def smollm2_shape(layers: int = 30):
    """SmolLM2-135M's architecture (its config.json; `layers` of its 30 for a quicker CPU check), random weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=layers, num_attention_heads=9,
                         num_key_value_heads=3, max_position_embeddings=8192, tie_word_embeddings=True, rope_theta=100000.0)
    return LlamaForCausalLM(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--layers", type=int, default=30)
    options = parser.parse_args()
    import torch

    from runtime.scoring import score_sequences

    device = options.device if options.device != "cuda" or torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = smollm2_shape(options.layers).to(device=device, dtype=dtype)
    rng = random.Random(0)
    sequences = [[rng.randrange(100, 49000) for _ in range(rng.randint(60, 400))] for _ in range(options.rows)]
    label_ids = rng.sample(range(100, 49000), max(COUNTS))

    def score(count: int) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        scores = score_sequences(model, sequences, label_ids[:count], 0, batch_size=16, device=device, max_tokens=16384 if device == "cuda" else 0,
                                 multiple=8)
        assert len(scores.probs) == len(sequences) and len(scores.probs[0]) == count
        return time.perf_counter() - started

    score(2)  # warm-up: kernels chosen, memory allocated
    seconds: dict[int, list[float]] = {c: [] for c in COUNTS}
    for _ in range(options.repeats):
        for count in COUNTS:
            seconds[count].append(score(count))
    summary = {c: {"median_s": round(statistics.median(s), 4), "min_s": round(min(s), 4), "max_s": round(max(s), 4)} for c, s in seconds.items()}
    record = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": os.environ.get("KIT_COMMIT", ""), "device": device,
              "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None, "torch": torch.__version__, "rows": options.rows, "layers": options.layers,
              "repeats": options.repeats, "seconds": {str(c): s for c, s in seconds.items()}, "summary": {str(c): v for c, v in summary.items()},
              "ratio_3_to_2": round(summary[3]["median_s"] / summary[2]["median_s"], 4)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "class_count.json").write_text(json.dumps(record, indent=1))
    for count in COUNTS:
        s = summary[count]
        print(f"{count:>3} classes: median {s['median_s']:.3f} s (range {s['min_s']:.3f}-{s['max_s']:.3f}) for {options.rows} rows on {device} ({options.layers} layers)")
    print(f"3 classes / 2 classes: {record['ratio_3_to_2']:.3f}")


if __name__ == "__main__":
    main()
