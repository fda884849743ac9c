"""vLLM's profile: what `--enable-lora` refuses, and what it accepts but applies to nothing.

Read from vLLM `main` (2026) as collected in field-anchors.md B.1/B.2: `vllm/lora/peft_helper.py`
(the version with `rank_pattern`: `_validate_features`, `validate_legal`), `vllm/lora/lora_model.py`
(`check_unexpected_modules`, `from_lora_tensors`), `vllm/lora/model_manager.py` (commit `01533aa`),
`vllm/config/lora.py` and the LoRA resolver plugins. Error texts are vLLM's own `ValueError` texts.
"""

from __future__ import annotations

from loraguard.engines.base import (
    PACKED_MODULES,
    AdapterView,
    EngineOptions,
    EngineProfile,
    Issue,
    Limit,
    applied_modules,
    config_max_rank,
    leaf,
    lora_modules,
    module_evidence,
    uses_dora,
)

SUPPORTED_INITS = ("gaussian", "eva", "orthogonal", "mica", "lora_ga")
"""`init_lora_weights` strings vLLM accepts (`PEFTHelper._init_is_supported`): they only set the
initial adapter weights. Any other string (pissa, pissa_niter_*, olora, corda, loftq) is refused."""
CLASSIFIER_HEADS = ("classifier", "score")
OTHER_FEATURES = (
    ("alora_invocation_tokens", "vLLM does not support Activated LoRA (aLoRA)."),
    ("layer_replication", "vLLM does not support layer_replication."),
    ("use_bdlora", "vLLM does not support block-diagonal LoRA (BD-LoRA)."),
    ("use_qalora", "vLLM does not support QALoRA."),
)
REQUIRED_FIELDS = ("r", "lora_alpha", "target_modules")

_HELPER = "vllm/lora/peft_helper.py"
PROFILE = EngineProfile(
    name="vllm",
    display="vLLM",
    version="main",
    describes=(
        "vLLM main (2026) as read for field-anchors.md B.1: vllm/lora/peft_helper.py with rank_pattern "
        "(_validate_features, validate_legal), vllm/lora/lora_model.py (check_unexpected_modules, "
        "from_lora_tensors), vllm/lora/model_manager.py at 01533aa, vllm/config/lora.py; the silent "
        "failures were reproduced on 0.15.1 (issue 34186) to 0.28.0 (issue 55193)."
    ),
    limits=(
        Limit("LG701", "DoRA (`use_dora`) is refused", f"{_HELPER} `_validate_features`"),
        Limit(
            "LG702",
            "`lora_bias` and `bias` other than `none` are refused",
            f"{_HELPER} `_validate_features`, `validate_legal`",
        ),
        Limit(
            "LG703",
            '`modules_to_save` other than `["classifier", "score"]` is refused',
            f"{_HELPER} `_validate_features`",
        ),
        Limit(
            "LG704",
            "`init_lora_weights` pissa/olora/corda/loftq (they change the base weights) is refused",
            f"{_HELPER} `_init_is_supported`",
        ),
        Limit(
            "LG705",
            "max(`r`, `rank_pattern`) above `--max-lora-rank` (default 16; legal values 1, 8, 16, "
            "32, 64, 128, 256, 320, 512) is refused",
            f"{_HELPER} `validate_legal`; vllm/config/lora.py",
        ),
        Limit(
            "LG706",
            "missing `r`/`lora_alpha`/`target_modules`, aLoRA, `layer_replication`, BD-LoRA, QALoRA are refused",
            f"{_HELPER} `from_dict`, `_validate_features`",
        ),
        Limit(
            "LG707",
            "a module whose last name component the model does not support is refused",
            "vllm/lora/lora_model.py `check_unexpected_modules`",
        ),
        Limit(
            "LG708",
            "embedding LoRA over another vocabulary size is refused (RuntimeError)",
            "vllm/lora/lora_model.py `from_lora_tensors`",
        ),
        Limit(
            "LG709",
            "only the last name component is validated: modules under another prefix load and "
            "are applied to nothing, logged at DEBUG",
            "issues 34186, 48019; lora_model.py, model_manager.py",
        ),
        Limit(
            "LG710",
            "`--lora-target-modules` is never compared with the adapter: modules outside it are applied to nothing",
            "issue 55193 (repro on 0.28.0); PR 34984",
        ),
        Limit(
            "LG711",
            "the resolver plugins load an adapter only if `base_model_name_or_path` equals the "
            "served model name exactly",
            "vllm/plugins/lora_resolvers/filesystem_resolver.py; docs.vllm.ai design/lora_resolver_plugins",
        ),
    ),
    default_max_lora_rank=16,
    legal_max_lora_ranks=(1, 8, 16, 32, 64, 128, 256, 320, 512),
)

_MERGE = "Merge the adapter into the base (PEFT `merge_and_unload`) and serve the merged model"


def dora(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    if not uses_dora(ctx):
        return []
    return [
        Issue(
            PROFILE.refuses("`ValueError: vLLM does not yet support DoRA.` (use_dora, lora_magnitude_vector)"),
            f"{_MERGE}, or retrain without use_dora.",
            {"feature": "use_dora"},
        )
    ]


def bias(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    cfg = ctx.config
    if cfg is None:
        return []
    texts: list[str] = []
    lora_bias = bool(cfg.raw.get("lora_bias")) or any(t.part == "lora_B" and t.param == "bias" for t in ctx.lora)
    if lora_bias:
        texts.append("vLLM does not support LoRA bias (lora_bias).")
    mode = cfg.raw.get("bias")
    if mode not in (None, "none"):
        texts.append(f"Adapter bias is not supported. (bias={mode!r})")
    if not texts:
        return []
    return [
        Issue(
            PROFILE.refuses(f"`ValueError: {' '.join(texts)}`"),
            f"{_MERGE}, or retrain with bias='none' and lora_bias=False.",
            {"lora_bias": lora_bias, "bias": mode},
        )
    ]


def modules_to_save(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    cfg = ctx.config
    unsupported = [m for m in (cfg.modules_to_save if cfg else []) if m not in CLASSIFIER_HEADS]
    if not unsupported:
        return []
    text = (
        'vLLM only supports modules_to_save being either None or ["classifier", "score"] for '
        f"classification models. Unsupported modules_to_save: {unsupported}"
    )
    return [
        Issue(
            PROFILE.refuses(f"`ValueError: {text}`"),
            f"{_MERGE}; for added tokens, serve a base resized with the adapter's tokenizer, or train LoRA "
            "on the module (target it) instead of saving it whole.",
            {"modules_to_save": unsupported},
        )
    ]


def init_weights(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    init = ctx.config.raw.get("init_lora_weights") if ctx.config else None
    if not isinstance(init, str) or init.lower() in SUPPORTED_INITS:
        return []
    text = (
        f"vLLM does not support init_lora_weights={init!r}. Inits such as PiSSA, OLoRA, CorDA and LoftQ "
        "modify the base model weights when PEFT loads the adapter."
    )
    return [
        Issue(
            PROFILE.refuses(f"`ValueError: {text}`"),
            "Convert it to a regular LoRA adapter with PEFT's path_initial_model_for_weight_conversion, "
            "or set init_lora_weights to true if the served base already holds the modified weights.",
            {"init_lora_weights": init},
        )
    ]


def rank(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    issues: list[Issue] = []
    given = options.max_lora_rank
    legal = PROFILE.legal_max_lora_ranks
    if given is not None and given not in legal:
        issues.append(
            Issue(
                PROFILE.refuses(
                    f"--max-lora-rank {given} is not one of vLLM's values {list(legal)}: the server does not start."
                ),
                f"Use --max-lora-rank {_next_legal(given)}.",
                {"max_lora_rank": given, "legal": list(legal)},
            )
        )
    limit = given if given is not None else PROFILE.default_max_lora_rank or 0
    declared = config_max_rank(ctx)
    if declared is not None and declared > limit:
        where = "" if given is not None else " (vLLM's default)"
        issues.append(
            Issue(
                PROFILE.refuses(f"`ValueError: LoRA rank {declared} is greater than max_lora_rank {limit}.`{where}"),
                f"Serve with --max-lora-rank {_next_legal(declared)} (it sizes the LoRA buffers), or use a "
                "lower-rank adapter.",
                {"rank": declared, "max_lora_rank": limit, "default": given is None},
            )
        )
    return issues


def _next_legal(rank: int) -> str:
    bigger = [v for v in PROFILE.legal_max_lora_ranks if v >= rank]
    return str(bigger[0]) if bigger else f"{PROFILE.legal_max_lora_ranks[-1]} (the maximum; too small)"


def config_fields(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    cfg = ctx.config
    if cfg is None or not cfg.is_lora:
        return []
    texts: list[str] = []
    missing = [f for f in REQUIRED_FIELDS if f not in cfg.raw]
    if missing:
        texts.append(f"Missing required configuration fields: {set(missing)}")
    elif cfg.r is not None and cfg.r <= 0:
        texts.append(f"LoRA rank `r` must be a positive integer, got {cfg.r}.")
    found = [key for key, _ in OTHER_FEATURES if cfg.raw.get(key)]
    texts += [text for key, text in OTHER_FEATURES if key in found]
    if not texts:
        return []
    return [
        Issue(
            PROFILE.refuses(f"`ValueError: {' '.join(texts)}`"),
            f"{_MERGE}, or retrain without these features.",
            {"missing": missing, "features": found},
        )
    ]


def expected_leaves(ctx: AdapterView) -> set[str]:
    """Last name components vLLM expects: the base's adaptable modules, packed parts included."""
    return {leaf(n) for n in ctx.base.modules} if ctx.base is not None else set()


def _unexpected(ctx: AdapterView) -> dict[str, str]:
    expected = expected_leaves(ctx)
    return {m: last for m, last in lora_modules(ctx).items() if last not in expected} if expected else {}


def unexpected_modules(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    bad = _unexpected(ctx)
    if not bad:
        return []
    expected = sorted(expected_leaves(ctx))
    text = (
        f"While loading {ctx.adapter.name}, expected target modules in {expected} but received "
        f"{sorted(bad)[:4]}{'...' if len(bad) > 4 else ''}. Please verify that the loaded LoRA module is correct"
    )
    return [
        Issue(
            PROFILE.refuses(f"`ValueError: {text}`"),
            "Serve the adapter on the model it was trained for.",
            module_evidence(bad),
        )
    ]


def embedding_vocab(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    if ctx.base is None:
        return []
    vocab = ctx.base.vocab_size
    wrong = {
        t.module: t.shape[1]
        for t in ctx.lora
        if t.part == "lora_embedding_A" and len(t.shape) == 2 and t.shape[1] not in (0, vocab)
    }
    if not wrong:
        return []
    sizes = sorted(set(wrong.values()))
    return [
        Issue(
            PROFILE.refuses(
                f"embedding LoRA over {sizes} token(s) ({', '.join(sorted(wrong))}) while "
                f"{ctx.base.name} has {vocab}: `LoRAModel.from_lora_tensors` raises a "
                "RuntimeError on lora_embedding_A's vocabulary size."
            ),
            "Serve the base resized with the adapter's tokenizer, or the base it was trained on.",
            {"adapter_vocab": sizes, "base_vocab": vocab, **module_evidence(wrong)},
        )
    ]


def prefix_noop(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    if ctx.base is None or _unexpected(ctx):
        return []  # a refused adapter is not served at all (LG707)
    modules = lora_modules(ctx)
    lost = {
        m
        for m in modules
        if ctx.placements.get(m) is not None and ctx.placements[m].status in ("unmapped", "extra-layer")
    }
    if not lost:
        return []
    hints = {m: p.suggestion for m in sorted(lost) if (p := ctx.placements[m]).suggestion}
    hint = f" (e.g. {next(iter(hints))} would be {next(iter(hints.values()))})" if hints else ""
    reason = (
        f"vLLM validates only the last name component (q_proj), so these keys pass its check, then match "
        f"no module path of {ctx.base.name} and are skipped with a DEBUG log (issues 34186, 48019){hint}"
    )
    return [
        Issue(
            PROFILE.applies_nothing(lost, len(modules), reason),
            "Rename the keys to the served model's module paths (the suggested mapping), or serve the "
            "model class the adapter was saved from.",
            {
                "silent": True,
                "total": len(modules),
                "suggestions": dict(list(hints.items())[:3]),
                **module_evidence(lost),
            },
        )
    ]


def vllm_name(module: str) -> str:
    """The module path in vLLM: q/k/v and gate/up parts live in packed `qkv_proj`/`gate_up_proj`."""
    head, _, last = module.rpartition(".")
    packed = PACKED_MODULES.get(last, last)
    return f"{head}.{packed}" if head else packed


def target_modules_noop(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    if not options.restricts_targets or options.lora_target_modules is None or _unexpected(ctx):
        return []
    targets = options.lora_target_modules
    candidates = applied_modules(ctx) if ctx.base is not None else lora_modules(ctx)
    lost = {m for m in candidates if not any((n := vllm_name(m)) == t or n.endswith("." + t) for t in targets)}
    if not lost:
        return []
    needed = sorted({leaf(vllm_name(m)) for m in lost})
    unpacked = sorted(set(targets) & set(PACKED_MODULES))
    note = (
        f"; the flag is matched against vLLM's module names (PR 34984), where q/k/v live in qkv_proj and "
        f"gate/up in gate_up_proj, so {', '.join(unpacked)} name no vLLM module"
        if unpacked
        else ""
    )
    reason = (
        f"--lora-target-modules {' '.join(targets)} leaves out {', '.join(needed)}, and vLLM never compares "
        f"the flag with the adapter (issue 55193; the zero-applied case is logged only at DEBUG){note}"
    )
    return [
        Issue(
            PROFILE.applies_nothing(lost, len(lora_modules(ctx)), reason),
            f"Add {' '.join(needed)} to --lora-target-modules, or drop the flag.",
            {"silent": True, "lora_target_modules": list(targets), "needed": needed, **module_evidence(lost)},
        )
    ]


def resolver_name(ctx: AdapterView, options: EngineOptions) -> list[Issue]:
    cfg = ctx.config
    if ctx.base is None or not ctx.base_given or cfg is None:
        return []
    claim = cfg.raw.get("base_model_name_or_path")
    served = ctx.base.name
    problems = []
    if claim != served:
        problems.append(f"base_model_name_or_path {claim!r} is not the served model name {served!r}")
    if cfg.peft_type != "LORA":
        problems.append(f"peft_type is {cfg.peft_type}, not LORA")
    if not problems:
        return []
    text = (
        f"{PROFILE.label}'s LoRA resolver plugins (lora_filesystem_resolver, hf_hub_resolver) will not load "
        f"it: {'; '.join(problems)} (they compare it exactly). --lora-modules and /v1/load_lora_adapter "
        "do not check it."
    )
    return [
        Issue(
            text,
            f"Set base_model_name_or_path to {served!r} exactly if the adapter is served through a "
            "resolver, or load it with --lora-modules.",
            {"claimed": claim, "served": served},
        )
    ]
