"""The guarded load's report as text (REPL, exception and warning messages) and as a notebook fragment.

Registered with `loraguard.display` when imported (`guard.load` imports it): `LoadReport` lives in
this room, above `report/`, so its renderers live here and reuse `report/`'s pieces.
"""

from __future__ import annotations

from rich.console import Console

from loraguard.display import register
from loraguard.findings import Finding
from loraguard.guard.report import LoadReport
from loraguard.report.console import VERDICT_LABEL, findings_table, to_text
from loraguard.report.html import Raw, badge, esc, facts, fragment, section
from loraguard.report.html_check import findings_section
from loraguard.report.html_predictions import predictions_sections

__all__ = ["load_html", "load_text", "refusal_message"]

_SHOWN = 8


def _state(report: LoadReport) -> str:
    if report.loaded:
        return f"loaded as {report.adapter_name!r}"
    if report.outcome is None:
        return "refused before loading: the model was not touched"
    return "refused: the model was put back as it was"


def _peft_line(report: LoadReport) -> str:
    o = report.outcome
    if o is None:
        return "not called"
    if o.error is not None:
        return f"raised {o.error}"
    return (
        f"{len(o.targeted)} module(s) adapted, {len(o.missing_keys)} missing key(s), "
        f"{len(o.unexpected_keys)} unexpected key(s)"
    )


def _canary_line(report: LoadReport) -> str | None:
    c = report.canary
    if c is None:
        return None
    e = c.effect
    kl = "n/a" if e.mean_kl is None else f"{e.mean_kl:.3g}"
    return (
        f"{len(c.row_ids)} rows; with adapter {c.adapted_stats.describe()}; base alone "
        f"{c.base_stats.describe()}; mean KL {kl}"
    )


def refusal_message(report: LoadReport) -> str:
    """The `AdapterLoadError` / `AdapterLoadWarning` message: what was decided and the findings behind it."""
    blocking = report.blocking
    kinds = "error(s) or warning(s) (strict)" if report.strict else "error(s)"
    if report.loaded:
        head = (
            f"loraguard loaded adapter {report.adapter} onto {report.base} despite {len(blocking)} {kinds} "
            "(on_error='warn'):"
        )
    else:
        after = "the model was not touched" if report.outcome is None else "the model was put back as it was"
        head = f"loraguard refused adapter {report.adapter} for {report.base}: {len(blocking)} {kinds}; {after}."
    lines = [head, *(_finding_lines(f) for f in blocking[:_SHOWN])]
    if len(blocking) > _SHOWN:
        lines.append(f"  ... and {len(blocking) - _SHOWN} more (the exception's .report has them all)")
    lines.append("`loraguard explain CODE` documents each rule.")
    return "\n".join(lines)


def _finding_lines(f: Finding) -> str:
    return f"  {f.severity.value} {f.code} {f.category}: {f.message}" + (f"\n      fix: {f.fix}" if f.fix else "")


def load_text(report: LoadReport) -> str:
    """The report as text: verdict and decision, the three steps, then every finding."""
    label, _ = VERDICT_LABEL[report.verdict]

    def draw(console: Console) -> None:
        print_ = console.print
        name = report.check.adapter.get("name") or report.adapter
        print_(
            f"{label} {name} on {report.base} (live model): {_state(report)}  "
            f"({len(report.errors)} error(s), {len(report.warnings)} warning(s), {report.timing_ms:.0f} ms)"
        )
        c = report.check
        print_(f"  static check: {c.verdict.value} ({len(c.errors)} error(s), {len(c.warnings)} warning(s))")
        print_(f"  PEFT: {_peft_line(report)}")
        canary = _canary_line(report)
        if canary is not None:
            print_(f"  canary: {canary}")
        if report.findings:
            print_(findings_table(report.findings))

    return to_text(draw)


def load_html(report: LoadReport) -> str:
    """The report as a notebook fragment: the steps, the findings, the canary's P(Yes) histograms."""
    items: list[tuple[str, object]] = [
        ("adapter", report.adapter),
        ("model", report.base),
        ("decision", _state(report)),
        (
            "static check",
            f"{report.check.verdict.value}: {len(report.check.errors)} error(s), "
            f"{len(report.check.warnings)} warning(s)",
        ),
        ("PEFT", _peft_line(report)),
        ("canary", _canary_line(report)),
    ]
    parts: list[str] = [section("Summary", facts(items)), findings_section(report.findings)]
    if report.canary is not None:
        c = report.canary
        parts += predictions_sections({"with adapter": c.adapted.probabilities, "base alone": c.base.probabilities})
    return fragment(
        *parts,
        heading=Raw(f"{badge(report.verdict.value)} loraguard load: {esc(report.adapter)}"),
        subtitle=f"onto {report.base} · {len(report.errors)} error(s), {len(report.warnings)} warning(s)",
    )


register(LoadReport, text=load_text, html=load_html)
