"""Rich pieces the text formatters share: a console that renders to a string, verdict labels, the findings table."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from loraguard.findings import Finding, Severity, Verdict

__all__ = ["VERDICT_LABEL", "findings_table", "to_text"]

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
VERDICT_LABEL = {
    Verdict.PASS: ("PASS", "bold green"),
    Verdict.WARN: ("WARN", "bold yellow"),
    Verdict.FAIL: ("FAIL", "bold red"),
}
"""Verdict → (label, rich style) for the first line of a report."""


def to_text(draw: Callable[[Console], None], *, width: int | None = 110, color: bool = False) -> str:
    """What `draw` prints on a rich console of `width` columns (None: the terminal's), as a string."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=color, no_color=not color, highlight=False)
    draw(console)
    return buf.getvalue()


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
