"""`MonitorReport`: the frozen result of monitoring one predictions file (summary, drift, alerts),
its verdict and its JSON form. `monitor` and `ensemble` print it through
`loraguard.report.monitor_formatter.MonitorFormatter`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loraguard.findings import Verdict
from loraguard.monitor.alerts import Alert
from loraguard.monitor.drift import DriftStats
from loraguard.monitor.summary import MonitorSummary, jsonable

__all__ = ["MonitorReport"]


@dataclass(frozen=True)
class MonitorReport:
    """One file's summary, the alerts its policy raised, drift against a reference and the inputs."""

    summary: MonitorSummary
    alerts: tuple[Alert, ...]
    inputs: Mapping[str, Any] = field(default_factory=dict)
    """What was read (paths, options), as the JSON's `inputs`."""
    drift: DriftStats | None = None
    policy: Mapping[str, Any] | None = None
    """The policy applied (`Policy.to_dict()`)."""

    @property
    def verdict(self) -> Verdict:
        """fail on an error alert, warn on a warning, else pass."""
        worst = max((a.severity.rank for a in self.alerts), default=0)
        return {2: Verdict.FAIL, 1: Verdict.WARN, 0: Verdict.PASS}[worst]

    def exit_code(self, *, strict: bool = False) -> int:
        """1 when an error alert fired (or a warning, with `strict`), else 0."""
        v = self.verdict
        return int(v is Verdict.FAIL or (strict and v is Verdict.WARN))

    def to_dict(self) -> dict[str, Any]:
        """The summary's `to_dict()` (schema `loraguard.monitor/1`) plus inputs, drift, alerts, verdict and policy."""
        out = self.summary.to_dict()
        out.update(
            inputs=dict(self.inputs),
            drift=None if self.drift is None else self.drift.to_dict(),
            alerts=[a.to_dict() for a in self.alerts],
            verdict=self.verdict.value,
            policy=None if self.policy is None else dict(self.policy),
        )
        return jsonable(out)
