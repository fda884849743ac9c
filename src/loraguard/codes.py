"""The one table of rules: code, name, category, severity, title and the function that checks it.

Codes are families by what a rule reads: LG1xx the adapter files, LG2xx its config, LG3xx its
structure against the base, LG4xx tensor values, LG5xx identity and provenance, LG6xx the dynamic
probe, LG7xx serving engines, LG8xx the guarded load (`loraguard.load_adapter`: what PEFT did on the
user's model). Codes are never reused or renumbered.

Rule modules import this table and register into it with `@rule(...)`; the table imports no rule.
Whoever needs a set of rules imports the modules that register them: the static check's rules
(LG1xx-LG5xx, LG7xx) are `loraguard.checks.rules.select_rules()`, every rule (with the probe's
LG6xx) is `loraguard.probe.rules.all_rules()`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from loraguard.findings import Finding, Severity

Ctx = TypeVar("Ctx")
"""What a rule reads: a `CheckContext` for the static rules, a `ProbeContext` for the probe's."""

CATEGORIES: dict[str, str] = {
    "shape-mismatch": "a tensor does not fit the base module it maps to",
    "layer-mismatch": "layer indices the base lacks, or fewer layers than the base without layers_to_transform",
    "prefix-mismatch": "tensor keys map to no module of the base",
    "unknown-target-module": "target module names that exist nowhere in the base",
    "declared-target-missing": "target_modules names modules that have no tensors in the file",
    "rank-mismatch": "r / rank_pattern disagree with the tensors' ranks",
    "zero-adapter": "the adapter is a no-op (zero, empty or absent LoRA tensors), or its LoRA matrices are",
    "non-finite-weights": "NaN or Inf in a tensor",
    "vocab-mismatch": "embeddings or lm_head with another vocabulary size",
    "task-head": "a classification head present or absent against task_type",
    "unknown-config-field": "config keys the installed PEFT does not know",
    "claimed-base-mismatch": "the config's claimed base contradicts the tensors or names another model",
    "base-version-mismatch": "same shapes, other model (version or base vs Instruct)",
    "quantization-variant": "the claimed base is a quantized variant of the given base, or the reverse",
    "name-hint-conflict": "size tokens in names contradict the base's size",
    "provenance": "what training evidence exists beside the adapter",
    "base-unchecked": "no base to check against: shapes, layers, prefixes and target names went unchecked",
    "base-not-portable": "the config names its base by a local path no one else can resolve",
    "unsafe-pickle": "a pickle referencing anything but tensor storage",
    "unreadable": "missing, empty, invalid or truncated input",
    "engine-incompatible": "a serving engine (--engine) will refuse the adapter, with the engine's own error",
    "engine-silent-noop": "a serving engine will accept the adapter and apply it to nothing or to part of it",
    "no-effect": "probe: the adapter does not change the model's output, or not its answer",
    "degenerate-output": "probe: constant or nearly constant predictions with the adapter",
    "low-spread": "probe: predictions squeezed into a narrow or low band (a hint)",
    "batch-inconsistency": "probe: batched predictions differ from one row at a time (padding bugs)",
    "non-finite-output": "probe: NaN or Inf logits or predictions with the adapter",
    "parse-failure": "probe: generated answers no parser stage can read",
    "answer-mass": "probe: the answer tokens get almost none of the probability mass",
    "load-failed": "guarded load: PEFT raised while loading the adapter onto the model (the model is left as it was)",
    "live-model-differs": "guarded load: the live model's modules differ from what its config describes",
}
PROBE_FAMILY = "LG6"
"""The dynamic probe's code family: its rules need a model, so the static check never runs them."""
LOAD_FAMILY = "LG8"
"""The guarded load's code family: its rules read what PEFT did on a live model (`probe/load.py`)."""

_CODE = re.compile(r"^LG[1-9]\d\d$")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Rule(Generic[Ctx]):
    """A registered check. Its docstring (What it checks / Why it matters / How to fix) is its doc page."""

    code: str
    name: str
    category: str
    severity: Severity
    title: str
    func: Callable[[Ctx], Iterable[Finding]]

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.func.__doc__ or "")

    def finding(self, message: str, *, fix: str = "", severity: Severity | None = None, **evidence: object) -> Finding:
        """A finding of this rule (severity defaults to the rule's)."""
        return Finding(self.code, self.category, severity or self.severity, message, fix, evidence)


RULES: dict[str, Rule[Any]] = {}
"""Every registered rule by code (rules register when their module is imported)."""


def rule(
    code: str, name: str, category: str, severity: Severity, title: str
) -> Callable[[Callable[[Ctx], Iterable[Finding]]], Rule[Ctx]]:
    """Register a check function under a stable code; rejects malformed or duplicate codes."""

    def register(func: Callable[[Ctx], Iterable[Finding]]) -> Rule[Ctx]:
        if not _CODE.match(code):
            raise ValueError(f"rule code {code!r} must look like LG123")
        if code in RULES or any(r.name == name for r in RULES.values()):
            raise ValueError(f"rule {code} {name!r} registered twice")
        if not _NAME.match(name) or category not in CATEGORIES:
            raise ValueError(f"rule {code}: bad name {name!r} or unknown category {category!r}")
        registered = Rule(code, name, category, severity, title, func)
        RULES[code] = registered
        return registered

    return register


def by_prefix(rules: Iterable[Rule[Ctx]], select: Iterable[str] = (), ignore: Iterable[str] = ()) -> list[Rule[Ctx]]:
    """`rules` whose code starts with a `select` prefix (all when empty) and no `ignore` prefix, by code."""
    sel, ign = tuple(select), tuple(ignore)
    return sorted(
        (r for r in rules if (not sel or r.code.startswith(sel)) and not (ign and r.code.startswith(ign))),
        key=lambda r: r.code,
    )
