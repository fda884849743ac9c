"""The inline SVG builders: bars per bin, one heatmap cell per row × column, distinct marks, escaping."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from loraguard.report.svg import (
    HeatCell,
    bar_chart_svg,
    binned_histogram_svg,
    colour_scale,
    heatmap_svg,
    histogram_svg,
    small_multiples,
)

NS = "{http://www.w3.org/2000/svg}"
EVIL = '<script>alert("x")</script>&"\''


def parse(svg: str) -> ET.Element:
    """Every builder must produce well-formed XML (it is also valid inline SVG in HTML)."""
    return ET.fromstring(svg)


def with_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


@pytest.mark.parametrize("bins", [1, 7, 20, 50])
def test_histogram_has_one_bar_per_bin_and_series(bins: int) -> None:
    rng = np.random.default_rng(0)
    one = parse(histogram_svg({"candidate": rng.random(500)}, bins=bins))
    assert len(with_class(one, "bar")) == bins
    two = parse(histogram_svg({"candidate": rng.random(500), "baseline": rng.random(300)}, bins=bins))
    bars = with_class(two, "bar")
    assert len(bars) == 2 * bins
    assert {b.get("data-series") for b in bars} == {"0", "1"}
    assert len({b.get("fill") for b in bars}) == 2  # the two series are distinguishable


def test_histogram_counts_every_value_and_reports_non_finite() -> None:
    values = np.array([0.0, 0.0, 0.05, 0.5, 1.0, 1.7, -3.0, np.nan, np.inf])
    root = parse(histogram_svg({"p": values}, bins=10))
    counts = [int(re.search(r"\((\d+) rows\)", b.find(f"{NS}title").text).group(1)) for b in with_class(root, "bar")]
    assert sum(counts) == 7  # out-of-range values go to the edge bins, NaN/Inf are not drawn
    assert counts[0] == 4 and counts[-1] == 2
    assert "2 non-finite not shown" in ET.tostring(root, encoding="unicode")


def test_histogram_tallest_bar_fills_the_plot_and_normalizes_series() -> None:
    root = parse(histogram_svg({"a": np.zeros(10), "b": np.zeros(1000)}, bins=4))
    heights = [float(b.get("height")) for b in with_class(root, "bar")]
    assert heights[0] == pytest.approx(heights[4]) and heights[0] > 0  # shares, not counts
    assert histogram_svg({}, bins=3).startswith("<svg")  # no series: an empty chart, no crash


def test_histogram_marker_and_value_range() -> None:
    root = parse(histogram_svg({"x": [3.0, 4.0, 5.0]}, value_range=None, marker=4.5, bins=5))
    assert len(with_class(root, "marker")) == 1
    same = parse(histogram_svg({"x": [2.0, 2.0]}, value_range=None, bins=3))  # zero-width range is widened
    assert len(with_class(same, "bar")) == 3


def test_binned_histogram_from_counts() -> None:
    root = parse(binned_histogram_svg({"candidate": [1, 2, 3], "baseline": [3, 2, 1]}, (0.0, 1.0)))
    assert len(with_class(root, "bar")) == 6


def test_small_multiples_one_chart_per_group_and_cap() -> None:
    groups = {f"rule {i}": {"c": np.random.default_rng(i).random(20)} for i in range(5)}
    html = small_multiples(groups, bins=8, max_groups=3)
    assert html.count("<svg") == 3 and "2 more group(s) not shown" in html


def heat(rows: int, cols: int, **states: set[tuple[int, int]]) -> dict[tuple[int, int], HeatCell]:
    cells = {}
    for r in range(rows):
        for c in range(cols):
            if (r, c) in states.get("missing", set()):
                continue
            cells[(r, c)] = HeatCell(
                1.0 + 0.01 * r,
                zero=(r, c) in states.get("zero", set()),
                non_finite=(r, c) in states.get("nan", set()),
                title=f"m{r}.{c}",
            )
    return cells


def test_heatmap_one_cell_per_row_and_column_with_distinct_marks() -> None:
    cells = heat(6, 3, zero={(1, 0)}, nan={(2, 1)}, missing={(3, 0), (3, 1), (3, 2)})
    rows, cols = [f"layer {i}" for i in range(6)], ["q_proj", "k_proj", "v_proj"]
    root = parse(heatmap_svg(rows, cols, cells, title="t"))
    all_cells = with_class(root, "cell")
    assert len(all_cells) == 18
    assert len(with_class(root, "cell-zero")) == 1
    assert len(with_class(root, "cell-nonfinite")) == 1
    assert len(with_class(root, "cell-missing")) == 3  # a whole layer without tensors stays visible
    assert len(with_class(root, "cell-value")) == 13
    fills = {
        "zero": with_class(root, "cell-zero")[0].find(f"{NS}rect").get("fill"),
        "nan": with_class(root, "cell-nonfinite")[0].find(f"{NS}rect").get("fill"),
        "missing": with_class(root, "cell-missing")[0].get("fill"),
    }
    value_fills = {e.get("fill") for e in with_class(root, "cell-value")}
    assert len(set(fills.values())) == 3 and not value_fills & set(fills.values())
    assert len(with_class(root, "col-label")) == 3 and len(with_class(root, "row-label")) == 6


def test_heatmap_flags_outliers_within_a_column_only() -> None:
    cells = {(r, 0): HeatCell(1.0 + 0.001 * r) for r in range(8)}
    cells |= {(r, 1): HeatCell(100.0 + r) for r in range(8)}  # another column at another scale: not outliers
    cells[(5, 0)] = HeatCell(40.0)
    root = parse(heatmap_svg([str(r) for r in range(8)], ["a", "b"], cells))
    outliers = with_class(root, "cell-outlier")
    assert len(outliers) == 1 and outliers[0].get("stroke-width") == "2.5"
    near = {(r, 0): HeatCell(1.0 + 0.02 * r) for r in range(8)}  # small spread: no outlier by noise
    assert not with_class(parse(heatmap_svg([str(r) for r in range(8)], ["a"], near)), "cell-outlier")


def test_heatmap_row_notes_and_empty_input() -> None:
    root = parse(
        heatmap_svg(["0", "1", "2"], ["q"], heat(3, 1), row_notes={2: "beyond the base"}, flag_label="not in base")
    )
    assert len(with_class(root, "row-flagged")) == 1 and len(with_class(root, "row-flag")) == 1
    assert "not in base" in ET.tostring(root, encoding="unicode")
    empty = parse(heatmap_svg([], [], {}))
    assert not with_class(empty, "cell")


def test_colour_scale_is_never_white_or_red() -> None:
    for t in np.linspace(0, 1, 41):
        colour = colour_scale(float(t))
        assert re.fullmatch(r"#[0-9a-f]{6}", colour)
        r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
        assert not (r > 200 and g > 200 and b > 200) and not (r > 180 and g < 80 and b < 80)
    assert colour_scale(-1) == colour_scale(0) and colour_scale(math.inf) == colour_scale(1)


def test_bar_chart_plain_and_stacked() -> None:
    root = parse(bar_chart_svg({"a": 3, "b": 1}, title="t"))
    assert len(with_class(root, "hbar")) == 2
    stacked = parse(
        bar_chart_svg(
            {"base 1": {"pass": 2, "fail": 3}, "base 2": {"fail": 1}},
            colours={"pass": "#0f0", "warn": "#ff0", "fail": "#f00"},
        )
    )
    bars = with_class(stacked, "hbar")
    assert [b.get("fill") for b in bars] == ["#0f0", "#f00", "#f00"]


def test_every_builder_escapes_names() -> None:
    outputs = [
        histogram_svg({EVIL: [0.1, 0.2]}, title=EVIL, x_label=EVIL),
        small_multiples({EVIL: {EVIL: [0.5]}}),
        bar_chart_svg({EVIL: {EVIL: 1.0}}, title=EVIL),
        heatmap_svg([EVIL], [EVIL], {(0, 0): HeatCell(1.0, title=EVIL)}, title=EVIL, row_notes={0: EVIL}),
    ]
    for svg in outputs:
        assert "<script" not in svg and "&lt;script&gt;" in svg
        assert 'alert("x")' not in svg  # quotes are escaped too (safe inside attributes)
    for svg in outputs[:1] + outputs[2:]:
        parse(svg)
