"""Rich pieces the text formatters share: a console that renders to a string, verdict labels, the findings table.

Text from inputs (names, paths, config values, CSV texts) reaches the terminal only through
`SafeConsole`: markup is off (a name like `[bold]` or `[/]` is printed as written, never parsed), and
every segment rich renders passes `textsafe.printable`, so no escape sequence, C1 control, bidi override
or undecodable byte from an input is ever written raw, in colour or not.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from loraguard.findings import Finding, Severity, Verdict
from loraguard.textsafe import printable

__all__ = ["VERDICT_LABEL", "SafeConsole", "findings_table", "to_text"]

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
VERDICT_LABEL = {
    Verdict.PASS: ("PASS", "bold green"),
    Verdict.WARN: ("WARN", "bold yellow"),
    Verdict.FAIL: ("FAIL", "bold red"),
}
"""Verdict → (label, rich style) for the first line of a report."""


class SafeConsole(Console):
    """A rich console for untrusted text: no markup, no emoji codes, and every rendered segment made
    printable (rich's own styling is added after, from the segments' styles)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("emoji", False)
        kwargs.setdefault("highlight", False)
        super().__init__(**kwargs)

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Any:
        for segment in super().render(renderable, options):
            if segment.control or segment.text.isprintable():
                yield segment
            else:
                yield Segment(printable(segment.text), segment.style, segment.control)


def to_text(draw: Callable[[Console], None], *, width: int | None = 110, color: bool = False) -> str:
    """What `draw` prints on a rich console of `width` columns (None: the terminal's), as a string."""
    buf = io.StringIO()
    console = SafeConsole(file=buf, width=width, force_terminal=color, no_color=not color)
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
