"""SGLang's profile: what `load_lora_adapter` refuses (`LoRAUpdateOutput(success=False, error_message=...)`).

Read from SGLang `main` (2026) as collected in field-anchors.md B.3: `python/sglang/srt/lora/lora_manager.py`
(`validate_new_adapter`, `init_lora_shapes`), `lora_config.py` (`added_tokens.json`), `mem_pool.py`
(`can_support`), and https://docs.sglang.io/docs/advanced_features/lora. SGLang finds a weight's layer
with the regex `layers\\.(\\d+)\\.` and its module by name, so a different prefix before `layers.N.` is
not a problem there (unlike vLLM and LoRAX); that reading of the code was not verified at runtime.
"""

from __future__ import annotations

from loraguard.engines.base import (
    PACKED_MODULES,
    AdapterView,
    EngineOptions,
    EngineProfile,
    Issue,
    Limit,
    config_max_rank,
    leaf,
    lora_modules,
    uses_dora,
)
from loraguard.fileio import loads_bounded, read_bounded

ADDED_TOKENS_FILE = "added_tokens.json"
_MANAGER = "python/sglang/srt/lora/lora_manager.py"
PROFILE = EngineProfile(
    name="sglang",
    display="SGLang",
    version="main",
    describes=(
        "SGLang main (2026) as read for field-anchors.md B.3: python/sglang/srt/lora/lora_manager.py "
        "(validate_new_adapter, init_lora_shapes), lora_config.py, mem_pool.py (can_support), and the LoRA "
        "serving docs (docs.sglang.io advanced_features/lora)."
    ),
    limits=(
        Limit("LG721", "DoRA is refused", f"{_MANAGER} `validate_new_adapter`"),
        Limit(
            "LG722",
            "adapters that add tokens (added_tokens.json ids at or above the base vocabulary, or "
            "embeddings with more rows than the base) are refused",
            f"{_MANAGER} `validate_new_adapter`; lora_config.py",
        ),
        Limit(
            "LG723",
            "a rank above `--max-lora-rank` is refused (without the flag the pool is sized from "
            "the adapters loaded at start)",
            "mem_pool.py `can_support`; lora_manager.py `init_lora_shapes`",
        ),
        Limit(
            "LG724",
            "target modules outside `--lora-target-modules` are refused (q/k/v count as qkv_proj, "
            "gate/up as gate_up_proj)",
            f"{_MANAGER} `init_lora_shapes`; mem_pool.py `can_support`",
        ),
    ),
)


def _failed(ctx: AdapterView, text: str) -> str:
    return PROFILE.refuses(f"`Failed to load {ctx.adapter.name} because {text}`")


def dora(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    if not uses_dora(ctx):
        return []
    return [
        Issue(
            _failed(ctx, "LoRA serving currently doesn't support DoRA adapters"),
            "Merge the DoRA adapter into the base (PEFT merge_and_unload) and serve the merged model, or "
            "retrain without use_dora.",
            {"feature": "use_dora"},
        )
    ]


def added_tokens(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    vocab = ctx.base.vocab_size if ctx.base is not None else None
    detail = _added_tokens_file(ctx, vocab) or _bigger_embeddings(ctx)
    if detail is None:
        return []
    text, evidence = detail
    return [
        Issue(
            _failed(ctx, "LoRA serving currently doesn't support adapters that add tokens to the vocabulary")
            + f" ({text})",
            "Serve a base whose vocabulary already holds the tokens (resize and save it), or retrain "
            "without adding tokens.",
            evidence,
        )
    ]


def _added_tokens_file(ctx: AdapterView, vocab: int | None) -> tuple[str, dict[str, object]] | None:
    folder = ctx.adapter.folder
    path = folder / ADDED_TOKENS_FILE if folder is not None else None
    if path is None or not path.is_file():
        return None
    try:  # untrusted: size- and depth-bounded
        data = loads_bounded(read_bounded(path, 16 << 20))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    # SGLang drops ids already inside the base vocabulary (an added_tokens.json copied from the base).
    ids = [i for i in data.values() if isinstance(i, int) and (vocab is None or i >= vocab)]
    if not ids:
        return None
    where = f" beyond the base's {vocab}" if vocab is not None else ""
    return (
        f"{ADDED_TOKENS_FILE} adds {len(ids)} token(s){where}",
        {"added_tokens": len(ids), "base_vocab": vocab, "file": str(path)},
    )


def _bigger_embeddings(ctx: AdapterView) -> tuple[str, dict[str, object]] | None:
    bigger = [p for p in ctx.shape_problems if p.category == "vocab-mismatch" and p.actual > p.expected]
    if not bigger:
        return None
    rows = max(p.actual for p in bigger)
    base = bigger[0].expected
    modules = sorted({p.module for p in bigger})
    return (
        f"{', '.join(modules)} hold {rows} token rows, the base {base}: trained with {rows - base} added token(s)",
        {"adapter_vocab": rows, "base_vocab": base, "modules": modules},
    )


def rank(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    limit = options.max_lora_rank
    declared = config_max_rank(ctx)
    if limit is None or declared is None or declared <= limit:
        return []
    text = (
        f"`LoRA adapter {ctx.adapter.name} with rank {declared} is incompatible with the current LoRA memory "
        "pool configuration. Please ensure that the LoRA adapter's rank is within the configured "
        "`--max-lora-rank` and that the target modules are included in `--lora-target-modules`.`"
    )
    return [
        Issue(
            PROFILE.refuses(text),
            f"Start SGLang with --max-lora-rank {declared} or more.",
            {"rank": declared, "max_lora_rank": limit},
        )
    ]


def normalized(name: str) -> str:
    """SGLang's `get_normalized_target_modules`: the last component, q/k/v -> qkv_proj, gate/up -> gate_up_proj."""
    last = leaf(name)
    return PACKED_MODULES.get(last, last)


def adapter_targets(ctx: AdapterView) -> set[str]:
    """What SGLang reads as the adapter's targets: the config list, else the modules with tensors."""
    targets = ctx.config.target_modules if ctx.config is not None else None
    names = targets if isinstance(targets, list) else list(lora_modules(ctx).values())
    return {normalized(n) for n in names}


def target_modules(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    if not options.restricts_targets or options.lora_target_modules is None:
        return []
    allowed = {normalized(t) for t in options.lora_target_modules}
    needed = adapter_targets(ctx)
    missing = needed - allowed
    if not missing:
        return []
    text = (
        f"`LoRA adapter '{ctx.adapter.name}' contains target modules {sorted(missing)} that are not included "
        f"in the specified --lora-target-modules {sorted(allowed)}. Please update --lora-target-modules to "
        f"include all required modules: {sorted(allowed | needed)}, or use 'all' to enable all supported "
        "modules.`"
    )
    return [
        Issue(
            PROFILE.refuses(text),
            f"Start SGLang with --lora-target-modules {' '.join(sorted(allowed | needed))} (or all).",
            {"missing": sorted(missing), "lora_target_modules": sorted(allowed)},
        )
    ]
