"""Check, probe, gate and score reports in a notebook cell and a REPL: the renderers `loraguard.display` uses.

Importing this module registers, for each result class, its text (what the command prints) and an
HTML fragment (`html.fragment`: the HTML reports' sections and inline SVG charts, styles scoped to
the fragment, no script). The package root names this module in `display.RENDERER_MODULES`, so it
is imported the first time a result is shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from loraguard.checks.report import CheckReport
from loraguard.display import register
from loraguard.gate.report import GateReport
from loraguard.probe.report import ProbeReport
from loraguard.report.check_formatter import CheckFormatter
from loraguard.report.gate_formatter import GateFormatter
from loraguard.report.html import Raw, badge, esc, facts, fragment, section, table
from loraguard.report.html_check import check_sections, findings_section
from loraguard.report.html_gate import gate_sections
from loraguard.report.html_predictions import predictions_sections
from loraguard.report.probe_formatter import ProbeFormatter
from loraguard.report.score_formatter import ScoreFormatter
from loraguard.scoring.pipeline import FileScoreReport

if TYPE_CHECKING:
    from loraguard.probe.context import PredictionStats

__all__ = ["check_html", "gate_html", "probe_html", "score_html"]


def check_html(report: CheckReport) -> str:
    """A `CheckReport` as a notebook fragment (the heatmap when it was made with `norms=True`)."""
    a, b = report.adapter, report.base
    name = str(a.get("name") or a.get("ref") or "adapter")
    on = f" on {b['name']}" if b else ""
    counts = f"{len(report.errors)} error(s), {len(report.warnings)} warning(s), {report.timing_ms:.0f} ms"
    return fragment(
        *check_sections(report),
        heading=Raw(f"{badge(report.verdict.value)} loraguard check: {esc(name)}{esc(on)}"),
        subtitle=f"{a.get('ref')} · {counts}",
    )


def probe_html(report: ProbeReport) -> str:
    """A `ProbeReport` as a notebook fragment: verdict in words, statistics, findings, P(Yes) histograms."""
    static = report.check
    name = static.adapter.get("name") or report.adapter
    base = static.base["name"] if static.base else report.base
    parts: list[str] = [
        section(
            "Summary",
            facts(
                [
                    ("adapter", report.adapter),
                    ("base", report.base),
                    ("verdict", report.differential),
                    ("blame", report.blame),
                    ("method / template", f"{report.method} / {report.template}"),
                    ("rows", f"{report.samples} ({report.data})"),
                    (
                        "static check",
                        f"{static.verdict.value}: {len(static.errors)} error(s), {len(static.warnings)} warning(s)",
                    ),
                ]
            ),
        )
    ]
    ctx = report.context
    if ctx is not None:
        e = ctx.effect
        rows = [_stats_row("with adapter", ctx.adapted_stats), _stats_row("base alone", ctx.base_stats)]
        parts.append(
            section(
                "P(Yes) with and without the adapter",
                table(("", "mean", "std", "min", "max", "distinct", "unread"), rows, numeric=(1, 2, 3, 4, 5, 6)),
                note=f"effect: mean KL {_g(e.mean_kl)}, max |Δlogit| {_g(e.max_logit_diff)}, "
                f"max |ΔP(Yes)| {_g(e.max_prob_diff)} over {e.rows} rows",
            )
        )
    parts.append(findings_section(report.findings))
    if ctx is not None:
        series = {"with adapter": ctx.adapted.probabilities, "base alone": ctx.base.probabilities}
        parts += predictions_sections(series)[1:]  # the statistics are above already
    return fragment(
        *parts,
        heading=Raw(f"{badge(report.verdict.value)} loraguard probe: {esc(name)} on {esc(base)}"),
        subtitle=f"{report.method}, {report.samples} rows · {len(report.errors)} error(s), "
        f"{len(report.warnings)} warning(s), {report.timing_ms / 1000:.1f} s",
    )


def gate_html(report: GateReport) -> str:
    """A `GateReport` as a notebook fragment (histograms from its monitor summaries)."""
    failed = ", ".join(c.metric for c in report.failed) or "none"
    return fragment(
        *gate_sections(report),
        heading=Raw(f"{badge(report.verdict.value)} loraguard gate: candidate vs baseline"),
        subtitle=f"{report.candidate} vs {report.baseline} · {report.n} rows · failed or warned: {failed}",
    )


def score_html(report: FileScoreReport) -> str:
    """A `FileScoreReport` as a notebook fragment: one row per run, then the prediction histograms."""
    rows = []
    for run in report.runs:
        s = run.summary
        rows.append(
            (
                run.adapter or "base (no adapter)",
                len(run.result.row_ids),
                _g(s.get("mean")),
                _g(s.get("std")),
                _g(run.auc.auc if run.auc is not None else None),
                "yes" if run.degenerate else "no",
                ", ".join(a.rule for a in run.alerts) or "none",
                str(run.output),
            )
        )
    parts: list[str] = [
        section(
            "Runs",
            table(
                ("run", "rows", "mean", "std", "AUC", "degenerate", "alerts", "predictions"), rows, numeric=(1, 2, 3, 4)
            ),
        )
    ]
    series = {run.adapter or "base (no adapter)": np.asarray(run.result.probabilities) for run in report.runs}
    if series:
        groups = np.asarray(report.rules) if report.rules else None
        parts += predictions_sections(series, groups, labels=report.labels)
    verdict = "fail" if report.any_degenerate else "pass"
    return fragment(
        *parts,
        heading=Raw(f"{badge(verdict)} loraguard score: {esc(Path(report.data).name)}"),
        subtitle=f"{report.data} on {report.base} · {len(report.runs)} run(s)",
    )


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _stats_row(label: str, s: PredictionStats) -> tuple[object, ...]:
    return (label, _g(s.mean), _g(s.std), _g(s.min), _g(s.max), s.distinct, s.parse_failures)


register(CheckReport, text=CheckFormatter().text, html=check_html)
register(ProbeReport, text=ProbeFormatter().text, html=probe_html)
register(GateReport, text=GateFormatter().text, html=gate_html)
register(FileScoreReport, text=ScoreFormatter().text, html=score_html)
