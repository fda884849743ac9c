"""Render a `ProbeReport` as text: verdict, statistics with and without the adapter, effect, findings."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from loraguard.findings import Verdict
from loraguard.probe.context import PredictionStats
from loraguard.probe.report import ProbeReport
from loraguard.report.render import findings_table

__all__ = ["render_text"]

_VERDICT = {
    Verdict.PASS: ("PASS", "bold green"),
    Verdict.WARN: ("WARN", "bold yellow"),
    Verdict.FAIL: ("FAIL", "bold red"),
}


def _num(value: float | None, fmt: str = ".4f") -> str:
    return "n/a" if value is None else format(value, fmt)


def _stats_row(label: str, s: PredictionStats) -> list[str]:
    return [label, _num(s.mean), _num(s.std), _num(s.min), _num(s.max), str(s.distinct), str(s.parse_failures)]


def render_text(report: ProbeReport, *, width: int = 110, color: bool = False) -> str:
    """A readable report: the verdict and its reason first, then the numbers, then the findings."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=color, no_color=not color, highlight=False)
    label, style = _VERDICT[report.verdict]
    static = report.check
    name = static.adapter.get("name") or report.adapter
    base = static.base["name"] if static.base else report.base
    rows = "built-in rows" if report.data == "builtin" else f"rows of {Path(report.data).name}"
    head = Text.assemble((f"{label} ", style), (str(name), "bold"), f" on {base}")
    head.append(
        f"  ({report.method}, {report.samples} {rows}, {len(report.errors)} error(s), "
        f"{len(report.warnings)} warning(s), {report.timing_ms / 1000:.1f} s)"
    )
    console.print(head)
    console.print(
        f"  static check: {static.verdict.value} ({len(static.errors)} error(s), {len(static.warnings)} warning(s))"
    )
    ctx = report.context
    if ctx is not None:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, expand=False)
        for col in ("  P(Yes)", "mean", "std", "min", "max", "distinct", "unread"):
            table.add_column(col, no_wrap=True, justify="left" if col.startswith(" ") else "right")
        table.add_row(*_stats_row("  with adapter", ctx.adapted_stats))
        table.add_row(*_stats_row("  base alone", ctx.base_stats))
        console.print(table)
        e = ctx.effect
        console.print(
            f"  effect: mean KL {_num(e.mean_kl, '.3g')}, max |Δlogit| {_num(e.max_logit_diff, '.3g')}, "
            f"max |ΔP(Yes)| {_num(e.max_prob_diff, '.3g')} over {e.rows} rows"
        )
        if ctx.batch is not None:
            diffs = ", ".join(f"{k} {_num(v, '.2g')}" for k, v in ctx.batch.max_diff.items())
            console.print(f"  batched (size {ctx.batch.batch_size}) vs one row: max |ΔP(Yes)| {diffs}")
    blame = f" [blame: {report.blame}]" if report.blame else ""
    console.print(Text.assemble("  verdict: ", (report.differential, "bold"), blame))
    if report.findings:
        console.print(findings_table(report.findings))
    return buf.getvalue()
