"""LG2xx: the adapter's config, and the config against its own tensors."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from loraguard.adapter.config import config_problems, layer_regex, saved_regex
from loraguard.adapter.patterns import is_literal
from loraguard.adapter.peft_fields import known_lora_fields
from loraguard.checks.context import CheckContext
from loraguard.checks.targets import (
    PatternKeys,
    is_all_linear,
    matched_targets,
    matches_target,
    suffixes,
)
from loraguard.codes import rule
from loraguard.errors import ConfigPatternError
from loraguard.findings import Finding, Severity

MAX_LISTED = 20
"""Unknown target names reported one finding each; the rest are counted in one more finding."""


@rule(
    "LG201",
    "unknown-config-field",
    "unknown-config-field",
    Severity.WARNING,
    "Config keys the installed PEFT does not know",
)
def unknown_config_field(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: keys of `adapter_config.json` that are not fields of the installed PEFT's
    `LoraConfig` (the same set difference PEFT computes before dropping them).

    Why it matters: PEFT ignores them with one warning line; a newer feature such as
    `target_parameters` then silently does nothing, and PEFT < 0.14 raises a TypeError instead.

    How to fix: upgrade PEFT (`pip install -U peft`) or remove the keys if they are stray.
    """
    if ctx.config is None or not ctx.config.is_lora:
        return
    known = known_lora_fields()
    unknown = sorted(set(ctx.config.raw) - known.fields)
    if unknown:
        where = "installed PEFT" if known.installed else "PEFT field list bundled with loraguard"
        saved = ctx.config.raw.get("peft_version")
        note = f" (saved with PEFT {saved})" if saved else ""
        yield unknown_config_field.finding(
            f"adapter_config.json has keys unknown to PEFT {known.peft_version} ({where}){note}: "
            f"{', '.join(unknown)}; PEFT ignores them.",
            fix="pip install -U peft, or delete the keys if they are not meant to do anything.",
            unknown=unknown,
            peft_version=known.peft_version,
            saved_with=saved,
        )


@rule(
    "LG202",
    "config-rank-mismatch",
    "rank-mismatch",
    Severity.ERROR,
    "r / rank_pattern disagree with the tensors' ranks",
)
def config_rank_mismatch(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: each lora_A's rank (rows) and lora_B's rank (columns) against the rank the
    config gives that module (`rank_pattern`, first match as PEFT does, else `r`).

    Why it matters: PEFT builds the layers from the config, so a config edited after training
    either fails with a size-mismatch after loading the base, or (with ignore_mismatched_sizes)
    silently leaves the adapter untrained. Scaling `alpha / r` also changes.

    How to fix: restore the config the adapter was trained with (r = the tensors' rank).
    """
    if ctx.config is None or not ctx.config.is_lora or ctx.config.r is None:
        return
    patterns = ctx.config.rank_pattern
    keys = PatternKeys(patterns, ctx.config.patterns, "rank_pattern")
    bad: Counter[tuple[int, int]] = Counter()
    examples: list[str] = []
    for module, parts in ctx.by_module.items():
        a = parts.get("lora_A") or parts.get("lora_embedding_A")
        b = parts.get("lora_B") or parts.get("lora_embedding_B")
        key = keys.key_for(module) if patterns else None
        expected = patterns[key] if key is not None else ctx.config.r
        ranks = {x.shape[0] for x in (a,) if x is not None and len(x.shape) == 2}
        ranks |= {x.shape[1] for x in (b,) if x is not None and len(x.shape) == 2}
        for rank in ranks:
            if rank != expected and rank != 0:
                bad[(expected, rank)] += 1
                if len(examples) < 3:
                    examples.append(module)
    for (expected, rank), count in sorted(bad.items()):
        source = "rank_pattern" if patterns else "r"
        yield config_rank_mismatch.finding(
            f"config gives rank {expected} ({source}) but {count} module(s) have rank-{rank} tensors, "
            f"e.g. {examples[0]}",
            fix=f"Set r (or the rank_pattern entry) back to {rank}.",
            expected=expected,
            actual=rank,
            modules=count,
            examples=examples,
        )


@rule(
    "LG203",
    "declared-target-missing",
    "declared-target-missing",
    Severity.WARNING,
    "target_modules names modules with no tensors in the file",
)
def declared_target_missing(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: every name in `target_modules` that matches modules of the base has LoRA
    tensors for at least one of them.

    Why it matters: PEFT creates those layers with lora_B = 0 and only warns about missing keys
    (not at all through `load_adapter`); the config claims more adaptation than the file holds.

    How to fix: re-save the adapter, or drop the names from target_modules.
    """
    cfg = ctx.config
    if cfg is None or not cfg.is_lora or ctx.base is None or not ctx.lora:
        return
    targets = cfg.target_modules
    if not isinstance(targets, list):
        return
    if any(p.status == "unmapped" and p.suggestion for p in ctx.placements.values()):
        return  # the tensors are there under another prefix: LG304 reports the cause
    present = {m for m, p in ctx.placements.items() if p.status == "ok" and m in ctx.by_module}
    matched = matched_targets(cfg, ctx.base.modules)
    missing = [t for t in dict.fromkeys(targets) if matched.get(t) and not matched[t] & present]
    if missing:
        yield declared_target_missing.finding(
            f"target_modules lists {', '.join(map(repr, missing))} but the file has no LoRA tensors for "
            "any module they match: PEFT creates them untrained (lora_B = 0).",
            fix="Re-save the adapter with all its modules, or remove the names from target_modules.",
            targets=missing,
        )


@rule(
    "LG204",
    "unknown-target-module",
    "unknown-target-module",
    Severity.ERROR,
    "Target module names that exist nowhere in the base",
)
def unknown_target_module(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: each `target_modules` name (or the regex) matches some module of the base,
    by PEFT's rule (exact name or `.name` suffix). An error when no target matches at all (PEFT
    raises) or when the file holds tensors for a name the base lacks; a warning for a stale name
    beside targets that do match, with no tensors of its own (`["V", "q"]` on T5, `q_proj` left in
    a GPT-2 config): PEFT ignored it when training and ignores it again when loading.

    Why it matters: names from another architecture (`query_key_value` on Qwen2, `c_attn` on
    Llama) mean the adapter was made for another model, and PEFT raises only when *no* name
    matches. A stale name is harmless to loading but the config claims an adaptation that never
    happened.

    How to fix: use the adapter with the base it was trained for; remove a stale name from
    target_modules.
    """
    cfg = ctx.config
    if cfg is None or not cfg.is_lora or ctx.base is None or is_all_linear(cfg):
        return
    names = ctx.base.all_names
    targets = cfg.target_modules
    if isinstance(targets, str):
        engine = cfg.patterns
        if not any(engine.fullmatch("target_modules", targets, targets, n) for n in sorted(names)):
            yield unknown_target_module.finding(
                f"target_modules regex {targets!r} matches no module of {ctx.base.name}.",
                fix="Use the base the adapter was trained for.",
                target=targets,
            )
        return
    known = ctx.base.name_suffixes
    unknown = [t for t in dict.fromkeys(targets or []) if t not in known]
    if not unknown:
        return
    leafs = sorted({n.rsplit(".", 1)[-1] for n in ctx.base.modules})
    matched = sorted({n.rsplit(".", 1)[-1] for n in ctx.targeted_modules() if n in ctx.base.modules})
    holders: dict[str, list[str]] = {}  # every dot-suffix of a tensor's module -> those modules (linear)
    for module in ctx.by_module:
        for suffix in suffixes(module):
            holders.setdefault(suffix, []).append(module)
    held = {t: sorted(holders.get(t, ())) for t in unknown}
    stale = [t for t in unknown if matched and not held[t]]
    if stale:
        shown = stale[:MAX_LISTED]
        listed = ", ".join(map(repr, shown)) + (
            f" and {len(stale) - len(shown):,} more" if len(stale) > len(shown) else ""
        )
        one = len(stale) == 1
        it, what = ("it", "a stale name") if one else ("them", "stale names")
        yield unknown_target_module.finding(
            f"target_modules names {listed}, which exist{'s' if one else ''} nowhere in "
            f"{ctx.base.name} ({ctx.base.architecture}), and the file has no tensors for {it}: {what}. PEFT "
            f"ignored {it} when training and ignores {it} again when loading; the adapter works through the "
            f"targets that match ({', '.join(matched)}).",
            fix=f"Remove {listed} from target_modules; nothing else needs to change.",
            severity=Severity.WARNING,
            targets=shown,
            stale=True,
            matched=matched,
        )
    hard = [t for t in unknown if t not in stale]
    for target in hard[:MAX_LISTED]:
        tensors = held[target]
        where = f"; the file holds tensors for it (e.g. {tensors[0]})" if tensors else ""
        none = "" if matched else "; no target matches any module, so PEFT raises"
        yield unknown_target_module.finding(
            f"target module {target!r} exists nowhere in {ctx.base.name} ({ctx.base.architecture}){where}{none}; "
            f"its modules are {', '.join(leafs[:12])}.",
            fix="Use the base the adapter was trained for.",
            target=target,
            stale=False,
            tensors=len(tensors),
        )
    if len(hard) > MAX_LISTED:
        rest = hard[MAX_LISTED:]
        yield unknown_target_module.finding(
            f"{len(rest):,} more target module names exist nowhere in {ctx.base.name} "
            f"(e.g. {', '.join(repr(t) for t in rest[:3])}); its modules are {', '.join(leafs[:12])}.",
            fix="Use the base the adapter was trained for.",
            targets=len(rest),
            examples=rest[:10],
        )


@rule(
    "LG205",
    "untargeted-tensors",
    "declared-target-missing",
    Severity.WARNING,
    "Tensors for modules target_modules does not name",
)
def untargeted_tensors(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: every LoRA tensor belongs to a module the config targets (PEFT's matching
    rule, including `layers_to_transform`).

    Why it matters: PEFT creates LoRA layers only for targeted modules; tensors for the others are
    unexpected keys and are dropped without a word, so part of the trained adapter never runs.

    How to fix: restore the target_modules the adapter was trained with.
    """
    cfg = ctx.config
    if cfg is None or not cfg.is_lora or not ctx.lora or cfg.target_modules is None or is_all_linear(cfg):
        return
    stray = sorted(m for m in ctx.by_module if not matches_target(cfg, _strip_prefixes(m)))
    if stray:
        kinds = sorted({m.rsplit(".", 1)[-1] for m in stray})
        yield untargeted_tensors.finding(
            f"{len(stray)} module(s) carry LoRA tensors but are not in target_modules "
            f"({', '.join(kinds)}; e.g. {stray[0]}): PEFT drops them.",
            fix="Restore the target_modules the adapter was trained with.",
            modules=len(stray),
            kinds=kinds,
            examples=stray[:3],
        )


@rule(
    "LG206",
    "invalid-config-value",
    "unreadable",
    Severity.ERROR,
    "Config values PEFT cannot use: wrong types, bad or runaway regexes",
)
def invalid_config_value(ctx: CheckContext) -> Iterator[Finding]:
    """What it checks: each field of `adapter_config.json` has the type and range PEFT needs (`r` a
    positive integer, not `"8"`, `8.5`, `true` or `[8]`; `lora_alpha` a finite number; `rank_pattern`
    ranks positive integers; `target_modules` a string or a list of strings; `bias` one of none / all /
    lora_only...), that no two fields contradict each other as PEFT refuses, and that every regular
    expression (`target_modules` as a string, `exclude_modules`, `layers_pattern`, `modules_to_save`,
    the keys of `rank_pattern` / `alpha_pattern`) compiles with Python's `re` and matches the base's
    module names within loraguard's time limit.

    Why it matters: PEFT reads the config without checking types, then fails with a TypeError, a
    `re.error` or a ValueError only after the base model is loaded, or hangs: a regex such as
    `(.*a){30}` backtracks for minutes on every module name. Rules that need an unusable pattern are
    skipped, and this finding says why.

    How to fix: restore the value PEFT wrote (an integer `r`, a number `lora_alpha`, valid regexes).
    """
    cfg = ctx.config
    if cfg is None:
        return
    if cfg.is_lora and ctx.base is not None:
        _exercise_patterns(ctx)
    for problem in config_problems(cfg):
        peft_fails = getattr(problem, "peft_fails", True)
        yield invalid_config_value.finding(
            problem.message,
            fix="Restore the value PEFT wrote when the adapter was saved."
            if peft_fails
            else "Simplify the pattern; the rules that need it were skipped.",
            severity=None if peft_fails else Severity.WARNING,
            field=problem.field,
        )


def _exercise_patterns(ctx: CheckContext) -> None:
    """Match each of the config's patterns against the base's module names (and the adapter's modules for
    rank/alpha patterns), as PEFT does when loading; the engine records every pattern that fails."""
    cfg, base = ctx.config, ctx.base
    assert cfg is not None and base is not None
    engine = cfg.patterns
    names = sorted(base.all_names)
    jobs: list[tuple[str, str, str, bool]] = []  # field, pattern, regex PEFT builds, fullmatch?
    for field, value in (("target_modules", cfg.target_modules), ("exclude_modules", cfg.exclude_modules)):
        if isinstance(value, str) and value.lower() != "all-linear":
            jobs.append((field, value, value, True))
    jobs += [("modules_to_save", m, saved_regex(m), False) for m in cfg.modules_to_save if not is_literal(m)]
    jobs += [("layers_pattern", p, layer_regex(p), False) for p in cfg.layers_pattern or () if p]
    for field, pattern, full, whole in jobs:
        run = engine.fullmatch if whole else engine.match
        with contextlib.suppress(ConfigPatternError):
            for name in names:
                run(field, pattern, full, name)
    modules = [*ctx.by_module, *names]
    for field, patterns in (("rank_pattern", cfg.rank_pattern), ("alpha_pattern", cfg.alpha_pattern)):
        keys = PatternKeys(patterns, engine, field)
        if not keys.has_regex:
            continue
        with contextlib.suppress(ConfigPatternError):
            for module in modules:
                keys.key_for(module)


def _strip_prefixes(module: str) -> str:
    while module.startswith("base_model.model."):
        module = module[len("base_model.model.") :]
    return module
