"""LG7xx: serving engines. One rule per limit of a profile in `loraguard.engines`.

Each rule runs only when its engine is requested (`check(..., engines=("vllm",))`, `--engine vllm`),
so the default `peft` adds nothing. Codes: LG70x-LG71x vLLM, LG72x SGLang, LG73x LoRAX.
"""

from __future__ import annotations

from collections.abc import Callable

from loraguard.checks.context import CheckContext
from loraguard.codes import Rule, rule
from loraguard.engines import lorax, sglang, vllm
from loraguard.engines.base import EngineOptions, Issue
from loraguard.findings import Finding, Severity

_INCOMPATIBLE = "engine-incompatible"
_SILENT = "engine-silent-noop"


def _run(
    r: Rule[CheckContext], engine: str, check: Callable[[CheckContext, EngineOptions], list[Issue]], ctx: CheckContext
) -> list[Finding]:
    if engine not in ctx.engines:
        return []
    return [r.finding(i.message, fix=i.fix, engine=engine, **i.evidence) for i in check(ctx, ctx.engine_options)]


# --- vLLM ---------------------------------------------------------------------------------------


@rule("LG701", "vllm-dora-unsupported", _INCOMPATIBLE, Severity.ERROR, "vLLM refuses DoRA adapters")
def vllm_dora(ctx: CheckContext) -> list[Finding]:
    """What it checks: `use_dora` in the config or `lora_magnitude_vector` tensors, with `--engine vllm`.

    Why it matters: vLLM's `PEFTHelper._validate_features` raises `ValueError: vLLM does not yet
    support DoRA.`; PEFT loads the adapter fine, so the failure appears only at deployment.

    How to fix: merge the adapter into the base and serve the merged model, or retrain without DoRA.
    """
    return _run(vllm_dora, "vllm", vllm.dora, ctx)


@rule("LG702", "vllm-bias-unsupported", _INCOMPATIBLE, Severity.ERROR, "vLLM refuses lora_bias and adapter bias")
def vllm_bias(ctx: CheckContext) -> list[Finding]:
    """What it checks: `lora_bias: true` (or `lora_B.bias` tensors) and `bias` other than `none`.

    Why it matters: vLLM raises `vLLM does not support LoRA bias (lora_bias).` and `Adapter bias is
    not supported.` when it loads the adapter.

    How to fix: merge the adapter and serve the merged model, or retrain with bias="none".
    """
    return _run(vllm_bias, "vllm", vllm.bias, ctx)


@rule(
    "LG703",
    "vllm-modules-to-save-unsupported",
    _INCOMPATIBLE,
    Severity.ERROR,
    "vLLM refuses modules_to_save other than classifier/score",
)
def vllm_modules_to_save(ctx: CheckContext) -> list[Finding]:
    """What it checks: `modules_to_save` names other than `classifier` and `score` (e.g. `lm_head`,
    `embed_tokens` saved after adding tokens).

    Why it matters: vLLM refuses the adapter: `vLLM only supports modules_to_save being either None
    or ["classifier", "score"] for classification models.`

    How to fix: merge the adapter and serve the merged model, or train LoRA on the module instead of
    saving it whole.
    """
    return _run(vllm_modules_to_save, "vllm", vllm.modules_to_save, ctx)


@rule(
    "LG704",
    "vllm-init-unsupported",
    _INCOMPATIBLE,
    Severity.ERROR,
    "vLLM refuses PiSSA/OLoRA/CorDA/LoftQ initialisations",
)
def vllm_init(ctx: CheckContext) -> list[Finding]:
    """What it checks: `init_lora_weights` strings other than gaussian, eva, orthogonal, mica and
    lora_ga (pissa, pissa_niter_N, olora, corda, loftq).

    Why it matters: these inits modify the base weights when PEFT loads the adapter; vLLM cannot and
    refuses them (`vLLM does not support init_lora_weights=...`).

    How to fix: convert to a plain LoRA with PEFT's `path_initial_model_for_weight_conversion`, or set
    `init_lora_weights` to true if the served base already holds the modified weights.
    """
    return _run(vllm_init, "vllm", vllm.init_weights, ctx)


@rule("LG705", "vllm-rank-above-max", _INCOMPATIBLE, Severity.ERROR, "Rank above vLLM's --max-lora-rank")
def vllm_rank(ctx: CheckContext) -> list[Finding]:
    """What it checks: the largest of `r` and the `rank_pattern` values against `--max-lora-rank`
    (vLLM's default 16), and that the flag is one of vLLM's values (1, 8, 16, 32, 64, 128, 256, 320, 512).

    Why it matters: `validate_legal` raises `LoRA rank N is greater than max_lora_rank M.`; the
    server's buffers are sized by the flag.

    How to fix: pass `--max-lora-rank` (and to loraguard the same value) at least the adapter's rank.
    """
    return _run(vllm_rank, "vllm", vllm.rank, ctx)


@rule(
    "LG706",
    "vllm-config-unsupported",
    _INCOMPATIBLE,
    Severity.ERROR,
    "vLLM refuses aLoRA, layer_replication, BD-LoRA, QALoRA or missing fields",
)
def vllm_config(ctx: CheckContext) -> list[Finding]:
    """What it checks: the required fields `r`, `lora_alpha`, `target_modules`, a positive `r`, and
    `alora_invocation_tokens`, `layer_replication`, `use_bdlora`, `use_qalora`.

    Why it matters: vLLM raises a `ValueError` naming the missing fields or the unsupported feature.

    How to fix: restore the fields, or merge the adapter and serve the merged model.
    """
    return _run(vllm_config, "vllm", vllm.config_fields, ctx)


@rule(
    "LG707",
    "vllm-unexpected-module",
    _INCOMPATIBLE,
    Severity.ERROR,
    "LoRA on modules vLLM does not expect for this model",
)
def vllm_unexpected_module(ctx: CheckContext) -> list[Finding]:
    """What it checks: the last component of every adapted module (`query_key_value`) is a module
    of the base (vLLM expects the model's LoRA modules, packed parts included).

    Why it matters: `check_unexpected_modules` raises `While loading ..., expected target modules in
    [...] but received [...]`: the adapter is for another architecture.

    How to fix: serve the adapter on the model it was trained for.
    """
    return _run(vllm_unexpected_module, "vllm", vllm.unexpected_modules, ctx)


@rule("LG708", "vllm-embedding-vocab", _INCOMPATIBLE, Severity.ERROR, "Embedding LoRA over another vocabulary size")
def vllm_embedding_vocab(ctx: CheckContext) -> list[Finding]:
    """What it checks: `lora_embedding_A`'s vocabulary dimension against the base's vocabulary.

    Why it matters: vLLM's `LoRAModel.from_lora_tensors` raises a RuntimeError: the adapter was
    trained with added tokens or on another tokenizer.

    How to fix: serve a base resized with the adapter's tokenizer, or the base it was trained on.
    """
    return _run(vllm_embedding_vocab, "vllm", vllm.embedding_vocab, ctx)


@rule(
    "LG709",
    "vllm-prefix-silent-noop",
    _SILENT,
    Severity.ERROR,
    "vLLM accepts modules under another prefix and applies them to nothing",
)
def vllm_prefix_noop(ctx: CheckContext) -> list[Finding]:
    """What it checks: adapted modules whose last component vLLM accepts but whose path is no module
    of the base (a text model's adapter on a wrapper nesting `language_model.`, another model class,
    layers the base lacks).

    Why it matters: vLLM validates only the last name component; at activation the modules match no
    layer and are skipped with a DEBUG log. The server returns 200 and serves the base model (vLLM
    issues 34186, 48019).

    How to fix: rename the keys to the served model's module paths, or serve the model class the
    adapter was saved from.
    """
    return _run(vllm_prefix_noop, "vllm", vllm.prefix_noop, ctx)


@rule(
    "LG710",
    "vllm-target-modules-silent-noop",
    _SILENT,
    Severity.ERROR,
    "Modules outside vLLM's --lora-target-modules are applied to nothing",
)
def vllm_target_modules_noop(ctx: CheckContext) -> list[Finding]:
    """What it checks: with `--lora-target-modules`, every adapted module's vLLM name (q/k/v in
    `qkv_proj`, gate/up in `gate_up_proj`) is in the list.

    Why it matters: vLLM never compares the flag with the adapter: modules outside it are accepted,
    advertised and applied to nothing; output is byte-identical to the base (vLLM issue 55193).

    How to fix: add the missing names to `--lora-target-modules`, or drop the flag.
    """
    return _run(vllm_target_modules_noop, "vllm", vllm.target_modules_noop, ctx)


@rule(
    "LG711",
    "vllm-resolver-base-name",
    _INCOMPATIBLE,
    Severity.WARNING,
    "vLLM's resolver plugins need base_model_name_or_path to equal the served name",
)
def vllm_resolver_name(ctx: CheckContext) -> list[Finding]:
    """What it checks: `base_model_name_or_path` equals the given base's identity exactly, and
    `peft_type` is LORA.

    Why it matters: vLLM's LoRA resolver plugins (filesystem, Hugging Face Hub) load an adapter on
    first request only when both hold; otherwise the request fails with "model not found".
    `--lora-modules` and `/v1/load_lora_adapter` do not check this, hence a warning.

    How to fix: set `base_model_name_or_path` to the served model name, or load the adapter with
    `--lora-modules`.
    """
    return _run(vllm_resolver_name, "vllm", vllm.resolver_name, ctx)


# --- SGLang -------------------------------------------------------------------------------------


@rule("LG721", "sglang-dora-unsupported", _INCOMPATIBLE, Severity.ERROR, "SGLang refuses DoRA adapters")
def sglang_dora(ctx: CheckContext) -> list[Finding]:
    """What it checks: `use_dora` or `lora_magnitude_vector` tensors, with `--engine sglang`.

    Why it matters: SGLang's `validate_new_adapter` fails the load: "LoRA serving currently doesn't
    support DoRA adapters".

    How to fix: merge the adapter and serve the merged model, or retrain without DoRA.
    """
    return _run(sglang_dora, "sglang", sglang.dora, ctx)


@rule("LG722", "sglang-added-tokens", _INCOMPATIBLE, Severity.ERROR, "SGLang refuses adapters that add tokens")
def sglang_added_tokens(ctx: CheckContext) -> list[Finding]:
    """What it checks: `added_tokens.json` beside the adapter with ids at or above the base's
    vocabulary, or saved embeddings / `lm_head` / embedding LoRA with more rows than the base.

    Why it matters: SGLang fails the load: "LoRA serving currently doesn't support adapters that
    add tokens to the vocabulary".

    How to fix: serve a base whose vocabulary already holds the tokens, or retrain without adding tokens.
    """
    return _run(sglang_added_tokens, "sglang", sglang.added_tokens, ctx)


@rule("LG723", "sglang-rank-above-max", _INCOMPATIBLE, Severity.ERROR, "Rank above SGLang's --max-lora-rank")
def sglang_rank(ctx: CheckContext) -> list[Finding]:
    """What it checks: with `--max-lora-rank`, the largest of `r` and the `rank_pattern` values.

    Why it matters: the LoRA memory pool cannot hold it (`can_support`): "LoRA adapter ... with rank
    N is incompatible with the current LoRA memory pool configuration". Without the flag SGLang
    sizes the pool from the adapters loaded at start, so nothing is reported.

    How to fix: start SGLang with a `--max-lora-rank` at least the adapter's rank.
    """
    return _run(sglang_rank, "sglang", sglang.rank, ctx)


@rule(
    "LG724",
    "sglang-target-modules-excluded",
    _INCOMPATIBLE,
    Severity.ERROR,
    "Targets outside SGLang's --lora-target-modules",
)
def sglang_target_modules(ctx: CheckContext) -> list[Finding]:
    """What it checks: with `--lora-target-modules`, the adapter's target modules (normalized as
    SGLang does: q/k/v -> qkv_proj, gate/up -> gate_up_proj) are all in the list.

    Why it matters: SGLang refuses the adapter and names the modules to add (unlike vLLM, which
    accepts it and applies it to nothing).

    How to fix: add the names to `--lora-target-modules`, or pass `all`.
    """
    return _run(sglang_target_modules, "sglang", sglang.target_modules, ctx)


# --- LoRAX --------------------------------------------------------------------------------------


@rule(
    "LG731",
    "lorax-architecture-mismatch",
    _INCOMPATIBLE,
    Severity.ERROR,
    "LoRAX refuses an adapter whose claimed base has another architecture",
)
def lorax_architecture(ctx: CheckContext) -> list[Finding]:
    """What it checks: when `base_model_name_or_path` names another model than the base, that the
    claimed model (resolved offline) has the base's architecture.

    Why it matters: LoRAX's `check_architectures` raises "not compatible ... Architectures differ".
    With the same architecture it only warns, so a same-family adapter for another size loads and
    fails later (the base rules LG501/LG502 report that case).

    How to fix: serve the adapter on the claimed model (`--model-id`).
    """
    return _run(lorax_architecture, "lorax", lorax.architecture, ctx)


@rule("LG732", "lorax-module-ignored", _SILENT, Severity.ERROR, "LoRAX ignores target modules it does not support")
def lorax_module_ignored(ctx: CheckContext) -> list[Finding]:
    """What it checks: adapted modules against LoRAX's supported target modules for the base's
    architecture (docs/models/adapters/lora.md; e.g. no `embed_tokens` on Qwen2 or Llama).

    Why it matters: LoRAX loads the adapter and ignores those modules with a warning on the backend:
    part of the adapter (or all of it) silently does nothing.

    How to fix: serve it with an engine that adapts these modules, or retrain on supported modules.
    """
    return _run(lorax_module_ignored, "lorax", lorax.ignored_modules, ctx)


@rule(
    "LG733",
    "lorax-unused-weights",
    _SILENT,
    Severity.ERROR,
    "LoRAX ignores weights whose names match no layer of the base",
)
def lorax_unused_weights(ctx: CheckContext) -> list[Finding]:
    """What it checks: supported modules whose path is no module of the base (another prefix such as
    `language_model.`, another model class, layers the base lacks).

    Why it matters: LoRAX looks weights up by the model's own module paths and only logs the others
    as "unused adapter weights": the adapter is served as a partial or total no-op.

    How to fix: rename the keys to the served model's module paths.
    """
    return _run(lorax_unused_weights, "lorax", lorax.unused_weights, ctx)
