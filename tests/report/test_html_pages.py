"""The HTML pages (check, gate, predictions, matrix): content, escaping, no scripts or network, atomic writes."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import loraguard
from loraguard.checks.report import CheckReport, ModuleNorm
from loraguard.errors import InputError
from loraguard.findings import Finding, Severity, Verdict
from loraguard.report.html import badge, esc, table, write_html
from loraguard.report.html_check import heatmap_grid, render_check_html, write_check_html
from loraguard.report.html_gate import render_gate_html, write_gate_html
from loraguard.report.html_predictions import render_predictions_html, write_predictions_html

EVIL = '<script>alert(1)</script><img src=x onerror=alert(2)>"'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def assert_self_contained(page: str) -> None:
    """No script, no event handler, nothing fetched: only inline SVG and CSS."""
    tags = tags_of(page)
    names = {t for t, _ in tags}
    assert "script" not in names and "img" not in names and "iframe" not in names and "link" not in names
    for _, attrs in tags:
        assert not any(k.startswith("on") for k in attrs), attrs
        assert "src" not in attrs and "href" not in attrs
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)


def test_check_page_shows_verdict_findings_and_heatmap(synthetic) -> None:
    report = loraguard.check(synthetic.broken, synthetic.base, norms=True)
    page = render_check_html(report)
    assert_self_contained(page)
    assert 'class="badge v-fail"' in page and "non-finite-weights" in page and "layer-mismatch" in page
    assert page.count('class="cell cell-missing"') == 4  # layer 1: four module types without tensors
    assert page.count("cell cell-zero") == 4 and page.count("cell cell-nonfinite") == 4
    assert page.count("row-flagged") == 4  # layers 4–7 are beyond the 4-layer base
    assert page.count("cell cell-value cell-outlier") == 4  # layer 0 is 60× the rest of each column
    assert "Norm distribution per module type" in page


def test_heatmap_grid_rows_cover_base_and_adapter_layers() -> None:
    norms = (
        ModuleNorm("model.layers.0.self_attn.q_proj", 0, "self_attn.q_proj", 1.0, False, False),
        ModuleNorm("model.layers.2.mlp.down_proj", 2, "mlp.down_proj", 0.0, True, False),
        ModuleNorm("lm_head", None, "lm_head", 3.0, False, False),
    )
    rows, cols, cells, notes = heatmap_grid(norms, base_layers=5)
    assert rows == [f"layer {i}" for i in range(5)] and cols == ["self_attn.q_proj", "mlp.down_proj"]
    assert set(cells) == {(0, 0), (2, 1)} and cells[(2, 1)].zero and not notes
    rows, _, _, notes = heatmap_grid(norms, base_layers=2)
    assert len(rows) == 3 and set(notes) == {2}
    t5 = (
        ModuleNorm("encoder.block.0.layer.0.SelfAttention.q", 0, "layer.0.SelfAttention.q", 1.0, False, False),
        ModuleNorm("decoder.block.0.layer.0.SelfAttention.q", 0, "layer.0.SelfAttention.q", 2.0, False, False),
    )
    _, cols, cells, _ = heatmap_grid(t5)
    assert sorted(cols) == ["decoder:layer.0.SelfAttention.q", "encoder:layer.0.SelfAttention.q"] and len(cells) == 2


def test_check_page_without_norms_or_base_says_so(synthetic) -> None:
    report = loraguard.check(synthetic.healthy, synthetic.base)
    page = render_check_html(report)
    assert "No weight norms" in page and "<svg" not in page and 'class="badge v-pass"' in page
    missing = render_check_html(loraguard.check(synthetic.base / "nowhere"))
    assert "unreadable" in missing and "No weight norms" in missing


def test_check_page_escapes_every_name() -> None:
    finding = Finding("LG301", "shape-mismatch", Severity.ERROR, f"module {EVIL}", fix=EVIL)
    norms = tuple(ModuleNorm(f"model.layers.{i}.{EVIL}", i, EVIL, 1.0 + i, False, False) for i in range(5))
    report = CheckReport(
        Verdict.FAIL,
        {"name": EVIL, "ref": EVIL, "claimed_base": EVIL, "target_modules": [EVIL]},
        {
            "name": EVIL,
            "architecture": EVIL,
            "num_layers": 5,
            "hidden_size": 1,
            "vocab_size": 1,
            "params_b": 0.1,
            "source": EVIL,
        },
        (finding,),
        module_norms=norms,
    )
    page = render_check_html(report)
    assert_self_contained(page)
    assert "<script>" not in page and "<img" not in page and "&lt;script&gt;" in page


def test_writes_are_atomic_and_replace(tmp_path: Path, synthetic) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    write_check_html(loraguard.check(synthetic.healthy, synthetic.base, norms=True), target)
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temporary file left behind
    with pytest.raises(InputError, match="no such folder"):
        write_html(tmp_path / "missing-dir" / "x.html", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_gate_page_with_predictions_and_labels(gate_files) -> None:
    from loraguard.gate import run_gate
    from loraguard.monitor.predictions import read_labels, read_predictions

    cand, base = read_predictions(gate_files.candidate), read_predictions(gate_files.baseline)
    labels = read_labels(gate_files.labels)
    report = run_gate(cand, base, labels)
    page = render_gate_html(report, cand, base, labels=labels)
    assert_self_contained(page)
    assert "Checks" in page and "By true label" in page and "Per group (3)" in page and "AUC per group" in page
    assert page.count('data-series="1"') >= 25  # candidate vs baseline overlaid
    assert "No &lt;b&gt;advertising&lt;/b&gt;" in page and "<b>advertising" not in page
    bare = render_gate_html(report)  # the report alone: binned monitor histograms
    assert "monitor bins" in bare and "By true label" not in bare
    arrays = render_gate_html(report, cand.values, base.values)
    assert "Distribution" in arrays


def test_write_gate_html_needs_a_path(gate_files, tmp_path: Path) -> None:
    from loraguard.gate import run_gate
    from loraguard.monitor.predictions import read_predictions

    cand, base = read_predictions(gate_files.candidate), read_predictions(gate_files.baseline)
    report = run_gate(cand, base)
    with pytest.raises(TypeError):
        write_gate_html(report, cand, base)
    assert write_gate_html(report, cand, base, tmp_path / "g.html").is_file()


def test_predictions_page_flags_constant_series_and_groups(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    series = {"adapted": np.zeros(200), "base": rng.random(200)}
    groups = np.array(["rule A", "rule B"] * 100)
    labels = (rng.random(200) < 0.4).astype(int)
    page = render_predictions_html(series, groups, labels=labels, notes=[("model", EVIL)])
    assert_self_contained(page)
    assert "CONSTANT: every prediction is the same" in page and "Per group (2)" in page
    assert "adapted: by true label" in page and "&lt;script&gt;" in page
    out = write_predictions_html(series, groups, tmp_path / "p.html")
    assert out.read_text().count("<svg") >= 3
    assert write_predictions_html(series, tmp_path / "q.html").is_file()  # path as the second argument
    with pytest.raises(TypeError):
        write_predictions_html(series)
    with pytest.raises(ValueError, match="groups have 3 rows"):
        render_predictions_html(series, ["a", "b", "c"])


def test_matrix_page_with_error_rows_and_hostile_names() -> None:
    from loraguard.matrix import MatrixResult, MatrixRow
    from loraguard.report.html_matrix import render_matrix_html

    rows = (
        MatrixRow(f"/a/{EVIL}", EVIL, "error", error=f"RuntimeError: {EVIL}"),
        MatrixRow("/a/ok", EVIL, "pass", categories=("provenance",), ms=2.0),
    )
    page = render_matrix_html(MatrixResult(rows, (f"/a/{EVIL}", "/a/ok"), (EVIL,), 2, "process", True, 0.5))
    assert_self_contained(page)
    assert "Checks that could not run" in page and "<script>" not in page and 'class="c-error"' in page
    empty = render_matrix_html(MatrixResult((), (), (None,), 1, "serial", False, 0.0))
    assert "0 pass" in empty


def test_html_helpers_escape() -> None:
    assert esc(EVIL).startswith("&lt;script&gt;") and esc(None) == ""
    assert "v-fail" in badge("fail") and "v-none" in badge(EVIL) and "<script" not in badge(EVIL)
    assert "<script" not in table((EVIL,), [(EVIL,)])
