"""Module names and shapes of the common decoder families, derived from `config.json` alone.

Pure Python: no torch, no transformers. Each supported `model_type` mirrors the module tree of
its transformers class (`LlamaForCausalLM`, `GPT2LMHeadModel`...) exactly, which the slow tests
check against real `meta`-device models. Anything else returns None and the caller falls back to
`skeleton.py`.

Supported tasks: `CAUSAL_LM` (`XForCausalLM`), `SEQ_CLS` (`XForSequenceClassification`: the
`score` head instead of `lm_head`), `FEATURE_EXTRACTION` (the bare `XModel`, no prefix) and None
(PEFT's "no task": the class named in `architectures`, else the causal LM).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loraguard.basemodel.params import Dims, count_params
from loraguard.basemodel.spec import BaseSpec, ModuleShape
from loraguard.errors import BaseModelResolutionError

__all__ = ["SUPPORTED_MODEL_TYPES", "SUPPORTED_TASKS", "dims_from_config", "param_count", "spec_from_config"]


@dataclass(frozen=True)
class _Family:
    stem: str
    """Class-name stem: `Llama` -> `LlamaForCausalLM`."""
    layout: str
    """`decoder` (q/k/v/o + gate/up/down), `phi3` (fused), `phi`, `gpt2`."""
    tie_default: bool
    """`tie_word_embeddings` when config.json leaves it out (the config class default)."""
    head_dim_default: int | None = None
    """`head_dim` when config.json leaves it out; None: hidden_size // num_attention_heads."""
    kv_default: int | None = None
    """`num_key_value_heads` when config.json leaves it out (an explicit null, or None here: MHA)."""
    causal_class: str | None = None
    base_class: str | None = None
    seq_cls_class: str | None = None

    def cls(self, task: str) -> str:
        if task == "SEQ_CLS":
            return self.seq_cls_class or f"{self.stem}ForSequenceClassification"
        if task == "FEATURE_EXTRACTION":
            return self.base_class or f"{self.stem}Model"
        return self.causal_class or f"{self.stem}ForCausalLM"


_FAMILIES: dict[str, _Family] = {
    "llama": _Family("Llama", "decoder", tie_default=False),
    "mistral": _Family("Mistral", "decoder", tie_default=False, kv_default=8),
    "qwen2": _Family("Qwen2", "decoder", tie_default=False, kv_default=32),
    "qwen3": _Family("Qwen3", "decoder", tie_default=False, head_dim_default=128, kv_default=32),
    "gemma": _Family("Gemma", "decoder", tie_default=True, head_dim_default=256, kv_default=16),
    "gemma2": _Family("Gemma2", "decoder", tie_default=True, head_dim_default=256, kv_default=4),
    "gemma3_text": _Family(
        "Gemma3",
        "decoder",
        tie_default=True,
        head_dim_default=256,
        kv_default=4,
        base_class="Gemma3TextModel",
        seq_cls_class="Gemma3TextForSequenceClassification",
    ),
    "phi3": _Family("Phi3", "phi3", tie_default=False),
    "phi": _Family("Phi", "phi", tie_default=False),
    "gpt2": _Family("GPT2", "gpt2", tie_default=True, causal_class="GPT2LMHeadModel"),
}

SUPPORTED_MODEL_TYPES: frozenset[str] = frozenset(_FAMILIES)
SUPPORTED_TASKS: frozenset[str] = frozenset({"CAUSAL_LM", "SEQ_CLS", "FEATURE_EXTRACTION"})

# Families whose attention projections take `attention_bias` (Qwen2's q/k/v always have a bias).
_ATTENTION_BIAS_KEY = frozenset({"llama", "qwen3", "gemma", "gemma2", "gemma3_text"})


MAX_COUNTS = {
    **dict.fromkeys(
        ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "encoder_layers", "decoder_layers"), 4096
    ),
    **dict.fromkeys(("num_experts", "num_local_experts", "n_routed_experts"), 4096),
}
"""Layer and expert counts beyond any real model (the largest have ~200 layers, 512 experts): a config
claiming more is refused before module shapes are enumerated or a skeleton model is built."""


def check_counts(config: Mapping[str, Any], *, where: str, depth: int = 0) -> None:
    """Raise `BaseModelResolutionError` for a layer or expert count in `MAX_COUNTS` beyond its cap
    (nested configs such as `text_config` included)."""
    for key, value in config.items():
        cap = MAX_COUNTS.get(key)
        if cap is not None and isinstance(value, int | float) and not isinstance(value, bool) and value > cap:
            raise BaseModelResolutionError(
                f"config.json of {where}: '{key}' is {value:g}, more than the {cap:,} loraguard accepts "
                "(no real model comes close). Pass the model's original config.json.",
                path=where,
            )
        if isinstance(value, Mapping) and depth < 4:
            check_counts(value, where=where, depth=depth + 1)


def _int(config: Mapping[str, Any], key: str, *, where: str, default: int | None = None) -> int:
    value = config.get(key)
    if isinstance(value, float) and not math.isfinite(value):
        raise BaseModelResolutionError(
            f"config.json of {where}: '{key}' is {value}, not a non-negative integer. "
            "Pass the model's original config.json."
        )
    if value is None:
        if default is not None:
            return default
        raise BaseModelResolutionError(
            f"config.json of {where} has no '{key}' (model_type {config.get('model_type')!r}): "
            "cannot derive module shapes. Pass the model's complete config.json."
        )
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value or value < 0:
        raise BaseModelResolutionError(
            f"config.json of {where}: '{key}' is {value!r}, not a non-negative integer. "
            "Pass the model's original config.json."
        )
    return int(value)


def _num_labels(config: Mapping[str, Any]) -> int:
    id2label = config.get("id2label")
    if isinstance(id2label, Mapping) and id2label:
        return len(id2label)
    num = config.get("num_labels")
    return int(num) if isinstance(num, int) and not isinstance(num, bool) and num > 0 else 2


def dims_from_config(config: Mapping[str, Any], *, where: str = "the base model") -> Dims | None:
    """The architecture numbers of a supported family, with transformers' defaults; None if unsupported.

    Raises `BaseModelResolutionError` when a supported family's config lacks a required key.
    """
    model_type = config.get("model_type")
    fam = _FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if fam is None:
        return None
    check_counts(config, where=where)
    if fam.layout == "gpt2":
        hidden = _int(config, "n_embd", where=where, default=768)
        layers = _int(config, "n_layer", where=where, default=12)
        heads = _int(config, "n_head", where=where, default=12)
        inner = _int(config, "n_inner", where=where, default=4 * hidden)
        kv_heads, head_dim = heads, hidden // heads if heads else 0
        positions = _int(config, "n_positions", where=where, default=1024)
        vocab = _int(config, "vocab_size", where=where, default=50257)
    else:
        hidden = _int(config, "hidden_size", where=where)
        layers = _int(config, "num_hidden_layers", where=where)
        heads = _int(config, "num_attention_heads", where=where)
        inner = _int(config, "intermediate_size", where=where)
        kv_absent = fam.kv_default if "num_key_value_heads" not in config else None
        kv_heads = _int(config, "num_key_value_heads", where=where, default=kv_absent or heads)
        fallback = fam.head_dim_default if "head_dim" not in config else None
        split = hidden // heads if heads else 0
        head_dim = _int(config, "head_dim", where=where, default=fallback or split)
        positions = 0
        vocab = _int(config, "vocab_size", where=where)
    if heads == 0 or hidden == 0:
        raise BaseModelResolutionError(
            f"config.json of {where}: hidden size {hidden} with {heads} attention heads is not a model."
        )
    tied = config.get("tie_word_embeddings")
    biased = model_type in _ATTENTION_BIAS_KEY and bool(config.get("attention_bias", False))
    return Dims(
        layout=fam.layout,
        hidden=hidden,
        intermediate=inner,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab=vocab,
        tied=fam.tie_default if tied is None else bool(tied),
        positions=positions,
        attention_bias=biased or model_type == "qwen2",
        o_bias=biased,
        mlp_bias=bool(config.get("mlp_bias", False)) and model_type == "llama",
        qk_norm=model_type in {"qwen3", "gemma3_text"} or bool(config.get("qk_layernorm", False)),
        norms_per_layer=4 if model_type in {"gemma2", "gemma3_text"} else 2,
    )


def _layer_modules(d: Dims) -> list[tuple[str, ModuleShape]]:
    """Targetable leaves of one block, layer-relative, in `named_modules()` order."""
    h, q, kv = d.hidden, d.heads * d.head_dim, d.kv_heads * d.head_dim
    lin = ModuleShape
    if d.layout == "gpt2":
        return [
            ("attn.c_attn", lin(h, 3 * h, "conv1d")),
            ("attn.c_proj", lin(h, h, "conv1d")),
            ("mlp.c_fc", lin(h, d.intermediate, "conv1d")),
            ("mlp.c_proj", lin(d.intermediate, h, "conv1d")),
        ]
    if d.layout == "phi3":
        return [
            ("self_attn.o_proj", lin(q, h)),
            ("self_attn.qkv_proj", lin(h, q + 2 * kv)),
            ("mlp.gate_up_proj", lin(h, 2 * d.intermediate)),
            ("mlp.down_proj", lin(d.intermediate, h)),
        ]
    if d.layout == "phi":
        return [
            ("self_attn.q_proj", lin(h, q)),
            ("self_attn.k_proj", lin(h, kv)),
            ("self_attn.v_proj", lin(h, kv)),
            ("self_attn.dense", lin(q, h)),
            ("mlp.fc1", lin(h, d.intermediate)),
            ("mlp.fc2", lin(d.intermediate, h)),
        ]
    return [
        ("self_attn.q_proj", lin(h, q)),
        ("self_attn.k_proj", lin(h, kv)),
        ("self_attn.v_proj", lin(h, kv)),
        ("self_attn.o_proj", lin(q, h)),
        ("mlp.gate_proj", lin(h, d.intermediate)),
        ("mlp.up_proj", lin(h, d.intermediate)),
        ("mlp.down_proj", lin(d.intermediate, h)),
    ]


def _effective_task(config: Mapping[str, Any], fam: _Family, task: str | None) -> str | None:
    if task is not None:
        return task if task in SUPPORTED_TASKS else None
    archs = config.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    for candidate in ("CAUSAL_LM", "SEQ_CLS", "FEATURE_EXTRACTION"):
        if arch == fam.cls(candidate):
            return candidate
    return "CAUSAL_LM" if arch is None else None


def _build(config: Mapping[str, Any], fam: _Family, d: Dims, task: str) -> tuple[str, dict[str, ModuleShape]]:
    """The layer stack's name and every targetable leaf of `fam`'s class for `task`."""
    outer = "" if task == "FEATURE_EXTRACTION" else ("transformer." if fam.layout == "gpt2" else "model.")
    modules: dict[str, ModuleShape] = {}
    if fam.layout == "gpt2":
        modules[f"{outer}wte"] = ModuleShape(d.vocab, d.hidden, "embedding")
        modules[f"{outer}wpe"] = ModuleShape(d.positions, d.hidden, "embedding")
        stack = f"{outer}h"
    else:
        modules[f"{outer}embed_tokens"] = ModuleShape(d.vocab, d.hidden, "embedding")
        stack = f"{outer}layers"
    block = _layer_modules(d)
    for i in range(d.layers):
        for rel, shape in block:
            modules[f"{stack}.{i}.{rel}"] = shape
    if task == "CAUSAL_LM":
        modules["lm_head"] = ModuleShape(d.hidden, d.vocab)
    elif task == "SEQ_CLS":
        modules["score"] = ModuleShape(d.hidden, _num_labels(config))
    return stack, modules


def spec_from_config(
    config: Mapping[str, Any],
    *,
    name: str,
    task: str | None = "CAUSAL_LM",
    path: str | None = None,
) -> BaseSpec | None:
    """The `BaseSpec` of a supported family for `task`, from config.json alone; None if unsupported.

    None means "ask the skeleton": an unknown `model_type`, or a task this module does not model
    (TOKEN_CLS, SEQ_2_SEQ_LM...). A supported family with a broken config raises
    `BaseModelResolutionError`.
    """
    model_type = config.get("model_type")
    fam = _FAMILIES.get(model_type) if isinstance(model_type, str) else None
    if fam is None:
        return None
    effective = _effective_task(config, fam, task)
    if effective is None:
        return None
    d = dims_from_config(config, where=path or name)
    if d is None:  # pragma: no cover - fam is not None, so the family is supported
        return None
    stack, modules = _build(config, fam, d, effective)
    return BaseSpec(
        name=name,
        model_type=str(model_type),
        architecture=fam.cls(effective),
        task=task if task is not None else "",
        modules=modules,
        num_layers=d.layers,
        hidden_size=d.hidden,
        vocab_size=d.vocab,
        layer_prefixes=(stack,),
        param_count=count_params(d, modules, head=_head(effective), lm_head_tied=d.tied),
        source="config",
        config=dict(config),
        path=path,
    )


def _head(task: str) -> str | None:
    return {"CAUSAL_LM": "lm_head", "SEQ_CLS": "score"}.get(task)


def param_count(config: Mapping[str, Any], task: str = "CAUSAL_LM") -> int | None:
    """Total parameters of the `task` model of a supported family (tied embeddings once); else None."""
    spec = spec_from_config(config, name=str(config.get("_name_or_path") or "model"), task=task)
    return spec.param_count if spec is not None else None
