"""Reports in a notebook and a REPL: `_repr_html_` fragments, `repr`/`str`/`_repr_pretty_` text, lazy wiring."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import loraguard
from loraguard.display import renderable
from loraguard.report.check_formatter import CheckFormatter
from loraguard.report.gate_formatter import GateFormatter
from loraguard.report.html import FRAGMENT_CLASS, scoped_css

EVIL = '<script>alert(1)</script><img src=x onerror=alert(2)>"'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_fragment(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """One scoped `<div>`: no document, no script or handler, nothing fetched, every style rule scoped."""
    assert html.startswith(f'<div class="{FRAGMENT_CLASS}"><style>') and html.endswith("</div>")
    parser = _Tags()
    parser.feed(html)
    names = {t for t, _ in parser.tags}
    assert not names & {"html", "head", "body", "script", "img", "iframe", "link", "meta"}
    for _, attrs in parser.tags:
        assert not any(k.startswith("on") for k in attrs), attrs
        assert "src" not in attrs and "href" not in attrs
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html)
    style = html[html.index("<style>") + 7 : html.index("</style>")]
    selectors = [s.strip() for block in re.findall(r"([^{}]+)\{", style) for s in block.split(",")]
    assert selectors and all(s.startswith(f"div.{FRAGMENT_CLASS}") for s in selectors), selectors
    return parser.tags


class _Printer:
    """What IPython hands `_repr_pretty_`."""

    def __init__(self) -> None:
        self.out = ""

    def text(self, value: str) -> None:
        self.out += value


def test_a_check_report_shows_itself(synthetic: Any) -> None:
    report = loraguard.check(synthetic.broken, synthetic.base, norms=True)
    text = CheckFormatter().text(report).rstrip("\n")
    assert repr(report) == text and str(report) == text and text.startswith("FAIL ")
    printer = _Printer()
    report._repr_pretty_(printer, False)  # type: ignore[attr-defined]
    assert printer.out == text
    html = report._repr_html_()  # type: ignore[attr-defined]
    tags = assert_fragment(html)
    assert sum(t == "svg" for t, _ in tags) >= 2  # the heatmap and the norm distributions
    assert "FAIL" in html and "LG302" in html and "layer 7" in html


def test_a_check_report_without_norms_says_how_to_get_the_heatmap(synthetic: Any) -> None:
    html = loraguard.check(synthetic.healthy, synthetic.base)._repr_html_()  # type: ignore[attr-defined]
    assert_fragment(html)
    assert "check(..., norms=True)" in html and "PASS" in html


def test_names_are_escaped_in_the_fragment(tmp_path: Path) -> None:
    from loraguard.checks.report import CheckReport
    from loraguard.findings import Finding, Severity, Verdict

    finding = Finding("LG301", "shape-mismatch", Severity.ERROR, f"module {EVIL}", f"fix {EVIL}")
    report = CheckReport(Verdict.FAIL, {"name": EVIL, "ref": EVIL}, None, (finding,))
    html = report._repr_html_()  # type: ignore[attr-defined]
    assert_fragment(html)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_gate_report_shows_itself(gate_files: Any) -> None:
    from loraguard.gate import run_gate
    from loraguard.monitor.predictions import read_labels, read_predictions

    report = run_gate(
        read_predictions(gate_files.candidate), read_predictions(gate_files.baseline), read_labels(gate_files.labels)
    )
    assert repr(report) == GateFormatter().text(report).rstrip("\n")
    html = report._repr_html_()  # type: ignore[attr-defined]
    tags = assert_fragment(html)
    assert sum(t == "svg" for t, _ in tags) >= 2 and "Checks" in html and "AUC per group" in html
    assert "No &lt;b&gt;advertising&lt;/b&gt;" in html  # a rule name carrying markup stays text


def test_styles_are_scoped_to_the_fragment() -> None:
    css = "body { color: red; }\n:root { x: 1; }\nheader h1, .note { margin: 0; }"
    assert scoped_css(css, "div.s").splitlines() == [
        "div.s { color: red; }",
        "div.s { x: 1; }",
        "div.s header h1, div.s .note { margin: 0; }",
    ]


def test_renderers_are_found_lazily_without_torch(synthetic: Any) -> None:
    """The check's room never imports report/: the first display imports the renderers (and no torch)."""
    code = (
        "import sys\n"
        "from loraguard.checks.checker import check\n"
        f"r = check({str(synthetic.broken)!r}, {str(synthetic.base)!r})\n"
        "before = 'loraguard.report.notebook' in sys.modules\n"
        "html = r._repr_html_()\n"
        "print(before, 'loraguard.report.notebook' in sys.modules, html.startswith('<div'), repr(r).split()[0],"
        " [m for m in ('torch', 'transformers', 'peft') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "True", "FAIL", "[]"]


@renderable
@dataclass(frozen=True)
class _Unregistered:
    value: int


def test_without_a_renderer_the_dataclass_repr_stays() -> None:
    item = _Unregistered(3)
    assert repr(item).endswith("_Unregistered(value=3)")
    assert item._repr_html_() is None  # type: ignore[attr-defined]
    printer = _Printer()
    item._repr_pretty_(printer, False)  # type: ignore[attr-defined]
    assert printer.out.endswith("_Unregistered(value=3)")


# ------------------------------------------------------------------ reports of real models (torch)


@pytest.fixture(scope="module")
def rows_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from loraguard.scoring.builtin_rows import COLUMNS, builtin_rows

    path = tmp_path_factory.mktemp("notebook-rows") / "rows.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(builtin_rows())
    return path


@pytest.mark.slow
def test_a_probe_report_shows_itself(probe_models: Any) -> None:
    from loraguard.probe import probe
    from loraguard.report.probe_formatter import ProbeFormatter

    report = probe(probe_models.degenerate, probe_models.base, samples=8, batch_size=1, device="cpu")
    assert repr(report) == ProbeFormatter().text(report).rstrip("\n")
    html = report._repr_html_()  # type: ignore[attr-defined]
    tags = assert_fragment(html)
    assert sum(t == "svg" for t, _ in tags) >= 1
    assert "P(Yes) with and without the adapter" in html and "LG602" in html
    assert "degenerate only with the adapter" in html


@pytest.mark.slow
def test_a_score_report_shows_itself(probe_models: Any, rows_csv: Path, tmp_path: Path) -> None:
    from loraguard.report.score_formatter import ScoreFormatter
    from loraguard.scoring.pipeline import score_file

    report = score_file(rows_csv, probe_models.base, [probe_models.healthy], out=tmp_path / "pred.csv", device="cpu")
    assert repr(report) == ScoreFormatter().text(report).rstrip("\n")
    html = report._repr_html_()  # type: ignore[attr-defined]
    tags = assert_fragment(html)
    assert sum(t == "svg" for t, _ in tags) >= 2  # the distribution and the per-rule charts
    assert "Runs" in html and probe_models.healthy.name in html


@pytest.mark.slow
def test_a_load_report_shows_itself(probe_models: Any) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from loraguard.demo.tiny import quiet
    from loraguard.guard import guarded_load

    with quiet():
        model = AutoModelForCausalLM.from_pretrained(probe_models.base)
    tok = AutoTokenizer.from_pretrained(probe_models.base)
    report = guarded_load(model, probe_models.degenerate, tokenizer=tok, canary=True)
    text = repr(report)
    assert text.startswith("FAIL degenerate on loraguard/tiny-qwen2-probe (live model): refused")
    assert "canary: 8 rows" in text and "LG602" in text
    html = report._repr_html_()  # type: ignore[attr-defined]
    tags = assert_fragment(html)
    assert sum(t == "svg" for t, _ in tags) >= 1 and "loraguard load" in html and "LG602" in html
