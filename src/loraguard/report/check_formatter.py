"""`CheckFormatter`: a `CheckReport` as text (rich), markdown (CI job summaries) or JSON (`loraguard.check/1`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.console import Console
from rich.text import Text

from loraguard.report.console import VERDICT_LABEL, findings_table, to_text
from loraguard.report.formatter import Formatter, OutputFormat

if TYPE_CHECKING:
    from loraguard.checks.report import CheckReport

__all__ = ["CheckFormatter"]


class CheckFormatter(Formatter["CheckReport"]):
    formats: ClassVar[tuple[OutputFormat, ...]] = (OutputFormat.text, OutputFormat.json, OutputFormat.markdown)
    command = "loraguard check"

    def __init__(self, *, width: int = 110, color: bool = False) -> None:
        self.width = width
        self.color = color

    def text(self, result: CheckReport) -> str:
        """A readable report: verdict first, then findings by severity with their fix."""
        return to_text(lambda console: draw_check(console, result), width=self.width, color=self.color)

    def json(self, result: CheckReport) -> str:
        return result.to_json() + "\n"

    def markdown(self, result: CheckReport) -> str:
        """A GitHub-flavoured markdown summary for CI job pages."""
        label, _ = VERDICT_LABEL[result.verdict]
        a = result.adapter
        base = f" on `{result.base['name']}`" if result.base else ""
        lines = [f"### loraguard check: **{label}** `{a.get('name')}`" + base, ""]
        lines.append(f"- claimed base: `{a.get('claimed_base')}`; r={a.get('r')}; tensor ranks {a.get('tensor_ranks')}")
        if result.inferred_bases:
            lines.append("- tensors fit: " + ", ".join(f"`{i.name}`" for i in result.inferred_bases[:5]))
        lines.append("")
        if result.findings:
            lines += ["| severity | code | category | finding | fix |", "|---|---|---|---|---|"]
            for f in result.findings:
                msg = f.message.replace("|", "\\|")
                fix = f.fix.replace("|", "\\|")
                lines.append(f"| {f.severity.value} | {f.code} | {f.category} | {msg} | {fix} |")
        else:
            lines.append("No findings.")
        return "\n".join(lines) + "\n"


def draw_check(console: Console, report: CheckReport) -> None:
    """The check report's text on `console` (the probe's text reuses it when the probe stopped)."""
    label, style = VERDICT_LABEL[report.verdict]
    adapter = report.adapter
    head = Text.assemble((f"{label} ", style), (f"{adapter.get('name')}", "bold"))
    if report.base:
        head.append(f" on {report.base['name']}")
    head.append(f"  ({len(report.errors)} error(s), {len(report.warnings)} warning(s), {report.timing_ms:.0f} ms)")
    console.print(head)
    facts = [
        f"claims {adapter.get('claimed_base') or '?'}",
        f"r={adapter.get('r')}",
        f"tensor ranks {adapter.get('tensor_ranks')}",
        f"{adapter.get('tensors')} tensors",
        f"{adapter.get('format') or 'no weights'}",
    ]
    console.print("  adapter: " + ", ".join(facts))
    if report.base:
        b = report.base
        console.print(
            f"  base:    {b['architecture']} {b['num_layers']} layers, hidden {b['hidden_size']}, "
            f"vocab {b['vocab_size']}, {b['params_b']}B params ({b['source']})"
        )
    if report.inferred_bases:
        names = ", ".join(i.name for i in report.inferred_bases[:5])
        console.print(f"  tensors fit: {names}")
    elif adapter.get("lora_modules"):
        console.print("  tensors fit: no catalog model")
    if report.findings:
        console.print(findings_table(report.findings))
