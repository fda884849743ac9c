"""Pure-Python inline SVG charts for the HTML reports: no JavaScript, no network, no plotting library.

- `histogram_svg`: one or more overlaid series binned on a shared range (candidate vs baseline).
- `binned_histogram_svg`: the same from counts already binned (a `MonitorSummary.histogram`).
- `small_multiples`: one small histogram per group (Jigsaw rule, module type), in a grid.
- `bar_chart_svg`: horizontal bars, optionally stacked by segment (verdicts per base).
- `heatmap_svg`: rows × columns of values on a log colour scale with a legend, and distinct marks for
  zero, non-finite and missing cells and for outliers within a column.

Every text and attribute goes through `html.escape`. Each bar, cell and mark has a `<title>` (the
browser's native tooltip) and a class (`bar`, `cell-value`, `cell-zero`, `cell-nonfinite`,
`cell-missing`, `cell-outlier`) that the tests count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
import numpy.typing as npt

from loraguard.textsafe import printable

__all__ = [
    "PALETTE",
    "HeatCell",
    "bar_chart_svg",
    "binned_histogram_svg",
    "colour_scale",
    "heatmap_svg",
    "histogram_svg",
    "small_multiples",
]

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
"""Series colours (the first two are candidate/baseline-friendly and colour-blind distinguishable)."""
_VIRIDIS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
ZERO_FILL, NONFINITE_FILL, MISSING_FILL = "#ffffff", "#d62728", "#f4f4f4"
_FONT = 'font-family="system-ui, sans-serif"'


def _e(value: object) -> str:
    return escape(printable(str(value)), quote=True)


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") if math.isfinite(x) else "0"


def _fmt(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return str(x)
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def _svg_open(width: float, height: float, label: str, cls: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" width="{_num(width)}" height="{_num(height)}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" role="img" aria-label="{_e(label)}" {_FONT}>'
        f"<title>{_e(label)}</title>"
    )


def _text(x: float, y: float, text: str, *, size: int = 11, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{_num(x)}" y="{_num(y)}" font-size="{size}" text-anchor="{anchor}" {extra}>{_e(text)}</text>'


# --- histograms -----------------------------------------------------------------------------------------


def histogram_svg(
    series: Mapping[str, npt.ArrayLike],
    *,
    bins: int = 20,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    title: str = "",
    x_label: str = "",
    width: int = 560,
    height: int = 250,
    marker: float | None = None,
    normalize: bool | None = None,
) -> str:
    """Overlaid histograms of `series` (name → values) on shared bins; NaN/Inf are counted, not drawn.

    Values outside `value_range` go to the edge bins. `normalize` (default: with more than one
    series) plots the share of each series' values per bin so series of different sizes compare.
    `marker` draws a dashed vertical line (a decision threshold).
    """
    arrays = {name: np.asarray(values, dtype=np.float64).ravel() for name, values in series.items()}
    finite = {name: a[np.isfinite(a)] for name, a in arrays.items()}
    if value_range is None:
        pooled = np.concatenate(list(finite.values()) or [np.zeros(0)])
        lo, hi = (float(pooled.min()), float(pooled.max())) if pooled.size else (0.0, 1.0)
        value_range = (lo - 0.5, hi + 0.5) if hi <= lo else (lo, hi)
    lo, hi = value_range
    counts = {
        name: np.histogram(np.clip(a, lo, hi), bins=bins, range=(lo, hi))[0].tolist() for name, a in finite.items()
    }
    dropped = {name: int(arrays[name].size - finite[name].size) for name in arrays}
    return binned_histogram_svg(
        counts,
        value_range,
        title=title,
        x_label=x_label,
        width=width,
        height=height,
        marker=marker,
        normalize=normalize,
        non_finite=dropped,
    )


def binned_histogram_svg(
    counts: Mapping[str, Sequence[int]],
    value_range: tuple[float, float] = (0.0, 1.0),
    *,
    title: str = "",
    x_label: str = "",
    width: int = 560,
    height: int = 250,
    marker: float | None = None,
    normalize: bool | None = None,
    non_finite: Mapping[str, int] | None = None,
) -> str:
    """Overlaid histograms from per-series bin counts over equal-width bins of `value_range`."""
    names = list(counts)
    bins = max((len(c) for c in counts.values()), default=0)
    normalize = len(names) > 1 if normalize is None else normalize
    heights: dict[str, list[float]] = {}
    for name in names:
        total = sum(counts[name])
        scale = (1.0 / total if total else 0.0) if normalize else 1.0
        heights[name] = [c * scale for c in counts[name]]
    top = max((max(h, default=0.0) for h in heights.values()), default=0.0) or 1.0
    left, right, top_pad, bottom = 48, 12, 26 + 14 * len(names), 38
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    lo, hi = value_range
    out = [_svg_open(width, height, title or "histogram", "chart histogram")]
    if title:
        out.append(_text(left, 15, title, size=13, extra='font-weight="600"'))
    out.append(f'<rect x="{left}" y="{top_pad}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>')
    bar_w = plot_w / bins if bins else 0.0
    for s, name in enumerate(names):
        colour = PALETTE[s % len(PALETTE)]
        for i, value in enumerate(heights[name]):
            h = plot_h * value / top
            b_lo, b_hi = lo + (hi - lo) * i / bins, lo + (hi - lo) * (i + 1) / bins
            shown = f"{value:.1%}" if normalize else f"{int(value)}"
            out.append(
                f'<rect class="bar" data-series="{s}" x="{_num(left + i * bar_w + 0.5)}" '
                f'y="{_num(top_pad + plot_h - h)}" width="{_num(max(bar_w - 1, 0.5))}" height="{_num(h)}" '
                f'fill="{colour}" fill-opacity="{0.55 if len(names) > 1 else 0.85}">'
                f"<title>{_e(name)}: [{_fmt(b_lo)}, {_fmt(b_hi)}) {shown} ({counts[name][i]} rows)</title></rect>"
            )
    if marker is not None and lo <= marker <= hi:
        mx = left + plot_w * (marker - lo) / (hi - lo)
        out.append(
            f'<line class="marker" x1="{_num(mx)}" x2="{_num(mx)}" y1="{top_pad}" y2="{top_pad + plot_h}" '
            f'stroke="#333" stroke-dasharray="4 3"><title>threshold {_fmt(marker)}</title></line>'
        )
    y_top = f"{top:.0%}" if normalize else f"{round(top)}"
    out.append(_text(left - 4, top_pad + 9, y_top, size=10, anchor="end"))
    out.append(_text(left - 4, top_pad + plot_h, "0", size=10, anchor="end"))
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        out.append(
            _text(left + plot_w * frac, top_pad + plot_h + 13, _fmt(lo + (hi - lo) * frac), size=10, anchor=anchor)
        )
    if x_label:
        out.append(_text(left + plot_w / 2, height - 6, x_label, size=11, anchor="middle"))
    for s, name in enumerate(names):
        y = 22 + 14 * s
        n, bad = sum(counts[name]), (non_finite or {}).get(name, 0)
        label = f"{name} (n={n}" + (f", {bad} non-finite not shown)" if bad else ")")
        colour = PALETTE[s % len(PALETTE)]
        out.append(f'<rect class="legend" x="{left}" y="{y}" width="10" height="10" fill="{colour}"/>')
        out.append(_text(left + 14, y + 9, label, size=11))
    out.append("</svg>")
    return "".join(out)


def small_multiples(
    groups: Mapping[str, Mapping[str, npt.ArrayLike]],
    *,
    bins: int = 20,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    width: int = 360,
    height: int = 190,
    marker: float | None = None,
    max_groups: int = 30,
) -> str:
    """One small `histogram_svg` per group in a wrapping grid (`<div class="multiples">`)."""
    items = list(groups.items())
    fits = max(12, (width - 56) // 7)  # characters of a 13px title that fit the chart
    cells = [
        f'<figure class="multiple">{histogram_svg(series, bins=bins, value_range=value_range, title=_short(name, fits), width=width, height=height, marker=marker)}'  # noqa: E501
        f"<figcaption>{_e(name)}</figcaption></figure>"
        for name, series in items[:max_groups]
    ]
    more = len(items) - max_groups
    if more > 0:
        cells.append(f'<p class="note">{more} more group(s) not shown.</p>')
    return f'<div class="multiples">{"".join(cells)}</div>'


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


# --- bars -----------------------------------------------------------------------------------------------


def bar_chart_svg(
    items: Mapping[str, float | Mapping[str, float]],
    *,
    title: str = "",
    width: int = 560,
    colours: Mapping[str, str] | None = None,
    label_width: int = 190,
) -> str:
    """Horizontal bars, one per item; an item given as {segment: value} is a stacked bar."""
    rows = [(label, value if isinstance(value, Mapping) else {"": value}) for label, value in items.items()]
    used = {seg for _, parts in rows for seg in parts}
    segments = [s for s in (colours or {}) if s in used]  # the colours' order first (pass, warn, fail...)
    segments += [s for s in dict.fromkeys(seg for _, parts in rows for seg in parts) if s not in segments]
    colour_of = {seg: (colours or {}).get(seg, PALETTE[i % len(PALETTE)]) for i, seg in enumerate(segments)}
    legend = [seg for seg in segments if seg]
    top_pad = 24 + (16 if legend else 0)
    bar_h, gap = 16, 5
    height = top_pad + len(rows) * (bar_h + gap) + 10
    plot_w = width - label_width - 60
    peak = max((sum(parts.values()) for _, parts in rows), default=0.0) or 1.0
    out = [_svg_open(width, height, title or "bar chart", "chart bars")]
    if title:
        out.append(_text(4, 15, title, size=13, extra='font-weight="600"'))
    x = 4.0
    for seg in legend:
        out.append(f'<rect class="legend" x="{_num(x)}" y="24" width="10" height="10" fill="{colour_of[seg]}"/>')
        out.append(_text(x + 14, 33, seg, size=11))
        x += 24 + 7 * len(seg)
    for r, (label, parts) in enumerate(rows):
        y = top_pad + r * (bar_h + gap)
        out.append(
            f'<text class="bar-label" x="{label_width - 6}" y="{y + 12}" font-size="11" text-anchor="end">'
            f"<title>{_e(label)}</title>{_e(_short(label, max(8, (label_width - 10) // 6)))}</text>"
        )
        offset = float(label_width)
        for seg, value in parts.items():
            w = plot_w * value / peak
            name = f"{label} {seg}".strip()
            out.append(
                f'<rect class="hbar" x="{_num(offset)}" y="{y}" width="{_num(w)}" height="{bar_h}" '
                f'fill="{colour_of[seg]}"><title>{_e(name)}: {_fmt(value)}</title></rect>'
            )
            offset += w
        out.append(_text(offset + 4, y + 12, _fmt(sum(parts.values())), size=10))
    out.append("</svg>")
    return "".join(out)


# --- heatmap --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeatCell:
    """One heatmap cell; a (row, column) pair without a cell is drawn as missing."""

    value: float
    zero: bool = False
    non_finite: bool = False
    title: str = ""


def colour_scale(t: float) -> str:
    """Viridis-like colour for t in [0, 1] (dark purple to yellow; never white or red)."""
    t = min(max(t, 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(t), len(_VIRIDIS) - 2)
    f = t - i
    rgb = (round(a + (b - a) * f) for a, b in zip(_VIRIDIS[i], _VIRIDIS[i + 1], strict=True))
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _outliers(
    cells: Mapping[tuple[int, int], HeatCell], threshold: float = 3.5, min_log_deviation: float = math.log10(1.5)
) -> set[tuple[int, int]]:
    """Cells whose value is a robust outlier within their column.

    Outlier: |modified z| of the log-value above `threshold` and at least 1.5× (by default) away from
    the column's median, so that a column of near-identical values has no outliers by noise.
    """
    found: set[tuple[int, int]] = set()
    for col in {c for _, c in cells}:
        keys = [k for k, cell in cells.items() if k[1] == col and _plottable(cell)]
        if len(keys) < 4:
            continue
        logs = np.log10([cells[k].value for k in keys])
        med = float(np.median(logs))
        mad = float(np.median(np.abs(logs - med)))
        for k, x in zip(keys, logs, strict=True):
            dev = abs(float(x) - med)
            robust = mad <= 1e-9 or 0.6745 * dev / mad > threshold
            if robust and dev > min_log_deviation:
                found.add(k)
    return found


def _plottable(cell: HeatCell) -> bool:
    return not cell.zero and not cell.non_finite and math.isfinite(cell.value) and cell.value > 0


def heatmap_svg(
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    cells: Mapping[tuple[int, int], HeatCell],
    *,
    title: str = "",
    value_label: str = "value",
    row_notes: Mapping[int, str] | None = None,
    flag_label: str = "",
    max_width: int = 1100,
) -> str:
    """A rows × columns heatmap on a log colour scale, with a legend.

    Zero cells are white with a black diagonal, non-finite cells red with a white cross, missing cells
    (no entry in `cells`) light grey with a dashed outline, and robust outliers within a column get a
    thick black outline. `row_notes` marks rows (e.g. layers the base lacks) with a red label whose
    tooltip is the note; each run of marked rows starts with a red dashed line and `flag_label`.
    """
    nr, nc = len(row_labels), len(col_labels)
    notes = row_notes or {}
    label_w = 12 + 7 * max((len(r) for r in row_labels), default=4) + (14 if notes else 0)
    col_chars = max((len(c) for c in col_labels), default=4)
    head_h = 30 + int(6.2 * min(col_chars, 34) * 0.72)
    cw = max(14.0, min(70.0, (max_width - label_w - 20) / max(nc, 1)))
    ch = max(9.0, min(22.0, 560 / max(nr, 1)))
    legend_h = 70
    width = max(label_w + cw * nc + 20 + (150 if notes else 0), 700)
    height = head_h + ch * nr + legend_h
    plotted = [c.value for c in cells.values() if _plottable(c)]
    lo, hi = (math.log10(min(plotted)), math.log10(max(plotted))) if plotted else (0.0, 1.0)
    span = (hi - lo) or 1.0
    outliers = _outliers(cells)
    out = [_svg_open(width, height, title or "heatmap", "chart heatmap")]
    if title:
        out.append(_text(4, 15, title, size=13, extra='font-weight="600"'))
    for c, label in enumerate(col_labels):
        cx, cy = label_w + cw * (c + 0.5), head_h - 6.0
        out.append(
            f'<text class="col-label" x="{_num(cx)}" y="{_num(cy)}" font-size="11" '
            f'transform="rotate(-45 {_num(cx)} {_num(cy)})"><title>{_e(label)}</title>'
            f"{_e(_tail(label, 34))}</text>"
        )
    for r, label in enumerate(row_labels):
        y = head_h + ch * r
        note = notes.get(r)
        colour = ' fill="#c00000" font-weight="600"' if note else ""
        text = f"{label} ✕" if note else label
        tip = f"<title>{_e(note)}</title>" if note else ""
        out.append(
            f'<text class="row-label{" row-flagged" if note else ""}" x="{label_w - 4}" '
            f'y="{_num(y + ch * 0.75)}" font-size="{min(11, int(ch))}" text-anchor="end"{colour}>'
            f"{tip}{_e(text)}</text>"
        )
        out.extend(
            _cell(
                cells.get((r, c)),
                (r, c) in outliers,
                label_w + cw * c,
                y,
                cw,
                ch,
                lo,
                span,
                f"{label} · {col_labels[c]}",
            )
            for c in range(nc)
        )
    grid_right = label_w + cw * nc
    for r in sorted(notes):
        if r - 1 not in notes and r < nr:
            fy = head_h + ch * r
            out.append(
                f'<line class="row-flag" x1="4" x2="{_num(grid_right + 6)}" y1="{_num(fy)}" y2="{_num(fy)}" '
                f'stroke="#c00000" stroke-width="1.5" stroke-dasharray="5 3"/>'
            )
            if flag_label:
                out.append(
                    _text(
                        grid_right + 10, fy + ch * 0.75, flag_label, size=11, extra='fill="#c00000" font-weight="600"'
                    )
                )
    out.append(_legend(4, head_h + ch * nr + 14, lo, hi, value_label, bool(plotted)))
    out.append("</svg>")
    return "".join(out)


def _cell(
    cell: HeatCell | None, outlier: bool, x: float, y: float, w: float, h: float, lo: float, span: float, where: str
) -> str:
    box = f'x="{_num(x + 1)}" y="{_num(y + 1)}" width="{_num(w - 2)}" height="{_num(h - 2)}"'
    x1, y1, x2, y2 = _num(x + 2), _num(y + 2), _num(x + w - 2), _num(y + h - 2)
    if cell is None:
        return (
            f'<rect class="cell cell-missing" {box} fill="{MISSING_FILL}" stroke="#999" '
            f'stroke-dasharray="2 2"><title>{_e(where)}: missing (no adapter tensors)</title></rect>'
        )
    tip = f"<title>{_e(cell.title or where)}</title>"
    if cell.non_finite:
        return (
            f'<g class="cell cell-nonfinite"><rect {box} fill="{NONFINITE_FILL}"/>'
            f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#fff" stroke-width="1.5"/>'
            f'<line x1="{x1}" y1="{y2}" x2="{x2}" y2="{y1}" stroke="#fff" stroke-width="1.5"/>{tip}</g>'
        )
    if cell.zero or not _plottable(cell):
        return (
            f'<g class="cell cell-zero"><rect {box} fill="{ZERO_FILL}" stroke="#111"/>'
            f'<line x1="{x1}" y1="{y2}" x2="{x2}" y2="{y1}" stroke="#111" stroke-width="1.2"/>{tip}</g>'
        )
    fill = colour_scale((math.log10(cell.value) - lo) / span)
    extra = ' stroke="#000" stroke-width="2.5"' if outlier else ""
    cls = "cell cell-value cell-outlier" if outlier else "cell cell-value"
    return f'<rect class="{cls}" {box} fill="{fill}"{extra}>{tip}</rect>'


def _legend(x: float, y: float, lo: float, hi: float, value_label: str, has_values: bool) -> str:
    out = ['<g class="legend">']
    steps, w = 24, 8
    out.extend(
        f'<rect x="{_num(x + i * w)}" y="{_num(y)}" width="{w}" height="12" fill="{colour_scale(i / (steps - 1))}"/>'
        for i in range(steps)
    )
    if has_values:
        out.append(_text(x, y + 26, _fmt(10**lo), size=10))
        out.append(_text(x + steps * w, y + 26, _fmt(10**hi), size=10, anchor="end"))
    out.append(_text(x, y + 40, f"{value_label} (log scale)", size=10))
    sx = x + steps * w + 30
    swatches = (
        ("zero", f'fill="{ZERO_FILL}" stroke="#111"'),
        ("non-finite (NaN/Inf)", f'fill="{NONFINITE_FILL}"'),
        ("missing", f'fill="{MISSING_FILL}" stroke="#999" stroke-dasharray="2 2"'),
        ("outlier in its column", 'fill="#21918c" stroke="#000" stroke-width="2.5"'),
    )
    for label, style in swatches:
        out.append(f'<rect x="{_num(sx)}" y="{_num(y)}" width="14" height="12" {style}/>')
        out.append(_text(sx + 18, y + 10, label, size=10))
        sx += 30 + 6 * len(label)
    out.append("</g>")
    return "".join(out)
