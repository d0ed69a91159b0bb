"""A check of the benchmark, not of kit (tests/ never imports bench/): the peers run on equal terms. The collator that
feeds kit's flash varlen attention to trl trains the same arithmetic as trl's own padding-free path, the timing
counts only prompt tokens, and the windows cover the run after its warm-up.

    python -m pytest bench/peers/check_harness.py     # with trl and datasets installed (.whl-a), before a device call
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("datasets")
pytest.importorskip("triton")  # trl's fused output layer is a Triton kernel: without it trl cannot train (a CPU-only torch)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/


def test_packed_collator_trains_what_trls_padding_free_path_trains(tmp_path, monkeypatch):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    import common
    from peers import harness, trl_peft

    model_dir = tmp_path / "tiny"
    torch.manual_seed(0)
    shape = LlamaConfig(vocab_size=4000, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, tie_word_embeddings=True)
    LlamaForCausalLM(shape).save_pretrained(model_dir)
    common.make_tokenizer().save_pretrained(model_dir)
    monkeypatch.setattr(common, "OUT", tmp_path / "out")
    monkeypatch.setattr(harness, "STEPS", 5)
    monkeypatch.setattr(harness, "WARM_STEPS", 1)
    monkeypatch.setattr(harness, "REPEATS", 2)
    monkeypatch.setattr(harness, "LOGGING_STEPS", 1)
    monkeypatch.chdir(tmp_path)

    for attention in ("sdpa", "varlen"):
        trl_peft.main(str(model_dir), attention, torch_compile=False)

    records = json.loads((tmp_path / "out" / "train_speed.json").read_text())
    assert [r.get("attention") for r in records] == ["sdpa", "varlen"], records
    sdpa, varlen = records
    assert varlen["attn_implementation"] == "kit_packed"
    # same weights, same rows, same order (seed): the same losses, step by step
    assert len(sdpa["losses"]) == 5
    assert sdpa["losses"] == pytest.approx(varlen["losses"], rel=1e-3)
    # every step counts its 8 prompts, never the label token or padding; two windows of 2 steps after the warm-up
    assert sdpa["step_tokens"] == varlen["step_tokens"]
    assert all(8 * 96 <= t <= 8 * 1929 for t in sdpa["step_tokens"])
    assert [w["steps"] for w in sdpa["windows"]] == [2, 2] and sdpa["useful_tokens_per_s"]["n"] == 2
