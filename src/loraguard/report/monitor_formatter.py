"""`MonitorFormatter`: a `MonitorReport` as text (statistics, histogram sparkline, drift, alerts) or
JSON (`loraguard.monitor/1`); `monitor` and `ensemble` print it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from loraguard.findings import Severity
from loraguard.report.formatter import Formatter, json_text

if TYPE_CHECKING:
    from loraguard.monitor.report import MonitorReport

__all__ = ["MonitorFormatter"]

_BARS = " ▁▂▃▄▅▆▇█"


class MonitorFormatter(Formatter["MonitorReport"]):
    command = "loraguard monitor"

    def __init__(self, *, title: str = "loraguard monitor") -> None:
        self.title = title
        """The first line's subject, e.g. `loraguard monitor preds.csv`."""

    def text(self, result: MonitorReport) -> str:
        """A short human-readable report: statistics, histogram sparkline, drift and alerts."""
        s = result.summary
        alerts, drift = result.alerts, result.drift
        lines = [f"{self.title}: {s.n_seen} rows, {s.n} predictions in the statistics"]
        if s.parse_success_share is not None and (s.n_unparsed or s.n_invalid):
            lines.append(f"  parsed     {s.parse_success_share:.1%} ({s.n_unparsed} unparsed, {s.n_invalid} invalid)")
        if s.n:
            lines.append(f"  mean {s.mean:.4f}  std {s.std:.4f}  min {s.min:.4f}  max {s.max:.4f}")
            lines.append("  quantiles  " + "  ".join(f"{k} {v:.3f}" for k, v in s.quantiles.items()))
            share = s.top_share or 0.0
            distinct = f"{s.distinct}" if s.distinct_exact else f"more than {s.distinct - 1}"
            if s.top_value is None or s.top_count <= s.top_count_error:
                top = f"no value occurs more than {s.top_count + s.top_count_error} times"
            else:
                top = f"most frequent {s.top_value:.6g} ({share:.1%})"
            lines.append(f"  distinct   {distinct}; {top}")
            lines.append(f"  histogram  [0 {_sparkline(s.histogram)} 1]")
        if drift is not None:
            lines.append(
                f"  drift      PSI {drift.psi:.3f} ({drift.psi_band}), KS D {drift.ks_statistic:.3f} "
                f"p {drift.ks_pvalue:.3g} ({drift.ks_method}), JS {drift.js_distance:.3f} "
                f"vs {drift.n_reference} reference values"
            )
        if s.segments:
            lines.append(
                f"  segments   {len(s.segments)}"
                + (" (capped: the rest pooled in '(other)')" if s.segments_capped else "")
            )
            for name, seg in s.segments.items():
                stats = f"mean {seg.mean:.3f} std {seg.std:.3f}" if seg.n else "no values"
                lines.append(f"    {seg.n:>8}  {stats}  {name[:70]}")
        errors = sum(a.severity is Severity.ERROR for a in alerts)
        warnings = sum(a.severity is Severity.WARNING for a in alerts)
        if alerts:
            lines.append(f"Alerts ({errors} error(s), {warnings} warning(s)):")
            lines += [f"  {a.severity.value:<7} {a.rule:<13} {a.message}" for a in alerts]
        else:
            lines.append("No alerts.")
        lines.append(f"Result: {result.verdict.value.upper()}")
        return "\n".join(lines) + "\n"

    def json(self, result: MonitorReport) -> str:
        return json_text(result.to_dict())


def _sparkline(counts: Sequence[int]) -> str:
    top = max(counts, default=0)
    if top == 0:
        return " " * len(counts)
    return "".join(_BARS[0 if c == 0 else max(1, round(c / top * (len(_BARS) - 1)))] for c in counts)
