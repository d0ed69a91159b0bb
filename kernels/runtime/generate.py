"""Sampling completions: N per row from the prompt, with vLLM where it is installed on a GPU, else transformers'
`generate`, batched; within a time budget.

    sampler = load_sampler(run.plan.generation.value, config, adapter_dir, run)   # the plan chose the engine (and says why)
    texts = sampler.complete(["Problem: ...\\nSolution:\\n"], seconds=60.0)

transformers stops a batch's sampling at `seconds` (generate's max_time); what was written by then is what the row
has (its answer is read from it, or the fallback is given). vLLM has no such stop, so it generates one row at a time
and the caller keeps the time between rows.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.environment import log
from runtime.modeling import load_for_scoring, resolve_model

@dataclass
class Sampler:
    """The loaded model that samples completions; `complete` gives each prompt's N completions (texts)."""

    engine: str
    model: object
    tokenizer: object
    device: str
    samples: int
    temperature: float
    max_new_tokens: int
    batch_rows: int = 8
    lora: object = None  # vLLM's LoRARequest for an adapter

    def complete(self, prompts: list[str], seconds: float | None = None) -> list[list[str]]:
        """N completions of each prompt; transformers stops sampling a batch after `seconds` (what is written stays)."""
        if self.engine == "vllm":
            return self._complete_vllm(prompts)
        out: list[list[str]] = []
        started = time.time()
        for i in range(0, len(prompts), self.batch_rows):
            left = None if seconds is None else max(seconds - (time.time() - started), 0.05)
            out.extend(self._complete_batch(prompts[i:i + self.batch_rows], left))
        return out

    def _complete_batch(self, prompts: list[str], seconds: float | None) -> list[list[str]]:
        import torch

        tok = self.tokenizer
        tok.padding_side = "left"  # generation continues from the last token of every row
        enc = tok(prompts, return_tensors="pt", padding=True).to(self.device)
        sample = self.temperature > 0
        kwargs = {"do_sample": sample, "num_return_sequences": self.samples, "max_new_tokens": self.max_new_tokens,
                  "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id}
        if sample:
            kwargs["temperature"] = self.temperature
        else:  # greedy: every sample the same; one is enough and the vote sees it N times
            kwargs["num_return_sequences"] = 1
        if seconds is not None:
            kwargs["max_time"] = seconds
        with torch.inference_mode():
            ids = self.model.generate(**enc, **kwargs)
        texts = tok.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        per_row = kwargs["num_return_sequences"]
        rows = [texts[i * per_row:(i + 1) * per_row] for i in range(len(prompts))]
        return rows if sample else [r * self.samples for r in rows]

    def _complete_vllm(self, prompts: list[str]) -> list[list[str]]:
        from vllm import SamplingParams

        params = SamplingParams(n=self.samples, temperature=self.temperature, max_tokens=self.max_new_tokens)
        results = self.model.generate(prompts, params, lora_request=self.lora, use_tqdm=False)
        return [[c.text for c in r.outputs] for r in results]


def load_sampler(engine: str, config: dict, adapter_dir: Path | None, run) -> Sampler:
    """The model that samples, as `engine` loads it: the base with the adapter merged (transformers), or vLLM with the
    adapter as a LoRA request."""
    started = time.time()
    settings = dict(samples=config["samples"], temperature=config["temperature"], max_new_tokens=config["max_new_tokens"],
                    batch_rows=config["batch_size"])
    if engine == "vllm":
        from vllm import LLM
        from vllm.lora.request import LoRARequest

        from_adapter = adapter_dir is not None
        rank = json.loads((Path(adapter_dir) / "adapter_config.json").read_text()).get("r", 16) if from_adapter else 16
        llm = LLM(model=resolve_model(config["model"]), enable_lora=from_adapter, max_lora_rank=max(int(rank), 16),
                  max_model_len=config["max_seq_length"] + config["max_new_tokens"], seed=config["seed"])
        lora = LoRARequest("adapter", 1, str(adapter_dir)) if from_adapter else None
        log(f"sampler: vLLM loaded in {time.time() - started:.0f} s")
        return Sampler("vllm", llm, llm.get_tokenizer(), "cuda", lora=lora, **settings)
    import torch

    model, tokenizer = load_for_scoring(config["model"], adapter_dir, engine="hf", dtype=run.dtype, quantize=run.plan.load_in_4bit.value,
                                        max_seq_length=config["max_seq_length"], device=0, dequantize=config["dequantize_base"], fuse=False)
    model.config.use_cache = True  # loading turned the cache off for training; sampling needs it
    torch.manual_seed(config["seed"])
    log(f"sampler: transformers generate on {run.device}, {config['samples']} samples a row, temperature {config['temperature']}, "
        f"up to {config['max_new_tokens']} new tokens, loaded in {time.time() - started:.0f} s")
    return Sampler("transformers", model, tokenizer, run.device, **settings)

