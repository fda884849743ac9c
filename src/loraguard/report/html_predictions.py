"""Prediction histograms as a self-contained page (`score --report`), and the pieces `gate --html` shares.

from loraguard.report.html_predictions import write_predictions_html
write_predictions_html({"adapted": probs, "base": base_probs}, groups=rules, path="report.html")
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from loraguard.errors import InputError
from loraguard.report.html import Raw, page, section, table, write_html
from loraguard.report.svg import histogram_svg, small_multiples

__all__ = [
    "grouped_series",
    "predictions_sections",
    "render_predictions_html",
    "series_table",
    "write_predictions_html",
]


def write_predictions_html(
    series: Mapping[str, npt.ArrayLike],
    groups: npt.ArrayLike | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    title: str = "loraguard predictions",
    threshold: float | None = 0.5,
    labels: npt.ArrayLike | None = None,
    notes: Sequence[tuple[str, object]] = (),
) -> Path:
    """Write histograms of one or more prediction series (name → probabilities) to `path`.

    Every series must have one value per row (same length when `groups` or `labels` are given).
    `groups` (one label per row, e.g. the Jigsaw rule) adds one small chart per group with every
    series overlaid; `labels` (0/1 per row) adds negatives vs positives per series; `threshold`
    draws the decision threshold; `notes` are extra (label, value) lines for the summary.
    """
    if path is None and isinstance(groups, (str, os.PathLike)):  # write_predictions_html(series, "out.html")
        groups, path = None, groups
    if path is None:
        raise TypeError("write_predictions_html() needs a path")
    return write_html(
        path, render_predictions_html(series, groups, title=title, threshold=threshold, labels=labels, notes=notes)
    )


def render_predictions_html(
    series: Mapping[str, npt.ArrayLike],
    groups: npt.ArrayLike | None = None,
    *,
    title: str = "loraguard predictions",
    threshold: float | None = 0.5,
    labels: npt.ArrayLike | None = None,
    notes: Sequence[tuple[str, object]] = (),
) -> str:
    """The complete HTML document of `write_predictions_html`."""
    arrays = {str(k): np.asarray(v, dtype=np.float64).ravel() for k, v in series.items()}
    parts: list[str] = []
    if notes:
        parts.append(section("Summary", table(("", ""), [(k, v) for k, v in notes])))
    parts += predictions_sections(arrays, groups, threshold=threshold, labels=labels)
    sub = ", ".join(f"{k}: {v.size} rows" for k, v in arrays.items())
    return page(title, *parts, subtitle=sub)


def predictions_sections(
    arrays: Mapping[str, np.ndarray],
    groups: npt.ArrayLike | None = None,
    *,
    threshold: float | None = 0.5,
    labels: npt.ArrayLike | None = None,
) -> list[str]:
    """Sections: statistics per series, overlaid histograms, by label, and per group."""
    out: list[str] = [
        section("Statistics", series_table(arrays, threshold)),
        section(
            "Distribution",
            Raw(
                histogram_svg(
                    arrays,
                    bins=25,
                    title="Predicted probability",
                    x_label="probability",
                    marker=threshold,
                    width=760,
                    height=300,
                )
            ),
        ),
    ]
    if labels is not None:
        y = np.asarray(labels).ravel()
        charts = []
        for name, values in arrays.items():
            if values.size != y.size:
                raise InputError(f"labels have {y.size} rows but series {name!r} has {values.size}")
            charts.append(
                histogram_svg(
                    {"negatives (label 0)": values[y == 0], "positives (label 1)": values[y == 1]},
                    bins=25,
                    title=f"{name}: by true label",
                    marker=threshold,
                )
            )
        out.append(
            section(
                "By true label",
                Raw("".join(charts)),
                note="A useful classifier separates the two: positives to the right of the threshold.",
            )
        )
    if groups is not None:
        per = grouped_series(arrays, groups)
        out.append(
            section(
                f"Per group ({len(per)})",
                Raw(small_multiples(per, bins=20, marker=threshold)),
                note="One chart per group, every series overlaid (share of the group's rows per bin).",
            )
        )
    return out


def grouped_series(arrays: Mapping[str, np.ndarray], groups: npt.ArrayLike) -> dict[str, dict[str, np.ndarray]]:
    """group → series name → that group's values, groups largest first."""
    g = np.asarray(groups).astype(str).ravel()
    for name, values in arrays.items():
        if values.size != g.size:
            raise InputError(f"groups have {g.size} rows but series {name!r} has {values.size}")
    names, counts = np.unique(g, return_counts=True)
    order = [str(n) for _, n in sorted(zip(-counts, names, strict=True))]
    return {name: {k: v[g == name] for k, v in arrays.items()} for name in order}


def series_table(arrays: Mapping[str, np.ndarray], threshold: float | None) -> Raw:
    """Rows, mean, spread, share above the threshold and distinct values per series; a constant series
    (every prediction 0.0, the failure loraguard exists for) is flagged in red."""
    rows, classes = [], []
    for name, v in arrays.items():
        finite = v[np.isfinite(v)]
        values, counts = np.unique(np.round(finite, 6), return_counts=True)
        distinct = int(values.size)
        top = float(counts.max() / finite.size) if finite.size else 0.0
        flag = (
            "CONSTANT: every prediction is the same"
            if finite.size > 1 and distinct == 1
            else f"{top:.0%} of predictions are {values[counts.argmax()]:g}"
            if finite.size > 9 and top >= 0.9
            else ""
        )
        share = f"{float((finite >= threshold).mean()):.1%}" if threshold is not None and finite.size else "—"
        stats = (
            (f"{finite.mean():.4f}", f"{finite.std():.4f}", f"{finite.min():.4f}", f"{finite.max():.4f}")
            if finite.size
            else ("—",) * 4
        )
        rows.append((name, v.size, v.size - finite.size, *stats, share, distinct, flag))
        classes.append((9, "sev-error") if flag else (0, ""))
    head = (
        "series",
        "rows",
        "NaN/Inf",
        "mean",
        "std",
        "min",
        "max",
        f"≥ {threshold:g}" if threshold is not None else "≥ threshold",
        "distinct",
        "",
    )
    return table(head, rows, numeric=range(1, 9), cell_class=classes)
