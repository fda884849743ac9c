"""`gate --html`: the gate's verdict and checks with candidate vs baseline prediction histograms.

With the predictions themselves the histograms use every row (and, with labels, split by true label
and by group, e.g. per Jigsaw rule); with the `GateReport` alone they fall back to the binned
histograms of its monitor summaries.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from loraguard.report.html import Raw, badge, facts, page, section, table, write_html
from loraguard.report.html_predictions import predictions_sections
from loraguard.report.svg import bar_chart_svg, binned_histogram_svg

if TYPE_CHECKING:
    from loraguard.gate.report import GateReport
    from loraguard.monitor.predictions import Labels, Predictions

__all__ = ["gate_sections", "render_gate_html", "write_gate_html"]

_STATUS_CLASS = {"pass": "c-pass", "warn": "c-warn", "fail": "c-fail", "skipped": ""}


def write_gate_html(
    report: GateReport,
    candidate: Predictions | npt.ArrayLike | None = None,
    baseline: Predictions | npt.ArrayLike | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    labels: Labels | None = None,
) -> Path:
    """Write the HTML report of `report` to `path` (atomically); returns the path.

    `candidate`/`baseline` are the gated `Predictions` (aligned by `row_id`) or plain arrays in the
    same row order; `labels` adds histograms by true label and per group. Without predictions the
    charts use the report's binned monitor histograms.
    """
    if path is None:
        raise TypeError("write_gate_html() needs a path")
    return write_html(path, render_gate_html(report, candidate, baseline, labels=labels))


def render_gate_html(
    report: GateReport,
    candidate: Predictions | npt.ArrayLike | None = None,
    baseline: Predictions | npt.ArrayLike | None = None,
    *,
    labels: Labels | None = None,
) -> str:
    """The complete HTML document for a `GateReport`."""
    verdict = report.verdict.value
    heading = Raw(f"{badge(verdict)} loraguard gate: candidate vs baseline")
    failed = ", ".join(c.metric for c in report.failed) or "none"
    return page(
        f"loraguard gate: {verdict.upper()}",
        *gate_sections(report, candidate, baseline, labels=labels),
        heading=heading,
        subtitle=f"{report.candidate} vs {report.baseline} · {report.n} rows · failed or warned: {failed}",
    )


def gate_sections(
    report: GateReport,
    candidate: Predictions | npt.ArrayLike | None = None,
    baseline: Predictions | npt.ArrayLike | None = None,
    *,
    labels: Labels | None = None,
) -> list[str]:
    """The report's sections (summary, checks, histograms, per group, alerts), for a page or a notebook."""
    parts: list[str] = [_summary(report), _checks(report)]
    values = _values(candidate, baseline, labels)
    if values is not None:
        arrays, y, groups = values
        parts += predictions_sections(arrays, groups, threshold=report.settings.decision_threshold, labels=y)
    else:
        parts.append(_binned(report))
    if report.per_group:
        parts.append(_per_group(report))
    parts.append(_alerts(report))
    return parts


def _values(
    candidate: Any, baseline: Any, labels: Labels | None
) -> tuple[dict[str, np.ndarray], np.ndarray | None, np.ndarray | None] | None:
    if candidate is None or baseline is None:
        return None
    from loraguard.monitor.predictions import Predictions, align

    y = groups = None
    if isinstance(candidate, Predictions) and isinstance(baseline, Predictions):
        cand, base = align(candidate, baseline)
        c, b = cand.values, base.values
        if labels is not None:
            lab = labels.aligned_to(cand.row_ids, source=cand.source)
            y, groups = lab.y, lab.groups
    else:
        c = np.asarray(getattr(candidate, "values", candidate), dtype=np.float64)
        b = np.asarray(getattr(baseline, "values", baseline), dtype=np.float64)
    return {"candidate": c, "baseline": b}, y, groups


def _summary(report: GateReport) -> Raw:
    items: list[tuple[str, object]] = [
        ("candidate", report.candidate),
        ("baseline", report.baseline),
        ("labels", report.labels or "none (AUC checks skipped)"),
        ("rows", report.n),
        ("decision threshold", f"{report.settings.decision_threshold:g}"),
        ("policy", report.policy.get("source") or "defaults"),
    ]
    for key, ci in report.bootstrap.items():
        items.append(
            (
                f"{key} Δ (candidate − baseline)",
                f"{ci.delta:+.4f}, {ci.confidence:.0%} CI [{ci.low:+.4f}, {ci.high:+.4f}] "
                f"({ci.resamples} paired resamples, seed {ci.seed})",
            )
        )
    return section("Summary", facts(items))


def _checks(report: GateReport) -> Raw:
    rows, classes = [], []
    for c in report.checks:
        rows.append(
            (
                Raw(badge(c.status)),
                c.metric,
                _fmt(c.candidate),
                _fmt(c.baseline),
                c.check.describe(),
                "yes" if c.check.critical else "no",
                c.message,
            )
        )
        classes.append((0, _STATUS_CLASS.get(c.status, "")))
    return section(
        "Checks",
        table(
            ("status", "metric", "candidate", "baseline", "rule", "critical", "message"),
            rows,
            numeric=(2, 3),
            cell_class=classes,
        ),
    )


def _binned(report: GateReport) -> Raw:
    counts = {"candidate": report.candidate_summary.histogram, "baseline": report.baseline_summary.histogram}
    chart = binned_histogram_svg(
        counts,
        (0.0, 1.0),
        title="Predicted probability (monitor bins)",
        x_label="probability",
        marker=report.settings.decision_threshold,
        width=760,
        height=300,
    )
    return section(
        "Distribution",
        Raw(chart),
        note="From the report's monitor summaries (pass the predictions for per-label and per-group charts).",
    )


def _per_group(report: GateReport) -> Raw:
    rows = [
        (
            name,
            g.get("rows"),
            g.get("positives"),
            _fmt(g.get("candidate")),
            _fmt(g.get("baseline")),
            _delta(g.get("candidate"), g.get("baseline")),
        )
        for name, g in report.per_group.items()
    ]
    bars = {
        f"{side} · {name}": float(g[side])
        for name, g in report.per_group.items()
        for side in ("candidate", "baseline")
        if isinstance(g.get(side), float)
    }
    chart = bar_chart_svg(bars, title="AUC per group", width=760, label_width=330) if bars else ""
    return section(
        "AUC per group",
        Raw(chart),
        table(("group", "rows", "positives", "candidate AUC", "baseline AUC", "Δ"), rows, numeric=(1, 2, 3, 4, 5)),
    )


def _alerts(report: GateReport) -> Raw:
    rows = [("candidate", a.severity.value, a.rule, a.segment or "", a.message) for a in report.alerts]
    rows += [("baseline", a.severity.value, a.rule, a.segment or "", a.message) for a in report.baseline_alerts]
    if not rows:
        return section("Monitor alerts", Raw('<p class="note">No monitor alerts on either side.</p>'))
    return section("Monitor alerts", table(("side", "severity", "rule", "segment", "message"), rows))


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _delta(a: object, b: object) -> str:
    return f"{a - b:+.4f}" if isinstance(a, float) and isinstance(b, float) else "—"
