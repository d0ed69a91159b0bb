"""Issue 6, two GPUs: scoring split across every GPU (score_on_devices, as both kernels call it) against one GPU.

    python bench/two_gpu.py     # on a machine with 2+ GPUs, after `python bench/train_speed.py prep 8b`; writes $OUT/two_gpu.json

Each GPU gets the base model as the kernels load it for scoring (transformers engine: the extra GPUs always load
that way; 4-bit NF4, dequantized where it fits), the same 4,000 rows of the competition's length mix, timed on GPU 0
alone and then on all GPUs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "kernels"))  # the kernels' runtime, imported as `runtime.<module>`
sys.path.insert(0, str(REPO / "bench"))
OUT = Path(os.environ.get("OUT", "/tmp/out"))


def main() -> None:
    import torch

    from runtime.plan import SCORE_TOKENS, pad_multiple
    from runtime.modeling import load_for_scoring
    from runtime.scoring import score_on_devices
    from speed import MODEL_DIR, length_mix, random_rows

    count = torch.cuda.device_count()
    result: dict = {"devices": [torch.cuda.get_device_name(k) for k in range(count)]}
    models, devices = [], []
    for k in range(count):
        started = time.time()
        model, tokenizer = load_for_scoring(MODEL_DIR, None, engine="hf", dtype=torch.bfloat16, quantize=True, max_seq_length=2048,
                                            device=k, dequantize="auto")
        models.append(model)
        devices.append(f"cuda:{k}")
        result[f"load_seconds_gpu{k}"] = round(time.time() - started, 1)
    rows = random_rows(length_mix(4000, 1), 1)

    def score(n: int, seqs):
        return score_on_devices(models[:n], devices[:n], seqs, 500, 501, tokenizer.pad_token_id, batch_size=8,
                                autocast_dtype=torch.bfloat16, max_tokens=SCORE_TOKENS, multiple=pad_multiple("hf"))

    score(count, rows[:400])  # warm-up on every GPU
    timings = {}
    for n in (1, count):
        torch.cuda.synchronize()
        started = time.perf_counter()
        scores = score(n, rows)
        seconds = time.perf_counter() - started
        timings[n] = scores.prob_true
        result[f"gpus_{n}"] = {"rows": len(rows), "seconds": round(seconds, 1), "rows_per_s": round(len(rows) / seconds, 1)}
        print(n, "GPU(s):", result[f"gpus_{n}"], flush=True)
    result["scaling"] = round(result[f"gpus_{count}"]["rows_per_s"] / result["gpus_1"]["rows_per_s"], 2)
    result["max_abs_diff_1_vs_all"] = max(abs(a - b) for a, b in zip(timings[1], timings[count]))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "two_gpu.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
