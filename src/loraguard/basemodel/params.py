"""Parameter counts of the config-derived families: Linear weights plus biases and norms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from loraguard.basemodel.spec import ModuleShape

__all__ = ["Dims", "count_params"]


@dataclass(frozen=True)
class Dims:
    """The architecture numbers of one config, with its family's defaults applied."""

    layout: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    positions: int = 0
    """Learned position embeddings (GPT-2's `wpe`), else 0."""
    attention_bias: bool = False
    """q/k/v carry a bias (Qwen2 always; Llama/Gemma/Qwen3 per `attention_bias`)."""
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    """Per-head RMSNorm on q and k (Qwen3, Gemma 3; Phi's optional `qk_layernorm`)."""
    norms_per_layer: int = 2


def _per_layer_extras(d: Dims) -> int:
    h, q, kv, inner = d.hidden, d.heads * d.head_dim, d.kv_heads * d.head_dim, d.intermediate
    if d.layout == "gpt2":
        # ln_1 + ln_2 (weight and bias) and the biases of c_attn, attn.c_proj, c_fc, mlp.c_proj.
        return 4 * h + 3 * h + h + inner + h
    if d.layout == "phi":
        # one LayerNorm (weight + bias); every Linear has a bias; optional q/k LayerNorms.
        qk = 2 * 2 * d.head_dim if d.qk_norm else 0
        return 2 * h + (q + 2 * kv + h) + (inner + h) + qk
    extras = d.norms_per_layer * h
    if d.layout == "decoder":
        if d.attention_bias:
            extras += q + 2 * kv
        if d.o_bias:
            extras += h
        if d.mlp_bias:
            extras += 2 * inner + h
        if d.qk_norm:
            extras += 2 * d.head_dim
    return extras


def count_params(d: Dims, modules: Mapping[str, ModuleShape], *, head: str | None, lm_head_tied: bool) -> int:
    """Parameters of the whole model whose leaves are `modules` (tied `lm_head` counted once)."""
    weights = sum(
        shape.in_features * shape.out_features
        for name, shape in modules.items()
        if not (name == head == "lm_head" and lm_head_tied)
    )
    final_norm = 2 * d.hidden if d.layout in {"gpt2", "phi"} else d.hidden
    lm_head_bias = d.vocab if d.layout == "phi" and head == "lm_head" else 0
    return weights + d.layers * _per_layer_extras(d) + final_norm + lm_head_bias
