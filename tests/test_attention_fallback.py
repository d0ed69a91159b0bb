"""Packed attention on torch 2.10's varlen_attn (no scale, window_size or enable_gqa) against the primary path.

varlen_attn itself needs a CUDA GPU, so both signatures are played by a reference with the same semantics (each row
causal through scaled_dot_product_attention); bench/varlen_fallback.py compares the real one on a GPU.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from runtime.attention import flash_packed_attention, rowwise_packed_attention, varlen_call  # noqa: E402


def _rows(query, key, value, cu, causal, scale=None, gqa=False):
    bounds = cu.tolist()
    out = []
    for a, b in zip(bounds, bounds[1:]):
        q, k, v = (t[a:b].transpose(0, 1) for t in (query, key, value))
        out.append(torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale, enable_gqa=gqa).transpose(0, 1))
    return torch.cat(out)


def varlen_attn_210(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False, return_aux=None):
    """torch 2.10's signature; like its flash kernel, it takes as many key/value heads as query heads only."""
    if key.shape[1] != query.shape[1]:
        raise RuntimeError("number of heads in key/value must equal number of heads in query")
    return _rows(query, key, value, cu_seq_q, is_causal)


def varlen_attn_new(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, *, return_aux=None, scale=None, window_size=(-1, -1),
                    enable_gqa=False):
    """The signature of torch 2.11 and later: causal as window_size=(-1, 0), scale, grouped keys."""
    if key.shape[1] != query.shape[1] and not enable_gqa:
        raise RuntimeError("number of heads in key/value must equal number of heads in query")
    return _rows(query, key, value, cu_seq_q, tuple(window_size) == (-1, 0), scale, enable_gqa)


def _packed(seed=0, heads=4, kv_heads=2, dim=16, lengths=(5, 9, 3, 7)):
    torch.manual_seed(seed)
    total = sum(lengths)
    q, k, v = (torch.randn(1, h, total, dim, dtype=torch.float64, requires_grad=True) for h in (heads, kv_heads, kv_heads))
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    return q, k, v, cu, max(lengths)


@pytest.mark.parametrize("scale", [16**-0.5, 0.3])
def test_torch_210_fallback_gives_the_primary_paths_outputs_and_gradients(scale):
    q, k, v, cu, longest = _packed()
    results = []
    for attend in (flash_packed_attention(varlen_attn_new), flash_packed_attention(varlen_attn_210), rowwise_packed_attention):
        out, _ = attend(None, q, k, v, scaling=scale, cu_seq_lens_q=cu, max_length_q=longest)
        results.append((out, torch.autograd.grad(out.square().sum(), (q, k, v))))
    (primary, primary_grads), (fallback, fallback_grads), (rows, _) = results
    assert fallback.shape == primary.shape == (1, q.shape[2], q.shape[1], q.shape[3])
    torch.testing.assert_close(fallback, primary, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(primary, rows, rtol=1e-12, atol=1e-12)
    for a, b in zip(fallback_grads, primary_grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_default_scale_is_not_reapplied_on_torch_210():
    """At 1/sqrt(dim) (every Llama) the fallback leaves q untouched: bit for bit the primary's numbers."""
    q, k, v, cu, longest = _packed(seed=1, heads=4, kv_heads=4)
    q32, k32, v32 = (t.detach().float() for t in (q, k, v))
    a, _ = flash_packed_attention(varlen_attn_new)(None, q32, k32, v32, scaling=16**-0.5, cu_seq_lens_q=cu, max_length_q=longest)
    b, _ = flash_packed_attention(varlen_attn_210)(None, q32, k32, v32, scaling=16**-0.5, cu_seq_lens_q=cu, max_length_q=longest)
    assert torch.equal(a, b)


def test_varlen_call_passes_only_keywords_the_signature_has():
    seen = {}

    def varlen_attn_older(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False):
        seen.update(is_causal=is_causal, kv_heads=key.shape[1])
        return query

    q, k, v = torch.zeros(6, 4, 8), torch.zeros(6, 2, 8), torch.zeros(6, 2, 8)
    out = varlen_call(varlen_attn_older)(q, k, v, torch.tensor([0, 6], dtype=torch.int32), 6, 0.5)
    assert seen == {"is_causal": True, "kv_heads": 4}
    torch.testing.assert_close(out, q * (0.5 * 8**0.5))
