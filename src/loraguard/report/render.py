"""Render a `CheckReport` as text (rich), markdown (CI job summaries) or JSON."""

from __future__ import annotations

import io
from collections.abc import Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from loraguard.checks.report import CheckReport
from loraguard.findings import Finding, Severity, Verdict

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
_VERDICT = {
    Verdict.PASS: ("PASS", "bold green"),
    Verdict.WARN: ("WARN", "bold yellow"),
    Verdict.FAIL: ("FAIL", "bold red"),
}


def findings_table(findings: Iterable[Finding]) -> Table:
    """Findings as a rich table: severity, code, category, message with its fix below."""
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, expand=False)
    table.add_column("sev", no_wrap=True)
    table.add_column("code", no_wrap=True)
    table.add_column("category", no_wrap=True)
    table.add_column("finding / fix", overflow="fold")
    for f in findings:
        body = Text(f.message)
        if f.fix:
            body.append(f"\n→ {f.fix}", style="dim")
        table.add_row(Text(f.severity.value, _STYLE[f.severity]), f.code, f.category, body)
    return table


def render_text(report: CheckReport, *, width: int = 110, color: bool = False) -> str:
    """A readable report: verdict first, then findings by severity with their fix."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=color, no_color=not color, highlight=False)
    label, style = _VERDICT[report.verdict]
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
    return buf.getvalue()


def render_markdown(report: CheckReport) -> str:
    """A GitHub-flavoured markdown summary for CI job pages."""
    label, _ = _VERDICT[report.verdict]
    a = report.adapter
    lines = [
        f"### loraguard check: **{label}** `{a.get('name')}`" + (f" on `{report.base['name']}`" if report.base else ""),
        "",
    ]
    lines.append(f"- claimed base: `{a.get('claimed_base')}`; r={a.get('r')}; tensor ranks {a.get('tensor_ranks')}")
    if report.inferred_bases:
        lines.append("- tensors fit: " + ", ".join(f"`{i.name}`" for i in report.inferred_bases[:5]))
    lines.append("")
    if report.findings:
        lines += ["| severity | code | category | finding | fix |", "|---|---|---|---|---|"]
        for f in report.findings:
            msg = f.message.replace("|", "\\|")
            fix = f.fix.replace("|", "\\|")
            lines.append(f"| {f.severity.value} | {f.code} | {f.category} | {msg} | {fix} |")
    else:
        lines.append("No findings.")
    return "\n".join(lines) + "\n"
