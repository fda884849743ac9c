"""The frozen result of `probe`, its differential verdict, and its JSON form (`loraguard.probe/1`)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loraguard.checks.report import CheckReport
from loraguard.display import renderable
from loraguard.findings import Finding, FindingsView, Severity, Verdict
from loraguard.probe.context import BatchCheck, Effect, PredictionStats, ProbeContext
from loraguard.textsafe import json_safe

__all__ = ["BLAME_ADAPTER", "BLAME_BASE_OR_PROMPT", "PROBE_SCHEMA", "ProbeReport", "differential"]

PROBE_SCHEMA = "loraguard.probe/1"
BLAME_ADAPTER = "adapter"
BLAME_BASE_OR_PROMPT = "base-or-prompt"


def differential(ctx: ProbeContext, findings: Sequence[Finding]) -> tuple[str | None, str]:
    """(blame, the verdict in words) from comparing the adapted and the bare base model.

    One verdict: when the bare base's predictions are degenerate, LG601 is inconclusive (a warning)
    and the base or prompt is blamed, never the adapter for having no effect."""
    errors = {f.category for f in findings if f.severity is Severity.ERROR}
    if "no-effect" in errors:
        return BLAME_ADAPTER, (
            "no effect: the outputs are the same with and without the adapter: the adapter "
            "is the problem (zero weights, keys or layers PEFT silently skipped, or the "
            "wrong base)"
        )
    if "non-finite-output" in errors:
        if ctx.base.nonfinite_rows:
            return BLAME_BASE_OR_PROMPT, (
                "NaN/Inf with and without the adapter: the base model or its dtype is the problem"
            )
        return BLAME_ADAPTER, "NaN/Inf only with the adapter: the adapter is the problem"
    inconclusive = any(f.category == "no-effect" and f.evidence.get("inconclusive") for f in findings)
    note = "; whether the adapter has an effect cannot be judged on these rows" if inconclusive else ""
    if "degenerate-output" in errors or inconclusive:
        if ctx.degenerate(ctx.base) is not None:
            return BLAME_BASE_OR_PROMPT, (
                f"degenerate with and without the adapter: the prompt or method is the problem{note}"
            )
        return BLAME_ADAPTER, "degenerate only with the adapter: the adapter is the problem"
    if "parse-failure" in errors:
        if ctx.base.parse_failure_share > ctx.thresholds.parse_error_share:
            return BLAME_BASE_OR_PROMPT, (
                "unparseable answers with and without the adapter: the prompt or method is the problem"
            )
        return BLAME_ADAPTER, "unparseable answers only with the adapter: the adapter is the problem"
    if "batch-inconsistency" in errors:
        return None, (
            "one row at a time the outputs are fine, batched they are not: the padding path (model "
            "or scorer) is the problem"
        )
    effect = ctx.effect
    kl = f"mean KL {effect.mean_kl:.3g}" if effect.mean_kl is not None else "an effect"
    return None, f"healthy: the adapter changes the outputs ({kl}) and they stay spread"


@renderable
@dataclass(frozen=True)
class ProbeReport(FindingsView):
    """What `loraguard probe` found. `findings` holds the static check's findings and the LG6xx ones."""

    verdict: Verdict
    adapter: str
    base: str
    method: str
    template: str
    data: str
    """`builtin` or the CSV's path."""
    samples: int
    findings: tuple[Finding, ...]
    check: CheckReport
    """The static check run first."""
    stopped: bool
    """True when the probe stopped after the static check's errors (no `--force`)."""
    blame: str | None
    """`adapter`, `base-or-prompt` or None (nothing to blame, or the probe did not run)."""
    differential: str
    """The verdict in words."""
    context: ProbeContext | None = None
    timing_ms: float = 0.0
    dtype: str | None = None
    """The dtype the model ran in (`bfloat16`, `float32`...), with why when `--dtype auto` chose it."""

    @property
    def stats(self) -> dict[str, PredictionStats] | None:
        if self.context is None:
            return None
        return {"adapted": self.context.adapted_stats, "base": self.context.base_stats}

    @property
    def effect(self) -> Effect | None:
        return self.context.effect if self.context is not None else None

    @property
    def batch(self) -> BatchCheck | None:
        return self.context.batch if self.context is not None else None

    def exit_code(self) -> int:
        """0 without errors, else 1."""
        return 1 if self.errors else 0

    def to_dict(self) -> dict[str, Any]:
        ctx = self.context
        stats = self.stats
        return _finite(
            {
                "schema": PROBE_SCHEMA,
                "verdict": self.verdict.value,
                "adapter": self.adapter,
                "base": self.base,
                "method": self.method,
                "template": self.template,
                "dtype": self.dtype,
                "data": self.data,
                "samples": self.samples,
                "stopped": self.stopped,
                "check": {
                    "verdict": self.check.verdict.value,
                    "errors": len(self.check.errors),
                    "warnings": len(self.check.warnings),
                },
                "findings": [f.to_dict() for f in self.findings],
                "stats": {k: v.to_dict() for k, v in stats.items()} if stats is not None else None,
                "effect": ctx.effect.to_dict() if ctx is not None else None,
                "batch": ctx.batch.to_dict() if ctx is not None and ctx.batch is not None else None,
                "blame": self.blame,
                "differential": self.differential,
                "predictions": [
                    {"row_id": rid, "adapted": float(a), "base": float(b)}
                    for rid, a, b in zip(ctx.row_ids, ctx.adapted.probabilities, ctx.base.probabilities, strict=True)
                ]
                if ctx is not None
                else [],
                "thresholds": ctx.thresholds.to_dict() if ctx is not None else None,
                "timing_ms": round(self.timing_ms, 1),
            }
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(json_safe(self.to_dict()), indent=indent, ensure_ascii=False, allow_nan=False)


def _finite(value: Any) -> Any:
    """NaN and Inf become null (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
