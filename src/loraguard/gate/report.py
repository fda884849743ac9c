"""`GateReport`: the frozen result of `run_gate`, with JSON (`loraguard.gate/1`), text and markdown forms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from loraguard.findings import Severity, Verdict
from loraguard.gate.checks import CheckResult
from loraguard.gate.comparison import BootstrapInterval
from loraguard.monitor.alerts import Alert
from loraguard.monitor.policy import GateSettings
from loraguard.monitor.summary import MonitorSummary, jsonable

__all__ = ["SCHEMA", "GateReport"]

SCHEMA = "loraguard.gate/1"
_ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", "skipped": "⏭️"}


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

    def to_text(self) -> str:
        """Plain text for a terminal."""
        lines = [
            f"loraguard gate: {self.verdict.value.upper()}",
            f"  candidate {self.candidate}  vs  baseline {self.baseline}  ({self.n} rows"
            + (f", labels {self.labels})" if self.labels else ")"),
            "",
            "Checks:",
        ]
        width = max((len(c.metric) for c in self.checks), default=10)
        lines += [f"  {c.status.upper():<7} {c.metric:<{width}}  {c.message}" for c in self.checks]
        lines += _alert_lines(self.alerts, "Monitor alerts on the candidate")
        lines += _alert_lines(self.baseline_alerts, "Monitor alerts on the baseline (for context)")
        if self.per_group:
            lines += ["", "AUC per group:"]
            for name, row in self.per_group.items():
                lines.append(f"  {_fmt(row['candidate'])} vs {_fmt(row['baseline'])}  n={row['rows']:<6} {name[:70]}")
        for key, ci in self.bootstrap.items():
            lines.append(
                f"  {key} Δ {ci.delta:+.4f}  {ci.confidence:.0%} CI [{ci.low:+.4f}, {ci.high:+.4f}]"
                f" ({ci.resamples} paired resamples, seed {ci.seed})"
            )
        lines += [
            "",
            f"Policy: {self.policy.get('source') or 'defaults'}; decision threshold "
            f"{self.settings.decision_threshold:g}",
        ]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """Markdown for a CI job summary (e.g. `$GITHUB_STEP_SUMMARY`)."""
        icon = {"pass": "✅", "warn": "⚠️", "fail": "❌"}[self.verdict.value]
        out = [
            f"## {icon} loraguard gate: **{self.verdict.value.upper()}**",
            "",
            f"Candidate `{self.candidate}` vs baseline `{self.baseline}`: {self.n} rows"
            + (f", labels `{self.labels}`" if self.labels else " (no labels: AUC checks skipped)")
            + f", decision threshold {self.settings.decision_threshold:g}.",
            "",
            "| | check | candidate | baseline | rule | critical |",
            "|---|---|---:|---:|---|---|",
        ]
        out += [
            f"| {_ICON[c.status]} | `{c.metric}` | {_fmt(c.candidate)} | {_fmt(c.baseline)} | "
            f"{c.check.describe()} | {'yes' if c.check.critical else 'no'} |"
            for c in self.checks
        ]
        if self.alerts:
            out += ["", "### Monitor alerts on the candidate", ""]
            out += [f"- **{a.severity.value}** `{a.rule}`: {_md_escape(a.message)}" for a in self.alerts]
        if self.bootstrap:
            out += [
                "",
                "### AUC difference (candidate − baseline)",
                "",
                "| metric | Δ | CI | resamples |",
                "|---|---:|---|---:|",
            ]
            out += [
                f"| `{k}` | {ci.delta:+.4f} | [{ci.low:+.4f}, {ci.high:+.4f}] ({ci.confidence:.0%}) | {ci.resamples} |"
                for k, ci in self.bootstrap.items()
            ]
        if self.per_group:
            out += [
                "",
                "<details><summary>AUC per group</summary>",
                "",
                "| group | rows | positives | candidate | baseline |",
                "|---|---:|---:|---:|---:|",
            ]
            out += [
                f"| {_md_escape(name[:80])} | {r['rows']} | {r['positives']} | {_fmt(r['candidate'])} | "
                f"{_fmt(r['baseline'])} |"
                for name, r in self.per_group.items()
            ]
            out += ["", "</details>"]
        out += [
            "",
            f"<details><summary>Policy applied ({self.policy.get('source') or 'defaults'})</summary>",
            "",
            "| check | rule | critical |",
            "|---|---|---|",
        ]
        out += [f"| `{c.metric}` | {c.check.describe()} | {'yes' if c.check.critical else 'no'} |" for c in self.checks]
        out += ["", "</details>", ""]
        return "\n".join(out)


def _alert_lines(alerts: tuple[Alert, ...], title: str) -> list[str]:
    if not alerts:
        return []
    return ["", f"{title}:"] + [f"  {a.severity.value.upper():<7} {a.rule:<13} {a.message}" for a in alerts]


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def verdict_of_checks(checks: tuple[CheckResult, ...]) -> Verdict:
    """fail if a critical check failed, warn if only non-critical ones did, else pass."""
    if any(c.status == "fail" for c in checks):
        return Verdict.FAIL
    return Verdict.WARN if any(c.status == "warn" for c in checks) else Verdict.PASS


def count_alerts(alerts: tuple[Alert, ...], severity: Severity) -> int:
    """How many of `alerts` have `severity`."""
    return sum(1 for a in alerts if a.severity is severity)
