"""One matmul where a decoder layer makes several from the same input: q, k and v; gate and up.

A Llama layer multiplies its attention input by three weights and its MLP input by two. Kept apart, the key and
value products are narrow (1,024 columns on Llama-3.1-8B) and leave much of a large GPU idle, and every LoRA
adapter adds two more tiny matmuls, each one a kernel launch and a pass over the input. fuse_projections stores
each group's base weights as one matrix (the layers' own weights become views of it: no memory is added) and
gives the layer a forward that multiplies once by the whole matrix and once by the group's LoRA A matrices side
by side, then splits. The numbers are the same products, summed in the same order per output; the adapters keep
their own parameters, so saving, loading and merging them work as before (a merge writes into the shared matrix).
"""

from __future__ import annotations

import sys
import types

FUSED_ATTENTION = {"LlamaAttention"}  # forwards written out in fused_attention_forward
FUSED_MLP = {"LlamaMLP", "MistralMLP", "Qwen2MLP"}  # down(act(gate(x)) * up(x))


def plain_base(module):
    """The plain linear layer under a LoRA layer (or the layer itself), or None where it is anything else (4-bit)."""
    import torch

    base = getattr(module, "base_layer", module)
    return base if type(base) is torch.nn.Linear else None


def active_loras(module) -> list[str]:
    """The names of a LoRA layer's active adapters (none for a plain layer)."""
    return [n for n in module.active_adapters if n in module.lora_A] if hasattr(module, "lora_A") else []


def lora_terms(module):
    """(A weight, B weight, scaling, dropout) of a LoRA layer's one active plain adapter; None for a plain layer or a
    merged or disabled adapter (the base weight then holds everything)."""
    names = active_loras(module)
    if not names or module.merged or module.disable_adapters:
        return None
    name = names[0]
    return module.lora_A[name].weight, module.lora_B[name].weight, module.scaling[name], module.lora_dropout[name]


def fusable_lora(module) -> bool:
    """Whether a layer is plain or carries exactly one plain LoRA adapter (no DoRA or other variants, no bias)."""
    if not hasattr(module, "lora_A"):
        return True
    names = active_loras(module)
    return len(names) == 1 and not getattr(module, "lora_variant", {}) and not module.use_dora.get(names[0], False) and (
        module.lora_bias.get(names[0], False) is False
    )


def share_weights(linears) -> tuple:
    """Concatenate the layers' weights (and biases) into one matrix whose row blocks become their weights."""
    import torch

    weight = torch.cat([m.weight.detach() for m in linears])
    bias = torch.cat([m.bias.detach() for m in linears]) if linears[0].bias is not None else None
    start = 0
    for m in linears:
        rows = m.out_features
        m.weight = torch.nn.Parameter(weight[start : start + rows], requires_grad=False)
        if bias is not None:
            m.bias = torch.nn.Parameter(bias[start : start + rows], requires_grad=False)
        start += rows
    return weight, bias


def project(x, weight, bias, modules, sizes: list[int]):
    """x times each module's weight (one matmul through `weight`) plus each module's LoRA update; one tensor a module."""
    import torch
    import torch.nn.functional as F

    parts = list(F.linear(x, weight, bias).split(sizes, dim=-1))
    terms = [lora_terms(m) for m in modules]
    live = [t for t in terms if t is not None]
    if not live:
        return parts
    dtype = live[0][0].dtype  # as peft does: the input in the adapter's dtype (autocast then takes over on a GPU)
    if len(live) == len(terms) and all(isinstance(t[3], torch.nn.Identity) for t in terms):
        # no dropout: one pass over x for every adapter's A, then each B on its own slice
        down = F.linear(x.to(dtype), torch.cat([t[0] for t in terms])).split([t[0].shape[0] for t in terms], dim=-1)
        return [p + (F.linear(d, t[1]) * t[2]).to(p.dtype) for p, d, t in zip(parts, down, terms)]
    return [p if t is None else p + (F.linear(F.linear(t[3](x.to(dtype)), t[0]), t[1]) * t[2]).to(p.dtype) for p, t in zip(parts, terms)]


def fused_attention_forward(self, hidden_states, position_embeddings=None, attention_mask=None, *args, **kwargs):
    """LlamaAttention's forward with q, k and v from one projection (no cache: training and scoring)."""
    if args or kwargs.get("past_key_values") is not None or kwargs.get("cache") is not None:
        return self._kit_unfused_forward(hidden_states, position_embeddings, attention_mask, *args, **kwargs)
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    family = sys.modules[type(self).__module__]
    input_shape = hidden_states.shape[:-1]
    hidden_shape = (*input_shape, -1, self.head_dim)
    q, k, v = project(hidden_states, self._kit_qkv_weight, self._kit_qkv_bias, (self.q_proj, self.k_proj, self.v_proj), self._kit_qkv_sizes)
    query, key, value = (t.view(hidden_shape).transpose(1, 2) for t in (q, k, v))
    cos, sin = position_embeddings
    query, key = family.apply_rotary_pos_emb(query, key, cos, sin)
    name = self.config._attn_implementation
    attend = family.eager_attention_forward if name == "eager" else ALL_ATTENTION_FUNCTIONS[name]
    out, weights = attend(self, query, key, value, attention_mask, dropout=0.0 if not self.training else self.attention_dropout,
                          scaling=self.scaling, **kwargs)
    return self.o_proj(out.reshape(*input_shape, -1).contiguous()), weights


def fused_mlp_forward(self, x):
    """The gated MLP with gate and up from one projection."""
    gate, up = project(x, self._kit_gate_up_weight, self._kit_gate_up_bias, (self.gate_proj, self.up_proj), self._kit_gate_up_sizes)
    return self.down_proj(self.act_fn(gate) * up)


def fuse_group(owner, names: tuple[str, ...], key: str, forward) -> bool:
    """Fuse owner's projections `names` under `key` and give owner the fused forward, where they can be."""
    modules = [getattr(owner, n) for n in names]
    bases = [plain_base(m) for m in modules]
    if any(b is None for b in bases) or not all(fusable_lora(m) for m in modules) or hasattr(owner, f"_kit_{key}_weight"):
        return False
    weight, bias = share_weights(bases)
    setattr(owner, f"_kit_{key}_weight", weight)
    setattr(owner, f"_kit_{key}_bias", bias)
    setattr(owner, f"_kit_{key}_sizes", [b.out_features for b in bases])
    owner._kit_unfused_forward = owner.forward
    owner.forward = types.MethodType(forward, owner)
    return True


def fuse_projections(layers) -> int:
    """Fuse q/k/v and gate/up in every decoder layer (of `layers`) whose kind is known and whose bases are plain
    (dequantized or never quantized); returns how many groups. Call it after LoRA is attached and the base
    dequantized; a layer fused already is left as it is."""
    fused = 0
    for layer in layers:
        attention, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        if type(attention).__name__ in FUSED_ATTENTION:
            fused += fuse_group(attention, ("q_proj", "k_proj", "v_proj"), "qkv", fused_attention_forward)
        if type(mlp).__name__ in FUSED_MLP:
            fused += fuse_group(mlp, ("gate_proj", "up_proj"), "gate_up", fused_mlp_forward)
    return fused
