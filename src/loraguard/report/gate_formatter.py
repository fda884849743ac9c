"""`GateFormatter`: a `GateReport` as text (terminal), markdown (CI job summary) or JSON (`loraguard.gate/1`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from loraguard.report.formatter import Formatter, OutputFormat, json_text

if TYPE_CHECKING:
    from loraguard.gate.report import GateReport
    from loraguard.monitor.alerts import Alert

__all__ = ["GateFormatter"]

_ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", "skipped": "⏭️"}


class GateFormatter(Formatter["GateReport"]):
    formats: ClassVar[tuple[OutputFormat, ...]] = (OutputFormat.text, OutputFormat.json, OutputFormat.markdown)
    command = "loraguard gate"

    def json(self, result: GateReport) -> str:
        return json_text(result.to_dict())

    def text(self, result: GateReport) -> str:
        """Plain text for a terminal."""
        lines = [
            f"loraguard gate: {result.verdict.value.upper()}",
            f"  candidate {result.candidate}  vs  baseline {result.baseline}  ({result.n} rows"
            + (f", labels {result.labels})" if result.labels else ")"),
            "",
            "Checks:",
        ]
        width = max((len(c.metric) for c in result.checks), default=10)
        lines += [f"  {c.status.upper():<7} {c.metric:<{width}}  {c.message}" for c in result.checks]
        lines += _alert_lines(result.alerts, "Monitor alerts on the candidate")
        lines += _alert_lines(result.baseline_alerts, "Monitor alerts on the baseline (for context)")
        if result.per_group:
            lines += ["", "AUC per group:"]
            for name, row in result.per_group.items():
                lines.append(f"  {_fmt(row['candidate'])} vs {_fmt(row['baseline'])}  n={row['rows']:<6} {name[:70]}")
        for key, ci in result.bootstrap.items():
            lines.append(
                f"  {key} Δ {ci.delta:+.4f}  {ci.confidence:.0%} CI [{ci.low:+.4f}, {ci.high:+.4f}]"
                f" ({ci.resamples} paired resamples, seed {ci.seed})"
            )
        lines += [
            "",
            f"Policy: {result.policy.get('source') or 'defaults'}; decision threshold "
            f"{result.settings.decision_threshold:g}",
        ]
        return "\n".join(lines) + "\n"

    def markdown(self, result: GateReport) -> str:
        """Markdown for a CI job summary (e.g. `$GITHUB_STEP_SUMMARY`)."""
        icon = {"pass": "✅", "warn": "⚠️", "fail": "❌"}[result.verdict.value]
        out = [
            f"## {icon} loraguard gate: **{result.verdict.value.upper()}**",
            "",
            f"Candidate `{result.candidate}` vs baseline `{result.baseline}`: {result.n} rows"
            + (f", labels `{result.labels}`" if result.labels else " (no labels: AUC checks skipped)")
            + f", decision threshold {result.settings.decision_threshold:g}.",
            "",
            "| | check | candidate | baseline | rule | critical |",
            "|---|---|---:|---:|---|---|",
        ]
        out += [
            f"| {_ICON[c.status]} | `{c.metric}` | {_fmt(c.candidate)} | {_fmt(c.baseline)} | "
            f"{c.check.describe()} | {'yes' if c.check.critical else 'no'} |"
            for c in result.checks
        ]
        if result.alerts:
            out += ["", "### Monitor alerts on the candidate", ""]
            out += [f"- **{a.severity.value}** `{a.rule}`: {_md_escape(a.message)}" for a in result.alerts]
        if result.bootstrap:
            out += [
                "",
                "### AUC difference (candidate − baseline)",
                "",
                "| metric | Δ | CI | resamples |",
                "|---|---:|---|---:|",
            ]
            out += [
                f"| `{k}` | {ci.delta:+.4f} | [{ci.low:+.4f}, {ci.high:+.4f}] ({ci.confidence:.0%}) | {ci.resamples} |"
                for k, ci in result.bootstrap.items()
            ]
        if result.per_group:
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
                for name, r in result.per_group.items()
            ]
            out += ["", "</details>"]
        out += [
            "",
            f"<details><summary>Policy applied ({result.policy.get('source') or 'defaults'})</summary>",
            "",
            "| check | rule | critical |",
            "|---|---|---|",
        ]
        out += [
            f"| `{c.metric}` | {c.check.describe()} | {'yes' if c.check.critical else 'no'} |" for c in result.checks
        ]
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
