"""bench/peers.py compares kit with trl's SFTTrainer on equal terms: the collator that feeds kit's packed attention
to trl trains the same arithmetic as trl's own padding-free path, and the timing records count only prompt tokens.

A check of the benchmark, not of kit (tests/ never imports bench/): `python -m pytest bench/check_peers.py` with trl and
datasets installed, before a device call that compares the peers."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("trl")
pytest.importorskip("datasets")


def test_packed_collator_trains_what_trls_padding_free_path_trains(tmp_path, monkeypatch):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from bench import peers
    from bench.gpu_verify import make_tokenizer

    model_dir = tmp_path / "tiny"
    torch.manual_seed(0)
    shape = LlamaConfig(vocab_size=4000, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, tie_word_embeddings=True)
    LlamaForCausalLM(shape).save_pretrained(model_dir)
    make_tokenizer().save_pretrained(model_dir)
    monkeypatch.setattr(peers, "OUT", tmp_path / "out")
    monkeypatch.setattr(peers, "RESULTS", tmp_path / "out" / "peers.json")
    monkeypatch.setattr(peers, "WARM_STEPS", 1)
    monkeypatch.setattr(peers, "MIN_TIMED_STEPS", 2)
    monkeypatch.setattr(peers, "TIMED_TOKENS", 0)
    monkeypatch.setattr(peers, "LOGGING_STEPS", 1)
    monkeypatch.chdir(tmp_path)

    peers.trl_peer(str(model_dir), ["sdpa", "varlen"])

    records = json.loads((tmp_path / "out" / "peers.json").read_text())
    assert [r.get("attention") for r in records] == ["sdpa", "varlen"], records
    sdpa, varlen = records
    assert varlen["attn_implementation"] == "kit_packed"
    # same weights, same rows, same order (seed): the same losses, step by step
    assert len(sdpa["losses"]) == 3
    assert sdpa["losses"] == pytest.approx(varlen["losses"], rel=1e-3)
    # the timed steps count 8 prompts each, never the label token or padding
    assert sdpa["step_tokens"] == varlen["step_tokens"]
    assert all(8 * 96 <= t <= 8 * 1929 for t in sdpa["step_tokens"])
    assert sdpa["useful_tokens_per_s"] > 0 and sdpa["steps"] == 2
