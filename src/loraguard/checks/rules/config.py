"""LG2xx: the adapter's config, and the config against its own tensors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from loraguard.adapter.peft_fields import known_lora_fields
from loraguard.checks.context import CheckContext
from loraguard.checks.targets import all_names, is_all_linear, matches_target, pattern_key
from loraguard.codes import rule
from loraguard.findings import Finding, Severity


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
    bad: Counter[tuple[int, int]] = Counter()
    examples: list[str] = []
    for module, parts in ctx.by_module.items():
        a = parts.get("lora_A") or parts.get("lora_embedding_A")
        b = parts.get("lora_B") or parts.get("lora_embedding_B")
        key = pattern_key(patterns, module)
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
    missing = []
    for target in targets:
        matched = {n for n in ctx.base.modules if matches_target(cfg, n) and (n == target or n.endswith("." + target))}
        if matched and not matched & present:
            missing.append(target)
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
    names = all_names(ctx.base.modules)
    targets = cfg.target_modules
    if isinstance(targets, str):
        import re

        if not any(re.fullmatch(targets, n) for n in names):
            yield unknown_target_module.finding(
                f"target_modules regex {targets!r} matches no module of {ctx.base.name}.",
                fix="Use the base the adapter was trained for.",
                target=targets,
            )
        return
    unknown = [t for t in targets or [] if not any(n == t or n.endswith("." + t) for n in names)]
    if not unknown:
        return
    leafs = sorted({n.rsplit(".", 1)[-1] for n in ctx.base.modules})
    matched = sorted({n.rsplit(".", 1)[-1] for n in ctx.targeted_modules() if n in ctx.base.modules})
    held = {t: sorted(m for m in ctx.by_module if m == t or m.endswith("." + t)) for t in unknown}
    stale = [t for t in unknown if matched and not held[t]]
    if stale:
        listed = ", ".join(map(repr, stale))
        one = len(stale) == 1
        it, what = ("it", "a stale name") if one else ("them", "stale names")
        yield unknown_target_module.finding(
            f"target_modules names {listed}, which exist{'s' if one else ''} nowhere in "
            f"{ctx.base.name} ({ctx.base.architecture}), and the file has no tensors for {it}: {what}. PEFT "
            f"ignored {it} when training and ignores {it} again when loading; the adapter works through the "
            f"targets that match ({', '.join(matched)}).",
            fix=f"Remove {listed} from target_modules; nothing else needs to change.",
            severity=Severity.WARNING,
            targets=stale,
            stale=True,
            matched=matched,
        )
    for target in unknown:
        if target in stale:
            continue
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


def _strip_prefixes(module: str) -> str:
    while module.startswith("base_model.model."):
        module = module[len("base_model.model.") :]
    return module
