"""Issue 13: packed attention's torch 2.10 fallback against the primary flash varlen path, on a CUDA GPU.

    python bench/varlen_fallback.py          # writes $OUT/varlen_fallback.json (default /tmp/out), prints it
    python bench/varlen_fallback.py selftest # the same plumbing on the CPU, varlen_attn played by row-by-row attention

torch 2.10 (Kaggle's image) has varlen_attn(q, k, v, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False,
return_aux=None): no scale, window_size or enable_gqa. kernels/runtime/attention.varlen_call then repeats the key
and value heads and scales q itself. This forces that path on a newer torch (the installed varlen_attn behind 2.10's
signature) and compares it with the primary one (scale and enable_gqa passed to flash attention) and with each row
through scaled_dot_product_attention: outputs and q/k/v gradients for Llama-3.1-8B's heads (32 query, 8 key/value,
dim 128) at the default scale and another, then loss and LoRA gradients of a 2-layer Llama of 8B's widths trained
on packed rows with each.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("OUT", "/tmp/out"))
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "kernels"))  # the kernels' runtime, imported as `runtime.<module>`


def as_torch_210(varlen_attn):
    """The installed varlen_attn behind torch 2.10's signature (what Kaggle's image has)."""
    parameters = inspect.signature(varlen_attn).parameters

    def varlen_attn_210(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False, return_aux=None):
        causal = ({"window_size": (-1, 0) if is_causal else (-1, -1)} if "window_size" in parameters else {"is_causal": is_causal})
        return varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, **causal)

    return varlen_attn_210


def lengths_for(count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [max(8, min(1900, int(rng.lognormvariate(5.8, 0.5)))) for _ in range(count)]


DEVICE = {"name": "cuda", "dtype": "bfloat16"}


def attention_case(primary, fallback, scale: float, seed: int) -> dict:
    import torch

    from runtime.attention import causal_attention

    lengths = lengths_for(8, seed)
    bounds = [0]
    for n in lengths:
        bounds.append(bounds[-1] + n)
    torch.manual_seed(seed)
    dtype = getattr(torch, DEVICE["dtype"])
    q, k, v = (torch.randn(1, h, bounds[-1], 128, device=DEVICE["name"], dtype=dtype, requires_grad=True) for h in (32, 8, 8))
    cu = torch.tensor(bounds, dtype=torch.int32, device=DEVICE["name"])
    outs = {}
    for name, attend in (("primary", primary), ("fallback", fallback)):
        out, _ = attend(None, q, k, v, scaling=scale, cu_seq_lens_q=cu, max_length_q=max(lengths))
        outs[name] = (out, torch.autograd.grad(out.float().square().sum(), (q, k, v)))
    rows = torch.cat([causal_attention(q[:, :, a:b], k[:, :, a:b], v[:, :, a:b], scale)[0] for a, b in zip(bounds, bounds[1:])], dim=1)
    outs["rows"] = (rows, torch.autograd.grad(rows.float().square().sum(), (q, k, v)))

    def diff(a: str, b: str) -> dict:
        (oa, ga), (ob, gb) = outs[a], outs[b]
        return {"out": (oa.float() - ob.float()).abs().max().item(),
                "grads_qkv": [(x.float() - y.float()).abs().max().item() for x, y in zip(ga, gb)]}

    return {"scale": scale, "tokens": bounds[-1], "max_abs_out": rows.float().abs().max().item(),
            "fallback_vs_primary": diff("fallback", "primary"), "primary_vs_rows": diff("primary", "rows"),
            "fallback_vs_rows": diff("fallback", "rows")}


def model_case(primary, fallback, layers: int = 2, hidden: int = 4096) -> dict:
    """A 2-layer Llama of 8B's widths with LoRA, one packed micro-batch: loss and LoRA gradients with each path."""
    import torch
    from transformers import AttentionInterface, LlamaConfig, LlamaForCausalLM

    from runtime.attention import PACKED_ATTENTION
    from runtime.data import collate
    from runtime.modeling import attach_lora
    from runtime.training import label_loss
    from kit.workspace.kernel_config import make_config, script_settings

    config = script_settings(make_config("train", {"competition": "varlen", "model": "none", "max_seq_length": 2048}))
    shape = LlamaConfig(vocab_size=32000, hidden_size=hidden, intermediate_size=hidden * 7 // 2, num_hidden_layers=layers,
                        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=4096, tie_word_embeddings=False)
    torch.manual_seed(0)
    dtype = getattr(torch, DEVICE["dtype"])
    with torch.device(DEVICE["name"]):
        model = LlamaForCausalLM(shape).to(dtype)
    model = attach_lora(model, config, engine="hf", gradient_checkpointing=False).train()
    torch.manual_seed(1)
    for p in model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.02)
    rng = random.Random(3)
    rows = [[rng.randrange(100, 31999) for _ in range(n)] for n in lengths_for(8, 3)]
    labels = [500 + (i % 2) for i in range(8)]
    results = {}
    for name, attend in (("primary", primary), ("fallback", fallback)):
        AttentionInterface.register(PACKED_ATTENTION, attend)
        model.get_base_model().set_attn_implementation(PACKED_ATTENTION)
        model.zero_grad(set_to_none=True)
        with torch.autocast(DEVICE["name"], dtype=dtype, enabled=DEVICE["name"] == "cuda"):
            loss = label_loss(model, collate(rows, 0, label_ids=labels, packed=True, pad_to_multiple=8, device=DEVICE["name"]))
        loss.backward()
        grads = torch.cat([p.grad.flatten().float() for p in model.parameters() if p.requires_grad])
        results[name] = (loss.item(), grads)
    (la, ga), (lb, gb) = results["primary"], results["fallback"]
    return {"loss_primary": la, "loss_fallback": lb, "loss_abs_diff": abs(la - lb),
            "grad_rel_diff": ((ga - gb).norm() / ga.norm()).item(), "grad_max_abs_diff": (ga - gb).abs().max().item()}


def selftest() -> int:
    """The script's plumbing on the CPU (fp32, a small model): varlen_attn played by tests/test_attention_fallback.py's
    references of both signatures; the differences must be ~0."""
    from runtime.attention import flash_packed_attention
    from tests.test_attention_fallback import varlen_attn_210, varlen_attn_new

    DEVICE.update(name="cpu", dtype="float32")
    primary, fallback = flash_packed_attention(varlen_attn_new), flash_packed_attention(varlen_attn_210)
    result = {"attention": [attention_case(primary, fallback, scale, seed) for seed, scale in ((0, 128**-0.5), (1, 0.05))],
              "model": model_case(primary, fallback, layers=1, hidden=256)}
    print(json.dumps(result, indent=2))
    worst = max([c["fallback_vs_primary"]["out"] for c in result["attention"]] + [result["model"]["grad_rel_diff"]])
    return 0 if worst < 1e-4 else 1


def main() -> int:
    if sys.argv[1:] == ["selftest"]:
        return selftest()
    import torch

    from runtime.attention import flash_packed_attention, varlen_attention

    varlen = varlen_attention()
    if not torch.cuda.is_available() or varlen is None:
        print("needs a CUDA GPU and a torch with torch.nn.attention.varlen")
        return 1
    primary, fallback = flash_packed_attention(varlen), flash_packed_attention(as_torch_210(varlen))
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "varlen_signature": str(inspect.signature(varlen)),
              "attention": [attention_case(primary, fallback, scale, seed) for seed, scale in ((0, 128**-0.5), (1, 0.05))],
              "model": model_case(primary, fallback)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "varlen_fallback.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
