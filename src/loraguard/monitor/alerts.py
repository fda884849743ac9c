"""The distribution rules: one table of small functions over a `MonitorSummary`, each with a name,
default severity, title and thresholds, and the alerts they raise.

A rule function gets a `MonitorSummary`, its thresholds and (for `drift`) the `DriftStats`, and
returns `(message, evidence)` when it fires. Thresholds and severities are overridden per rule in a
policy file's `[monitor.<rule>]` table (`loraguard.monitor.policy`, docs/policy.md).

The conditions behind the shape rules (`degenerate_reason`, `is_low_spread`, `is_skewed`,
`has_no_positives`) are public: `score`, `probe`, `gate` and `ensemble` decide "degenerate" with
these same functions over the same summary, passing their own thresholds where they document others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import numpy.typing as npt

from loraguard.findings import Severity
from loraguard.monitor.drift import DriftStats, ReferenceLike, drift_stats
from loraguard.monitor.summary import MonitorSummary, jsonable

__all__ = [
    "RULES",
    "Alert",
    "AlertRule",
    "RulePolicy",
    "RuleSettings",
    "default_settings",
    "degenerate_reason",
    "evaluate",
    "has_no_positives",
    "is_low_spread",
    "is_skewed",
    "rule",
]

Fired = tuple[str, dict[str, Any]] | None
CheckFn = Callable[[MonitorSummary, Mapping[str, float], DriftStats | None], Fired]


@dataclass(frozen=True)
class Alert:
    """One fired rule, with the numbers that triggered it."""

    rule: str
    severity: Severity
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    segment: str | None = None
    """The segment (e.g. the rule text) the alert is about; None for the whole stream."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (`rule`, `severity`, `segment`, `message`, `evidence`)."""
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "segment": self.segment,
            "message": self.message,
            "evidence": jsonable(self.evidence),
        }


@dataclass(frozen=True)
class AlertRule:
    """A registered rule: `check` returns `(message, evidence)` when the rule fires."""

    name: str
    severity: Severity
    title: str
    thresholds: Mapping[str, float]
    check: CheckFn
    needs_reference: bool = False


@dataclass(frozen=True)
class RuleSettings:
    """How one alert rule runs (a policy's `[monitor.<rule>]` table applied over the defaults)."""

    enabled: bool
    severity: Severity
    thresholds: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of these settings."""
        return {"enabled": self.enabled, "severity": self.severity.value, **self.thresholds}


class RulePolicy(Protocol):
    """What `evaluate` reads from a policy (`loraguard.monitor.policy.Policy` is one)."""

    @property
    def monitor(self) -> Mapping[str, RuleSettings]:
        """Settings per rule name, one for every rule in `RULES`."""
        ...


RULES: dict[str, AlertRule] = {}


def rule(
    name: str, severity: Severity, title: str, *, needs_reference: bool = False, **thresholds: float
) -> Callable[[CheckFn], CheckFn]:
    """Register a rule function in `RULES` (names are kebab-case and unique)."""

    def register(fn: CheckFn) -> CheckFn:
        """Add `fn` to `RULES` under the decorator's name and settings."""
        if name in RULES or not name.replace("-", "").isalpha() or name != name.lower():
            raise ValueError(f"bad or duplicate alert rule name {name!r}")
        RULES[name] = AlertRule(name, severity, title, MappingProxyType(thresholds), fn, needs_reference)
        return fn

    return register


def default_settings() -> dict[str, RuleSettings]:
    """Every rule enabled, with its registered severity and thresholds (the default policy's `monitor`)."""
    return {
        name: RuleSettings(True, spec.severity, MappingProxyType(dict(spec.thresholds))) for name, spec in RULES.items()
    }


def degenerate_reason(
    s: MonitorSummary,
    *,
    min_samples: float,
    std_below: float,
    distinct_at_most: float,
    std_min_samples: float | None = None,
) -> str | None:
    """Why the predictions are degenerate (constant or nearly so), or None when they are not.

    Degenerate: std < `std_below` over at least `std_min_samples` values (default `min_samples`), or at
    most `distinct_at_most` distinct values (rounded to the summary's resolution, 1e-6 by default) over
    at least `min_samples` values. Only values in the statistics count (parsed, finite, in [0, 1]).
    """
    if s.std is None:
        return None
    if s.n >= (min_samples if std_min_samples is None else std_min_samples) and s.std < std_below:
        return f"std {s.std:.3g} < {std_below:g}"
    if s.n >= min_samples and s.distinct_exact and s.distinct <= distinct_at_most:
        return f"only {s.distinct} distinct value(s) over {s.n} rows"
    return None


def is_low_spread(s: MonitorSummary, *, min_samples: float, std_below: float) -> bool:
    """At least `min_samples` values and a standard deviation below `std_below`."""
    return s.n >= min_samples and s.std is not None and s.std < std_below


def is_skewed(s: MonitorSummary, *, min_samples: float, mean_below: float, mean_above: float) -> bool:
    """At least `min_samples` values and a mean outside [`mean_below`, `mean_above`]."""
    return s.n >= min_samples and s.mean is not None and not mean_below <= s.mean <= mean_above


def has_no_positives(s: MonitorSummary, *, min_samples: float, max_below: float) -> bool:
    """At least `min_samples` values and a maximum below `max_below`."""
    return s.n >= min_samples and s.max is not None and s.max < max_below


@rule(
    "degenerate",
    Severity.ERROR,
    "constant or nearly constant predictions",
    min_samples=8,
    std_below=1e-3,
    distinct_at_most=2,
)
def _degenerate(s: MonitorSummary, t: Mapping[str, float], _: DriftStats | None) -> Fired:
    if degenerate_reason(s, **t) is None:
        return None
    return (
        f"predictions are degenerate: {s.distinct}{'' if s.distinct_exact else '+'} distinct value(s), "
        f"std {s.std:.3g} over {s.n} predictions in [{s.min:.6g}, {s.max:.6g}]; "
        "a probability this flat carries no ranking (check the adapter's base model and scoring)",
        {
            "n": s.n,
            "std": s.std,
            "distinct": s.distinct,
            "distinct_exact": s.distinct_exact,
            "min": s.min,
            "max": s.max,
            **t,
        },
    )


@rule("stuck", Severity.ERROR, "one value dominates the predictions", min_samples=8, share_at_least=0.5)
def _stuck(s: MonitorSummary, t: Mapping[str, float], _: DriftStats | None) -> Fired:
    share = s.top_share
    if s.n < t["min_samples"] or share is None or s.top_value is None or share < t["share_at_least"]:
        return None
    return (
        f"{share:.1%} of {s.n} predictions are exactly {s.top_value:.6g} "
        f"(at least {t['share_at_least']:.0%} fires this rule)",
        {
            "n": s.n,
            "top_value": s.top_value,
            "top_count": s.top_count,
            "top_share": share,
            "top_count_error": s.top_count_error,
            **t,
        },
    )


@rule("low-spread", Severity.WARNING, "predictions barely vary", min_samples=8, std_below=0.05)
def _low_spread(s: MonitorSummary, t: Mapping[str, float], _: DriftStats | None) -> Fired:
    if not is_low_spread(s, **t):
        return None
    return (
        f"standard deviation {s.std:.4f} is below {t['std_below']:g} over {s.n} predictions (mean {s.mean:.4f})",
        {"n": s.n, "std": s.std, "mean": s.mean, **t},
    )


@rule(
    "skew",
    Severity.WARNING,
    "mean prediction outside the expected band",
    min_samples=8,
    mean_below=0.05,
    mean_above=0.95,
)
def _skew(s: MonitorSummary, t: Mapping[str, float], _: DriftStats | None) -> Fired:
    if not is_skewed(s, **t):
        return None
    return (
        f"mean prediction {s.mean:.4f} is outside [{t['mean_below']:g}, {t['mean_above']:g}] over {s.n} predictions",
        {"n": s.n, "mean": s.mean, **t},
    )


@rule(
    "no-positives",
    Severity.WARNING,
    "no prediction reaches a positive-looking value",
    min_samples=8,
    max_below=0.3,
)
def _no_positives(s: MonitorSummary, t: Mapping[str, float], _: DriftStats | None) -> Fired:
    if not has_no_positives(s, **t):
        return None
    return (
        f"the highest of {s.n} predictions is {s.max:.4f}, below {t['max_below']:g}: nothing would ever be flagged",
        {"n": s.n, "max": s.max, **t},
    )


@rule(
    "parse-failure",
    Severity.ERROR,
    "too many model outputs could not be parsed",
    min_samples=1,
    share_above=0.05,
)
def _parse_failure(s: MonitorSummary, t: Mapping[str, float], _: DriftStats | None) -> Fired:
    ok = s.parse_success_share
    if s.n_seen < t["min_samples"] or ok is None or 1.0 - ok <= t["share_above"]:
        return None
    return (
        f"{s.n_unparsed} of {s.n_seen} outputs ({1.0 - ok:.1%}) could not be parsed "
        f"(more than {t['share_above']:.1%} fires this rule)",
        {"n_seen": s.n_seen, "n_unparsed": s.n_unparsed, "failure_share": 1.0 - ok, **t},
    )


@rule(
    "invalid-value",
    Severity.ERROR,
    "NaN, infinite or out-of-range probabilities",
    min_samples=1,
    share_above=0.0,
)
def _invalid(s: MonitorSummary, t: Mapping[str, float], _: DriftStats | None) -> Fired:
    share = s.invalid_share
    if s.n_seen < t["min_samples"] or share is None or share <= t["share_above"]:
        return None
    return (
        f"{s.n_invalid} parsed predictions ({share:.1%}) are NaN, infinite or outside [0, 1]",
        {"n_invalid": s.n_invalid, "invalid_share": share, **t},
    )


@rule(
    "drift",
    Severity.WARNING,
    "distribution moved away from the reference",
    needs_reference=True,
    min_samples=30,
    psi_at_least=0.2,
    ks_pvalue_below=0.05,
    ks_statistic_at_least=0.0,
)
def _drift(s: MonitorSummary, t: Mapping[str, float], d: DriftStats | None) -> Fired:
    if d is None or s.n < t["min_samples"]:
        return None
    by_psi = d.psi >= t["psi_at_least"]
    by_ks = d.ks_pvalue < t["ks_pvalue_below"] and d.ks_statistic >= t["ks_statistic_at_least"]
    if not (by_psi or by_ks):
        return None
    return (
        f"drift from the reference ({d.n_reference} values): PSI {d.psi:.3f} ({d.psi_band}), "
        f"KS D {d.ks_statistic:.3f} p {d.ks_pvalue:.2g} ({d.ks_method}), JS {d.js_distance:.3f}",
        {**d.to_dict(), "fired_by": [k for k, on in (("psi", by_psi), ("ks", by_ks)) if on], **t},
    )


def evaluate(
    summary: MonitorSummary,
    policy: RulePolicy | None = None,
    *,
    reference: ReferenceLike | None = None,
    current_values: npt.ArrayLike | None = None,
) -> tuple[Alert, ...]:
    """Alerts for `summary` under `policy` (defaults when None), errors first.

    Segments are checked too; a segment alert is reported only for a rule that did not fire on the
    whole stream. `drift` runs per segment when `reference` is a monitor or summary with that segment.
    """
    settings = policy.monitor if policy is not None else default_settings()
    drift = None
    if reference is not None and settings["drift"].enabled:
        t = settings["drift"].thresholds
        drift = drift_stats(summary, reference, current_values=current_values, significant=t["psi_at_least"])
    alerts = _run(summary, settings, drift, None)
    fired = {a.rule for a in alerts}
    ref_segments = _segments_of(reference)
    for name, seg in summary.segments.items():
        seg_drift = None
        if name in ref_segments and settings["drift"].enabled:
            seg_drift = drift_stats(seg, ref_segments[name], significant=settings["drift"].thresholds["psi_at_least"])
        alerts += tuple(a for a in _run(seg, settings, seg_drift, name) if a.rule not in fired)
    order = list(RULES)
    return tuple(sorted(alerts, key=lambda a: (-a.severity.rank, order.index(a.rule), a.segment or "")))


def _run(
    summary: MonitorSummary,
    settings: Mapping[str, RuleSettings],
    drift: DriftStats | None,
    segment: str | None,
) -> tuple[Alert, ...]:
    out = []
    for name, spec in RULES.items():
        cfg = settings[name]
        if not cfg.enabled or (spec.needs_reference and drift is None):
            continue
        fired = spec.check(summary, cfg.thresholds, drift)
        if fired is not None:
            message, evidence = fired
            prefix = f"[{segment}] " if segment is not None else ""
            out.append(Alert(name, cfg.severity, prefix + message, evidence, segment))
    return tuple(out)


def _segments_of(reference: ReferenceLike | None) -> Mapping[str, MonitorSummary]:
    if isinstance(reference, MonitorSummary):
        return reference.segments
    if reference is not None and hasattr(reference, "summary"):
        return reference.summary().segments
    return {}
