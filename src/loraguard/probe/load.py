"""LG8xx: what PEFT did when it loaded an adapter onto a live model, as findings (no torch here).

PEFT's `load_adapter` returns the keys it could not place (`missing_keys`: adapter weights it created
but the file has no tensor for; `unexpected_keys`: tensors of the file it loaded into nothing) and
`PeftModel.from_pretrained` drops even that; a `target_modules` name that matches nothing while
another one matches passes without a word. `loraguard.load_adapter` (the `guard` room) collects these
outcomes in a `LoadOutcome` and these rules turn them into findings. They register in the shared
rule table (for `loraguard explain` and docs/rules.md); `check()` hands them a `CheckContext`, for
which they return nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from loraguard.codes import LOAD_FAMILY, RULES, Rule, by_prefix, rule
from loraguard.findings import Finding, Severity

__all__ = ["LoadOutcome", "load_rule", "run_load_rules"]

_SHOWN = 5


@dataclass(frozen=True)
class LoadOutcome:
    """What happened when PEFT loaded one adapter onto one live model (or why it did not)."""

    adapter: str
    """The adapter's folder."""
    adapter_name: str
    error: str | None = None
    """PEFT's exception (`Type: message`) when the load raised; the model was then restored."""
    missing_keys: tuple[str, ...] = ()
    """Adapter parameters PEFT created on the model that the file has no tensor for."""
    unexpected_keys: tuple[str, ...] = ()
    """Tensors of the file PEFT loaded into nothing."""
    random_init: bool = False
    """The config's `init_lora_weights` is false: weights without a tensor keep random values (not a zero B)."""
    targeted: tuple[str, ...] = ()
    """Modules PEFT wrapped with the adapter's layers."""
    unmatched_targets: tuple[str, ...] = ()
    """`target_modules` names that matched none of the wrapped modules."""
    only_live: tuple[str, ...] = ()
    """Targetable modules of the live model that its config does not describe."""
    only_config: tuple[str, ...] = ()
    """Modules the config describes that the live model does not have (as a Linear, Conv1D or Embedding)."""
    reshaped: tuple[str, ...] = ()
    """Modules whose live shape differs from the config's (`name: config (in, out) -> live (in, out)`)."""


LoadFn = Callable[[LoadOutcome], list[Finding]]


def load_rule(code: str, name: str, category: str, severity: Severity, title: str) -> Callable[[LoadFn], Rule[object]]:
    """Register a guarded-load rule in the shared rule table (it returns nothing for other contexts)."""

    def register(func: LoadFn) -> Rule[object]:
        @functools.wraps(func)
        def guarded(ctx: object) -> list[Finding]:
            return func(ctx) if isinstance(ctx, LoadOutcome) else []

        return rule(code, name, category, severity, title)(guarded)

    return register


def run_load_rules(outcome: LoadOutcome) -> list[Finding]:
    """Every LG8xx rule's findings for `outcome`."""
    findings: list[Finding] = []
    for r in by_prefix(RULES.values(), [LOAD_FAMILY]):
        findings.extend(r.func(outcome))
    return findings


def _few(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _modules_of(keys: tuple[str, ...]) -> tuple[str, ...]:
    """`base_model.model.model.layers.0.q_proj.lora_A.default.weight` -> `model.layers.0.q_proj`."""
    out: dict[str, None] = {}
    for key in keys:
        stem = key.removeprefix("base_model.model.")
        for marker in (".lora_", ".base_layer", ".modules_to_save", ".original_module"):
            if marker in stem:
                stem = stem.split(marker, 1)[0]
                break
        else:
            stem = stem.rsplit(".", 1)[0]
        out[stem] = None
    return tuple(out)


@load_rule("LG801", "peft-load-failed", "load-failed", Severity.ERROR, "PEFT raised while loading the adapter")
def peft_load_failed(o: LoadOutcome) -> list[Finding]:
    """What it checks: whether PEFT's own load (`PeftModel` around the model, then `load_adapter`)
    raised, whatever the exception: a size mismatch between a tensor and the module it lands on,
    target modules that match nothing at all, a config PEFT cannot read.

    Why it matters: PEFT injects its layers into the model in place before it copies the weights, so
    a load that fails half-way leaves the model holding empty adapter layers and frozen parameters.
    `loraguard.load_adapter` puts every module, flag and attribute back as it was and reports this.

    How to fix: read the static check's findings beside this one (shapes, layers and prefixes say
    which base the adapter was trained for) and load the adapter onto that base.
    """
    if o.error is None:
        return []
    return [
        peft_load_failed.finding(
            f"PEFT could not load {o.adapter} onto the model: {o.error}; the model was left as it was",
            fix="load the adapter onto the base it was trained for (the static check's findings say which "
            "shapes it expects)",
            error=o.error,
        )
    ]


@load_rule(
    "LG802",
    "dropped-tensors",
    "prefix-mismatch",
    Severity.ERROR,
    "tensors of the adapter file PEFT loaded into nothing",
)
def dropped_tensors(o: LoadOutcome) -> list[Finding]:
    """What it checks: PEFT's `unexpected_keys` after `load_adapter`: tensors in the adapter's
    weights file that no parameter of the model received.

    Why it matters: `PeftModel.from_pretrained` ignores them without a word. A prefix the model
    does not use (`language_model.`, a doubled `base_model.model.`), layers the model does not have
    or modules of another architecture all end here: the trained weights never reach the model.

    How to fix: load the adapter onto the model class it was saved from (a vision-language wrapper,
    a deeper model); or rename the keys to this model's module names if it truly is the same base.
    """
    if not o.unexpected_keys:
        return []
    modules = _modules_of(o.unexpected_keys)
    return [
        dropped_tensors.finding(
            f"{len(o.unexpected_keys)} tensor(s) of the adapter file reached no parameter of the model "
            f"(PEFT's unexpected keys) on {len(modules)} module(s): {_few(modules)}",
            fix="load the adapter onto the model it was saved from; its keys name modules this model does not have",
            keys=list(o.unexpected_keys),
            modules=list(modules),
        )
    ]


@load_rule(
    "LG803",
    "missing-adapter-weights",
    "declared-target-missing",
    Severity.WARNING,
    "adapter layers PEFT created without weights in the file",
)
def missing_adapter_weights(o: LoadOutcome) -> list[Finding]:
    """What it checks: PEFT's `missing_keys` after `load_adapter`: adapter parameters PEFT created on
    modules matched by `target_modules` for which the file holds no tensor. A warning while those
    layers keep PEFT's default initialisation (a zero `lora_B`, so they do nothing); an error when the
    config's `init_lora_weights` is false, so those layers add random noise to the model.

    Why it matters: these modules run without trained weights. Usually a prefix or layer mismatch
    (the tensors went to `unexpected_keys` instead), or a config edited after training.

    How to fix: compare `target_modules` with the tensors in the file (`loraguard check` lists
    both); load the adapter onto the model it was saved from.
    """
    if not o.missing_keys:
        return []
    modules = _modules_of(o.missing_keys)
    if o.random_init:
        effect, severity = (
            "they keep random weights (init_lora_weights is false): noise added to the model",
            Severity.ERROR,
        )
    else:
        effect, severity = "they keep a zero lora_B: those modules get no adaptation", Severity.WARNING
    return [
        missing_adapter_weights.finding(
            f"{len(o.missing_keys)} adapter weight(s) PEFT created on {len(modules)} module(s) have no tensor in "
            f"the file: {_few(modules)}; {effect}",
            severity=severity,
            fix="compare target_modules with the tensors in the file (`loraguard check`); load the adapter onto "
            "the model it was saved from",
            keys=list(o.missing_keys),
            modules=list(modules),
            random_init=o.random_init,
        )
    ]


@load_rule(
    "LG804",
    "unmatched-target",
    "unknown-target-module",
    Severity.WARNING,
    "target_modules names that matched no module of the model",
)
def unmatched_target(o: LoadOutcome) -> list[Finding]:
    """What it checks: each name of the config's `target_modules` (a list) against the modules PEFT
    actually wrapped on the live model; a name that matched none of them.

    Why it matters: PEFT raises only when no name matches at all. With `["q_proj", "qkv_proj"]` on a
    model that has only `q_proj`, the adapter silently adapts less than its author intended.

    How to fix: check the adapter was trained for this architecture (fused `qkv_proj` vs separate
    projections, GPT-2's `c_attn`); drop names that do not exist in it from `target_modules`.
    """
    if not o.unmatched_targets or o.error is not None:
        return []
    return [
        unmatched_target.finding(
            f"target_modules name(s) {', '.join(repr(t) for t in o.unmatched_targets)} matched none of the "
            f"{len(o.targeted)} module(s) PEFT wrapped on this model",
            fix="check the adapter was trained for this architecture; names that exist nowhere in the model "
            "adapt nothing",
            unmatched=list(o.unmatched_targets),
            targeted=len(o.targeted),
        )
    ]


@load_rule(
    "LG805",
    "live-model-differs",
    "live-model-differs",
    Severity.INFO,
    "the live model's modules differ from its config",
)
def live_model_differs(o: LoadOutcome) -> list[Finding]:
    """What it checks: the Linear, Conv1D and Embedding modules of the model in memory against those
    its `config` describes (the modules `loraguard check --base` would list from config.json).

    Why it matters: the guarded load checks the adapter against the live modules, which is what PEFT
    will see; a model edited after loading (a replaced head, pruned layers, custom modules) is not the
    model its config names, so a check against the config alone would judge another model.

    How to fix: nothing, if the edits are intended. Otherwise load the model again from its folder.
    """
    if not (o.only_live or o.only_config or o.reshaped):
        return []
    parts = []
    if o.only_config:
        parts.append(f"{len(o.only_config)} module(s) of the config are not in the model ({_few(o.only_config)})")
    if o.only_live:
        parts.append(f"{len(o.only_live)} module(s) of the model are not in the config ({_few(o.only_live)})")
    if o.reshaped:
        parts.append(f"{len(o.reshaped)} module(s) have other shapes ({_few(o.reshaped)})")
    return [
        live_model_differs.finding(
            "the live model differs from what its config describes: " + "; ".join(parts) + ". The check used the "
            "live model's modules",
            fix="nothing if the model was edited on purpose; otherwise reload it from its folder",
            only_live=list(o.only_live),
            only_config=list(o.only_config),
            reshaped=list(o.reshaped),
        )
    ]
