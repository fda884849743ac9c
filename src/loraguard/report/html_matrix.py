"""`matrix --html`: verdicts per base, findings per category, check times, and the adapter × base grid."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from loraguard.report.html import Raw, badge, esc, facts, page, section, table, write_html
from loraguard.report.svg import bar_chart_svg, histogram_svg

if TYPE_CHECKING:
    from loraguard.matrix.pipeline import MatrixResult

__all__ = ["VERDICT_COLOURS", "render_matrix_html", "write_matrix_html"]

VERDICT_COLOURS = {"pass": "#2e7d32", "warn": "#f0a000", "fail": "#c62828", "error": "#6a1b9a"}


def write_matrix_html(result: MatrixResult, path: str | os.PathLike[str]) -> Path:
    """Write the HTML report of a matrix run to `path` (atomically); returns the path."""
    return write_html(path, render_matrix_html(result))


def render_matrix_html(result: MatrixResult) -> str:
    """The complete HTML document for a `MatrixResult`."""
    counts = result.counts()
    n_bases = len(result.bases)
    title = f"loraguard matrix: {len(result.adapters)} adapter(s) × {n_bases} base(s)"
    summary = facts(
        [
            (
                "checks",
                f"{len(result.rows)} in {result.elapsed_s:.2f} s ({result.checks_per_second:.0f}/s), "
                f"{result.jobs} job(s), {result.executor}"
                + (", header only (no value scans)" if result.header_only else ", with value scans"),
            ),
            ("verdicts", ", ".join(f"{n} {v}" for v, n in counts.items())),
            ("engines", ", ".join(result.engines) if result.engines else None),
        ]
    )
    per_base = {_short_base(b): {v: n for v, n in c.items() if n} for b, c in result.counts_by_base().items()}
    charts = [bar_chart_svg(per_base, title="Verdicts per base", colours=VERDICT_COLOURS)]
    cats = result.category_counts()
    if cats:
        charts.append(bar_chart_svg(cats, title="Adapter × base pairs reporting each category"))
    if result.rows:
        charts.append(
            histogram_svg(
                {"check time (ms)": [r.ms for r in result.rows]},
                bins=20,
                value_range=None,
                title="Time per check",
                x_label="milliseconds",
            )
        )
    parts = [
        section("Summary", summary),
        section("Distributions", Raw("".join(charts))),
        _grid(result),
        _errors(result),
    ]
    return page(title, *parts, subtitle=_common_root(result.adapters) or "")


def _grid(result: MatrixResult) -> Raw:
    root = _common_root(result.adapters)
    bases = list(dict.fromkeys(r.base for r in result.rows))
    by_pair = {(r.adapter, r.base): r for r in result.rows}
    head = "".join(f'<th title="{esc(b)}">{esc(_short_base(b))}</th>' for b in bases)
    body = []
    for adapter in dict.fromkeys(r.adapter for r in result.rows):
        cells = []
        for base in bases:
            row = by_pair.get((adapter, base))
            if row is None:
                cells.append("<td></td>")
                continue
            what = row.error or "; ".join(row.categories) or "no findings"
            cats = ", ".join(c for c in row.categories[:2])
            tip = f"{row.verdict}: {what} ({row.errors} error(s), {row.warnings} warning(s), {row.ms:.1f} ms)"
            cells.append(
                f'<td class="c-{esc(row.verdict)}" title="{esc(tip)}">{badge(row.verdict)} '
                f'<span class="fix">{esc(cats)}</span></td>'
            )
        label = os.path.relpath(os.path.abspath(adapter), root) if root else adapter
        body.append(f'<tr><th title="{esc(adapter)}">{esc(label)}</th>{"".join(cells)}</tr>')
    grid = (
        f'<table class="data"><thead><tr><th>adapter \\ base</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
    return section("Adapter × base", Raw(grid), note="Hover a cell for every category; the CSV has all columns.")


def _errors(result: MatrixResult) -> Raw:
    failed = [r for r in result.rows if r.verdict == "error"]
    if not failed:
        return Raw("")
    rows = [(r.adapter, r.base, r.error) for r in failed]
    return section("Checks that could not run", table(("adapter", "base", "error"), rows))


def _common_root(paths: tuple[str, ...]) -> str:
    try:
        root = os.path.commonpath([os.path.abspath(p) for p in paths]) if len(paths) > 1 else ""
    except ValueError:
        return ""
    return root if root not in ("", os.sep) else ""


def _short_base(base: str) -> str:
    name = base.rstrip("/").rsplit("/", 1)[-1] if os.sep in base or "/" in base else base
    return name if len(name) <= 32 else name[:31] + "…"
