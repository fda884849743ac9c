"""LoRAX's profile: the architecture check it raises on, and the modules it ignores with a log line.

Read from predibase/lorax at commit `a7394ba` (field-anchors.md B.4): `server/lorax_server/utils/adapter.py`
(`check_architectures`, called by `load_module_map` only when `base_model_name_or_path` differs from
`--model-id`), `server/lorax_server/models/model.py` (`load_adapter`: "unused adapter weights" WARNING) and
`docs/models/adapters/lora.md` (supported target modules per architecture; the others are ignored "and
emit a warning on the backend"). A different name with the same architecture only warns in LoRAX: the
base rules (LG501, LG502) report that case.
"""

from __future__ import annotations

from collections.abc import Mapping

from loraguard.engines.base import (
    AdapterView,
    EngineOptions,
    EngineProfile,
    Issue,
    Limit,
    lora_modules,
    module_evidence,
)

_LLAMA = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")
SUPPORTED_MODULES: Mapping[str, tuple[str, ...]] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "cohere": _LLAMA,
    "mixtral": ("q_proj", "k_proj", "v_proj", "o_proj", "lm_head"),
    "gemma": _LLAMA[:-1],
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj", "lm_head"),
    "phi": ("q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2", "lm_head"),
    "qwen": ("c_attn", "c_proj", "w1", "w2", "lm_head"),
    "dbrx": ("Wqkv", "out_proj", "lm_head"),
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "bloom": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h", "lm_head"),
}
"""Supported target modules by `model_type`, from LoRAX's docs/models/adapters/lora.md. Architectures
not listed there get no module finding (loraguard does not guess)."""

PROFILE = EngineProfile(
    name="lorax",
    display="LoRAX",
    version="a7394ba",
    describes=(
        "predibase/lorax at commit a7394ba as read for field-anchors.md B.4: server/lorax_server/utils/adapter.py "
        "(check_architectures), server/lorax_server/models/model.py (load_adapter), docs/models/adapters/lora.md."
    ),
    limits=(
        Limit(
            "LG731",
            "an adapter whose claimed base has other `architectures` than `--model-id` is refused "
            "(same architecture: only a warning)",
            "server/lorax_server/utils/adapter.py `check_architectures`",
        ),
        Limit(
            "LG732",
            "target modules outside the architecture's supported list are ignored with a warning",
            "docs/models/adapters/lora.md",
        ),
        Limit(
            "LG733",
            "weights whose names match no layer of the base are ignored with an 'unused adapter weights' warning",
            "server/lorax_server/models/model.py `load_adapter`",
        ),
    ),
)


def architecture(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    cfg, base, claimed = ctx.config, ctx.base, ctx.claimed
    if cfg is None or base is None or claimed is None or not ctx.base_given:
        return []  # LoRAX "assumes they are compatible" when it cannot read the claimed config
    claim = cfg.base_model
    if not claim or claim == base.name or claimed.architecture == base.architecture:
        return []
    text = (
        f"Adapter '{ctx.adapter.name}' is not compatible with model '{base.name}'. Architectures differ: "
        f"['{claimed.architecture}'] != ['{base.architecture}']. Use --model-id '{claim}' instead."
    )
    return [
        Issue(
            PROFILE.refuses(f"`ValueError: {text}`"),
            f"Serve the adapter on {claim} (--model-id).",
            {"claimed": claim, "claimed_architecture": claimed.architecture, "base_architecture": base.architecture},
        )
    ]


def supported_modules(ctx: AdapterView) -> tuple[str, ...] | None:
    return SUPPORTED_MODULES.get(ctx.base.model_type) if ctx.base is not None else None


def ignored_modules(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    supported = supported_modules(ctx)
    if ctx.base is None or supported is None:
        return []
    modules = lora_modules(ctx)
    ignored = {m for m, last in modules.items() if last not in supported}
    if not ignored:
        return []
    reason = (
        f"LoRAX adapts only {', '.join(supported)} on {ctx.base.model_type} models and ignores the other "
        "target modules with a warning on the backend (docs/models/adapters/lora.md)"
    )
    return [
        Issue(
            PROFILE.applies_nothing(ignored, len(modules), reason),
            "Serve it with an engine that adapts these modules, or retrain on supported modules only.",
            {"silent": True, "supported": list(supported), "total": len(modules), **module_evidence(ignored)},
        )
    ]


def unused_weights(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    if ctx.base is None:
        return []
    supported = supported_modules(ctx)
    modules = lora_modules(ctx)
    lost = {
        m
        for m, last in modules.items()
        if (supported is None or last in supported)
        and (p := ctx.placements.get(m)) is not None
        and p.status in ("unmapped", "extra-layer")
    }
    if not lost:
        return []
    reason = (
        f"LoRAX looks each weight up by {ctx.base.name}'s own module path and only logs the others as "
        "'unused adapter weights' (models/model.py load_adapter)"
    )
    return [
        Issue(
            PROFILE.applies_nothing(lost, len(modules), reason),
            "Rename the keys to the served model's module paths, or serve the model the adapter was saved from.",
            {"silent": True, "total": len(modules), **module_evidence(lost)},
        )
    ]
