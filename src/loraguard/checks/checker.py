"""`check(adapter, base)`: read the adapter, resolve the base, run every rule, return a report."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from loraguard.adapter.card import card_base_model
from loraguard.adapter.reader import AdapterData, read_adapter
from loraguard.basemodel.infer import infer_bases
from loraguard.basemodel.resolve import normalize_model_name, resolve_base, resolve_claimed_base
from loraguard.basemodel.spec import BaseSpec, InferredBase
from loraguard.checks.context import CheckContext
from loraguard.checks.norms import module_norms
from loraguard.checks.report import CheckReport
from loraguard.checks.rules import select_rules
from loraguard.engines import EngineOptions, normalize_engines
from loraguard.errors import ConfigPatternError, LoraguardError
from loraguard.findings import Finding, sort_findings, verdict_of

__all__ = ["check", "engine_findings"]

_TASKS = {"CAUSAL_LM", "SEQ_CLS", "SEQ_2_SEQ_LM", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"}


def check(
    adapter: str | Path,
    base: str | Path | BaseSpec | None = None,
    *,
    task: str | None = None,
    select: Iterable[str] = (),
    ignore: Iterable[str] = (),
    scan_values: bool = True,
    norms: bool = False,
    engines: str | Iterable[str] = ("peft",),
    max_lora_rank: int | None = None,
    lora_target_modules: str | Iterable[str] | None = None,
) -> CheckReport:
    """Check `adapter` (folder, weights file or Hub id) against `base` (folder, catalog name, Hub id).

    Without `base`, the adapter's claimed base (the config's, else its model card's) is looked up in
    the catalog, local folders and the local Hub cache (no network); when none resolves, LG507 says
    what was not checked. `select`/`ignore` take rule-code prefixes (`LG3`, `LG401`). `norms=True` adds
    per-module weight norms (for the HTML heatmap). `engines` (`peft`, `vllm`, `sglang`, `lorax`)
    adds the LG7xx rules of those serving engines, given their `--max-lora-rank` and
    `--lora-target-modules` (`"o_proj,qkv_proj"` or a list). Never raises for a bad adapter or base:
    those become `unreadable` findings (an unknown engine name raises `InputError`).
    """
    started = time.perf_counter()
    engine_names = normalize_engines(engines)
    options = EngineOptions(max_lora_rank, EngineOptions.parse_targets(lora_target_modules))
    data = read_adapter(adapter, scan_values=scan_values, norms=norms)
    task = task or _task_of(data)
    spec, base_problem, claimed = _resolve(data, base, task)
    ctx = CheckContext(
        data,
        spec,
        base_given=base is not None,
        base_problem=base_problem,
        claimed=claimed,
        engines=engine_names,
        engine_options=options,
    )
    ctx.inferred = _inferred(ctx, spec) if ctx.signature else ()
    findings: list[Finding] = []
    for rule in select_rules(select, ignore):  # never LG6xx: they need a model, `loraguard probe` runs them
        try:
            findings.extend(list(rule.func(ctx)))
        except ConfigPatternError:  # a config regex PEFT cannot use: LG206 reports it, the rule is moot
            continue
    ordered = sort_findings(findings)
    return CheckReport(
        verdict=verdict_of(ordered),
        adapter=_adapter_summary(data, ctx),
        base=_base_summary(spec, base is not None) if spec is not None else None,
        findings=ordered,
        inferred_bases=ctx.inferred[:10],
        timing_ms=(time.perf_counter() - started) * 1000,
        module_norms=module_norms(ctx) if norms else (),
        engines=engine_names,
    )


def engine_findings(
    ctx: CheckContext, engines: str | Iterable[str], options: EngineOptions | None = None
) -> list[Finding]:
    """The LG7xx findings for `engines` on an existing context (the context itself is left unchanged)."""
    view = copy.copy(ctx)
    view.engines = normalize_engines(engines)
    view.engine_options = options if options is not None else EngineOptions()
    return [finding for r in select_rules(["LG7"]) for finding in r.func(view)]


def _inferred(ctx: CheckContext, spec: BaseSpec | None) -> tuple[InferredBase, ...]:
    """Catalog models the tensors fit; the given or claimed base first when it is among them."""
    fits = infer_bases(ctx.signature, max_layer_index=ctx.max_layer_index)
    preferred = {
        normalize_model_name(n)
        for n in (spec.name if spec else None, ctx.config.base_model if ctx.config else None)
        if n
    }
    return tuple(sorted(fits, key=lambda b: normalize_model_name(b.name) not in preferred))


def _task_of(data: AdapterData) -> str | None:
    """The adapter's task_type; None when the config sets none (PEFT's "no task": the base's class is the
    one its `architectures` names, so a head saved through modules_to_save has its module there)."""
    if data.config is None:
        return "CAUSAL_LM"
    task = data.config.task_type
    if task is None and data.config.is_lora:
        return None
    return task if task in _TASKS else "CAUSAL_LM"


def _resolve(
    data: AdapterData, base: str | Path | BaseSpec | None, task: str | None
) -> tuple[BaseSpec | None, str | None, BaseSpec | None]:
    # The config's claim, then the model card's base_model (when the config names none, or names a
    # local path or a model that cannot be resolved offline).
    claims = [
        c for c in (data.config.base_model if data.config is not None else None, card_base_model(data.folder)) if c
    ]
    spec: BaseSpec | None = None
    problem = None
    if isinstance(base, BaseSpec):
        spec = base
    elif base is not None:
        try:
            spec = resolve_base(base, task=task)
        except LoraguardError as exc:
            problem = f"base {base}: {exc}"
    claimed = None
    for claim in dict.fromkeys(claims):
        try:
            claimed = resolve_claimed_base(claim, task=task)
        except LoraguardError:
            claimed = None
        if claimed is not None:
            break
    if base is None:
        spec = claimed
    return spec, problem, claimed


def _adapter_summary(data: AdapterData, ctx: CheckContext) -> dict[str, Any]:
    cfg = data.config
    ranks = sorted({t.shape[0] for t in ctx.lora if t.part in ("lora_A", "lora_embedding_A") and t.shape})
    return {
        "ref": data.ref,
        "name": data.name,
        "repo_id": data.repo_id,
        "weights": str(data.weights_path) if data.weights_path else None,
        "format": data.weights_format,
        "size_bytes": data.size_bytes,
        "peft_type": cfg.peft_type if cfg else None,
        "task_type": cfg.task_type if cfg else None,
        "claimed_base": cfg.base_model if cfg else None,
        "r": cfg.r if cfg else None,
        "tensor_ranks": ranks,
        "target_modules": cfg.target_modules if cfg else None,
        "tensors": len(data.tensors),
        "lora_modules": len(ctx.by_module),
        "dtypes": sorted({t.dtype for t in data.tensors}),
    }


def _base_summary(spec: BaseSpec, given: bool) -> dict[str, Any]:
    return {
        "name": spec.name,
        "given": given,
        "model_type": spec.model_type,
        "architecture": spec.architecture,
        "num_layers": spec.num_layers,
        "hidden_size": spec.hidden_size,
        "vocab_size": spec.vocab_size,
        "params_b": round(spec.param_count / 1e9, 3),
        "source": spec.source,
        "path": spec.path,
    }
