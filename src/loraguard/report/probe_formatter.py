"""`ProbeFormatter`: a `ProbeReport` as text (verdict, statistics with and without the adapter, effect,
findings) or JSON (`loraguard.probe/1`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from loraguard.report.check_formatter import draw_check
from loraguard.report.console import VERDICT_LABEL, findings_table, to_text
from loraguard.report.formatter import Formatter

if TYPE_CHECKING:
    from loraguard.probe.context import PredictionStats
    from loraguard.probe.report import ProbeReport

__all__ = ["ProbeFormatter"]


class ProbeFormatter(Formatter["ProbeReport"]):
    command = "loraguard probe"

    def __init__(self, *, width: int = 110, color: bool = False) -> None:
        self.width = width
        self.color = color

    def text(self, result: ProbeReport) -> str:
        """The verdict and its reason first, then the numbers, then the findings. A probe that stopped
        after the static check's errors shows the check's report and why it stopped."""
        if result.stopped:
            check = to_text(lambda console: draw_check(console, result.check), width=self.width, color=self.color)
            return check + f"probe: {result.differential}\n"
        return to_text(lambda console: _draw_probe(console, result), width=self.width, color=self.color)

    def json(self, result: ProbeReport) -> str:
        return result.to_json() + "\n"


def _num(value: float | None, fmt: str = ".4f") -> str:
    return "n/a" if value is None else format(value, fmt)


def _stats_row(label: str, s: PredictionStats) -> list[str]:
    return [label, _num(s.mean), _num(s.std), _num(s.min), _num(s.max), str(s.distinct), str(s.parse_failures)]


def _draw_probe(console: Console, report: ProbeReport) -> None:
    label, style = VERDICT_LABEL[report.verdict]
    static = report.check
    name = static.adapter.get("name") or report.adapter
    base = static.base["name"] if static.base else report.base
    rows = "built-in rows" if report.data == "builtin" else f"rows of {Path(report.data).name}"
    head = Text.assemble((f"{label} ", style), (str(name), "bold"), f" on {base}")
    head.append(
        f"  ({report.method}, {report.samples} {rows}, "
        + (f"{report.dtype}, " if report.dtype else "")
        + f"{len(report.errors)} error(s), "
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
            on = f" on {ctx.batch.checked} rows" if ctx.batch.checked is not None else ""
            console.print(f"  batched (size {ctx.batch.batch_size}){on} vs one row: max |ΔP(Yes)| {diffs}")
    blame = f" [blame: {report.blame}]" if report.blame else ""
    console.print(Text.assemble("  verdict: ", (report.differential, "bold"), blame))
    if report.findings:
        console.print(findings_table(report.findings))
