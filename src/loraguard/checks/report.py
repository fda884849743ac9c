"""The frozen result of `check`, and its JSON form (schema `loraguard.check/1`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loraguard.basemodel.spec import InferredBase
from loraguard.display import renderable
from loraguard.findings import Finding, FindingsView, Verdict
from loraguard.textsafe import json_safe

CHECK_SCHEMA = "loraguard.check/1"


@dataclass(frozen=True)
class ModuleNorm:
    """Weight norm of one adapted module: ‖B‖_F·‖A‖_F, an upper bound of ‖B·A‖_F."""

    module: str
    layer: int | None
    relative: str
    norm: float
    zero: bool
    non_finite: bool


@renderable
@dataclass(frozen=True)
class CheckReport(FindingsView):
    """What `loraguard check` found. `verdict` is `fail` with any error, `warn` with any warning."""

    verdict: Verdict
    adapter: Mapping[str, Any]
    base: Mapping[str, Any] | None
    findings: tuple[Finding, ...]
    inferred_bases: tuple[InferredBase, ...] = ()
    timing_ms: float = 0.0
    module_norms: tuple[ModuleNorm, ...] = field(default=(), repr=False)
    engines: tuple[str, ...] = ("peft",)
    """Engines checked (`--engine`): `peft` alone adds nothing; others add their LG7xx findings."""

    def exit_code(self, *, strict: bool = False) -> int:
        """0 without errors (with `strict`: without warnings either), else 1."""
        if self.errors or (strict and self.warnings):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": CHECK_SCHEMA,
            "verdict": self.verdict.value,
            "adapter": dict(self.adapter),
            "base": dict(self.base) if self.base is not None else None,
            "engines": list(self.engines),
            "findings": [f.to_dict() for f in self.findings],
            "inferred_bases": [b.to_dict() for b in self.inferred_bases],
            "timing_ms": round(self.timing_ms, 2),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(json_safe(self.to_dict()), indent=indent, ensure_ascii=False)
