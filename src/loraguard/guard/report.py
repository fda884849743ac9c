"""`LoadReport`: the frozen result of a guarded load, and its JSON form (`loraguard.load/1`).

Its text and HTML forms (a REPL, a notebook) are registered by `loraguard.guard.render`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from loraguard.checks.report import CheckReport
from loraguard.display import renderable
from loraguard.findings import Finding, FindingsView, Severity, Verdict
from loraguard.probe.context import ProbeContext
from loraguard.probe.load import LoadOutcome

__all__ = ["LOAD_SCHEMA", "LoadReport"]

LOAD_SCHEMA = "loraguard.load/1"


@renderable
@dataclass(frozen=True)
class LoadReport(FindingsView):
    """What `loraguard.guard.guarded_load` found: the static check against the live model, what PEFT
    did (`outcome`), the canary's measurements, and whether the adapter is on the model (`loaded`)."""

    verdict: Verdict
    adapter: str
    """The adapter as given (a folder or a Hub id)."""
    folder: str | None
    adapter_name: str
    base: str
    """The live model's identity (its Hub id or the `_name_or_path` of the folder it was loaded from)."""
    loaded: bool
    """True when `model` holds the adapter; False when it was refused (the model passed in is untouched)."""
    findings: tuple[Finding, ...]
    check: CheckReport
    outcome: LoadOutcome | None = None
    """None when PEFT was never called (refused after the static check)."""
    canary: ProbeContext | None = None
    strict: bool = False
    """Warnings counted as errors when deciding (`blocking`)."""
    timing_ms: float = 0.0
    model: Any = field(default=None, repr=False, compare=False)
    """The `PeftModel` holding the adapter, or None when `loaded` is False."""

    @property
    def blocking(self) -> tuple[Finding, ...]:
        """The findings that refuse the adapter: its errors, and with `strict` its warnings too."""
        worst = Severity.WARNING if self.strict else Severity.ERROR
        return tuple(f for f in self.findings if f.severity.rank >= worst.rank)

    def to_dict(self) -> dict[str, Any]:
        canary = self.canary
        return _finite(
            {
                "schema": LOAD_SCHEMA,
                "verdict": self.verdict.value,
                "adapter": self.adapter,
                "folder": self.folder,
                "adapter_name": self.adapter_name,
                "base": self.base,
                "loaded": self.loaded,
                "strict": self.strict,
                "findings": [f.to_dict() for f in self.findings],
                "check": {
                    "verdict": self.check.verdict.value,
                    "errors": len(self.check.errors),
                    "warnings": len(self.check.warnings),
                },
                "peft": None
                if self.outcome is None
                else {
                    "error": self.outcome.error,
                    "missing_keys": list(self.outcome.missing_keys),
                    "unexpected_keys": list(self.outcome.unexpected_keys),
                    "targeted_modules": len(self.outcome.targeted),
                    "unmatched_targets": list(self.outcome.unmatched_targets),
                },
                "canary": None
                if canary is None
                else {
                    "rows": list(canary.row_ids),
                    "adapted": canary.adapted_stats.to_dict(),
                    "base": canary.base_stats.to_dict(),
                    "effect": canary.effect.to_dict(),
                },
                "timing_ms": round(self.timing_ms, 1),
            }
        )


def _finite(value: Any) -> Any:
    """NaN and Inf become null (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
