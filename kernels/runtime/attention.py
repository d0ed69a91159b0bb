"""Padding-free batches: several rows packed into one sequence, each attending only to itself.

A packed batch is one row of all its rows' tokens back to back, with positions restarting at each row and the
rows' boundaries (cumulative lengths) passed to the attention. On a CUDA GPU with flash attention (compute
capability 8.0 or newer, torch >= 2.10: plan.choose_attention) PyTorch's variable-length flash attention computes exactly the rows'
causal attention and nothing across them (varlen_call adapts to the keywords the installed torch takes); elsewhere each row runs through scaled_dot_product_attention on its own
(the same numbers, slower: for the CPU and the tests). The attention is registered with transformers'
AttentionInterface, so the model's own layers (and a compiled copy of them) call it.
"""

from __future__ import annotations

import inspect

PACKED_ATTENTION = "kit_packed"


def varlen_attention():
    """PyTorch's variable-length flash attention (torch.nn.attention.varlen.varlen_attn), or None where torch lacks it."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn


def varlen_call(varlen_attn):
    """`call(q, k, v, cu_seq_lens, max_length, scale)`: causal varlen attention with grouped keys and a given scale,
    whatever the installed varlen_attn takes. torch 2.10 (Kaggle's image) has only is_causal: no scale, no
    window_size, no enable_gqa; later ones take window_size=(-1, 0) for causal, scale and enable_gqa. Where a keyword
    is missing, the same numbers come another way: key/value heads repeated for their query heads, and q multiplied
    by scale * sqrt(dim) (skipped for the default 1/sqrt(dim), so a Llama's attention is bit for bit the primary's)."""
    parameters = inspect.signature(varlen_attn).parameters
    causal = {"window_size": (-1, 0)} if "window_size" in parameters else {"is_causal": True}
    takes_scale, takes_gqa = "scale" in parameters, "enable_gqa" in parameters

    def call(q, k, v, cu_seq_lens, max_length, scale=None):
        """q [tokens, heads, dim], k and v [tokens, kv heads, dim]; returns [tokens, heads, dim]."""
        options = dict(causal)
        if k.shape[1] != q.shape[1]:
            if takes_gqa:
                options["enable_gqa"] = True
            else:
                groups = q.shape[1] // k.shape[1]
                k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        if scale is not None:
            if takes_scale:
                options["scale"] = scale
            elif scale != q.shape[-1] ** -0.5:
                q = q * (scale * q.shape[-1] ** 0.5)
        return varlen_attn(q, k, v, cu_seq_lens, cu_seq_lens, max_length, max_length, **options)

    return call


def flash_packed_attention(varlen_attn):
    """Causal attention over packed rows with flash attention: an attention function for transformers' layers."""
    call = varlen_call(varlen_attn)

    def attend(module, query, key, value, attention_mask=None, scaling=None, dropout=0.0, *, cu_seq_lens_q=None, max_length_q=None,
               **kwargs):
        """query [1, heads, tokens, dim], key and value [1, kv heads, tokens, dim]; `cu_seq_lens_q` the rows'
        cumulative lengths (int32, from 0), `max_length_q` the longest row. Returns ([1, tokens, heads, dim], None)."""
        if cu_seq_lens_q is None:
            return causal_attention(query, key, value, scaling)
        # [tokens, heads, dim], the layout flash attention reads; compiled, the copy fuses into the rotary kernel
        q, k, v = (t[0].transpose(0, 1).contiguous() for t in (query, key, value))
        out = call(q, k, v, cu_seq_lens_q, max_length_q, scaling)
        return out.unsqueeze(0), None

    return attend


def rowwise_packed_attention(module, query, key, value, attention_mask=None, scaling=None, dropout=0.0, *, cu_seq_lens_q=None,
                             max_length_q=None, **kwargs):
    """The same attention, each row through scaled_dot_product_attention on its own (CPU, older GPUs)."""
    import torch

    if cu_seq_lens_q is None:
        return causal_attention(query, key, value, scaling)
    bounds = cu_seq_lens_q.tolist()
    rows = [causal_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], scaling)[0] for a, b in zip(bounds, bounds[1:])]
    return torch.cat(rows, dim=1), None


def causal_attention(query, key, value, scaling):
    """Plain causal attention of right-padded rows (a batch that is not packed): exact, as pad tokens come last."""
    import torch

    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scaling, enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


def use_packed_attention(model, flash: bool) -> str:
    """Make `model` (a transformers model, through a PEFT wrapper if there is one) attend over packed rows: with flash
    attention where the plan says the GPU has it (plan.choose_attention), else row by row. Returns which."""
    from transformers import AttentionInterface

    AttentionInterface.register(PACKED_ATTENTION, flash_packed_attention(varlen_attention()) if flash else rowwise_packed_attention)
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner.set_attn_implementation(PACKED_ATTENTION)
    return "flash attention (varlen)" if flash else "attention row by row"
