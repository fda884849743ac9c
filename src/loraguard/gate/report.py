"""`GateReport`: the frozen result of `run_gate`, and its JSON form (`loraguard.gate/1`).

Its text and markdown forms are `loraguard.report.gate_formatter.GateFormatter`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from loraguard.display import renderable
from loraguard.findings import Severity, Verdict
from loraguard.gate.checks import CheckResult
from loraguard.gate.comparison import BootstrapInterval
from loraguard.monitor.alerts import Alert
from loraguard.monitor.policy import GateSettings
from loraguard.monitor.summary import MonitorSummary, jsonable

__all__ = ["SCHEMA", "GateReport"]

SCHEMA = "loraguard.gate/1"


@renderable
@dataclass(frozen=True)
class GateReport:
    """Candidate vs baseline: every metric, every check, the monitor alerts and the policy applied."""

    verdict: Verdict
    candidate: str
    baseline: str
    labels: str | None
    n: int
    metrics: Mapping[str, float | None]
    """Candidate-side and pairwise values (`auc`, `spearman`, `psi`…)."""
    baseline_metrics: Mapping[str, float | None]
    """Baseline-side values of the metrics both models have (`auc`, `auc_macro`, `positive_rate`)."""
    checks: tuple[CheckResult, ...]
    alerts: tuple[Alert, ...]
    """Monitor alerts on the candidate."""
    baseline_alerts: tuple[Alert, ...]
    candidate_summary: MonitorSummary
    baseline_summary: MonitorSummary
    settings: GateSettings
    policy: Mapping[str, Any]
    per_group: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per group (Jigsaw rule): rows, positives, candidate and baseline AUC."""
    bootstrap: Mapping[str, BootstrapInterval] = field(default_factory=dict)

    def exit_code(self, *, strict: bool = False) -> int:
        """1 when the verdict is fail (or warn with `strict`), else 0."""
        return int(self.verdict is Verdict.FAIL or (strict and self.verdict is Verdict.WARN))

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """Checks that failed or warned."""
        return tuple(c for c in self.checks if c.status in ("fail", "warn"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with `"schema": "loraguard.gate/1"`."""
        return jsonable(
            {
                "schema": SCHEMA,
                "verdict": self.verdict.value,
                "inputs": {
                    "candidate": self.candidate,
                    "baseline": self.baseline,
                    "labels": self.labels,
                    "rows": self.n,
                },
                "settings": asdict(self.settings),
                "metrics": {"candidate": dict(self.metrics), "baseline": dict(self.baseline_metrics)},
                "bootstrap": {k: v.to_dict() for k, v in self.bootstrap.items()},
                "per_group": {k: dict(v) for k, v in self.per_group.items()},
                "checks": [c.to_dict() for c in self.checks],
                "alerts": [a.to_dict() for a in self.alerts],
                "baseline_alerts": [a.to_dict() for a in self.baseline_alerts],
                "summaries": {
                    "candidate": self.candidate_summary.to_dict(),
                    "baseline": self.baseline_summary.to_dict(),
                },
                "policy": self.policy,
            }
        )


def verdict_of_checks(checks: tuple[CheckResult, ...]) -> Verdict:
    """fail if a critical check failed, warn if only non-critical ones did, else pass."""
    if any(c.status == "fail" for c in checks):
        return Verdict.FAIL
    return Verdict.WARN if any(c.status == "warn" for c in checks) else Verdict.PASS


def count_alerts(alerts: tuple[Alert, ...], severity: Severity) -> int:
    """How many of `alerts` have `severity`."""
    return sum(1 for a in alerts if a.severity is severity)
