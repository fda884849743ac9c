"""Every HTML report renders in headless Chromium: a non-blank screenshot, SVG plots in the DOM, no errors.

Chromium is Debian's `chromium` package (`.ci/run` installs it); without it these tests skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from png_check import colour_stats, read_png

import loraguard
from loraguard.report.html_check import write_check_html

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")
WIDTH, HEIGHT = 1200, 900


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        pytest.skip(
            "headless Chromium is absent (/usr/bin/chromium): install Debian's `chromium` package "
            "(`.ci/run` does) to render the HTML reports"
        )
    return CHROMIUM


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.svgs += tag == "svg"

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def render(chromium: str, page: Path, tmp_path: Path) -> tuple[np.ndarray, str, int]:
    """Screenshot and DOM of `page` in one headless run; returns (pixels, visible text, number of <svg>)."""
    shot = tmp_path / f"{page.stem}.png"
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={shot}",
        "--dump-dom",
        f"--window-size={WIDTH},{HEIGHT}",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, f"console messages (scripts, CSP violations): {console}"
    assert shot.is_file() and shot.stat().st_size > 5000, "no screenshot"
    dom = _Text()
    dom.feed(proc.stdout)
    text = " ".join(" ".join(dom.parts).split())
    assert text, "empty DOM"
    assert not re.search(r"\bError\b", text), "error text on the page"
    assert "ERR_" not in text and "can’t be reached" not in text
    pixels = read_png(shot)
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    colours, ink = colour_stats(pixels)
    assert colours > 30 and ink > 0.05, f"blank-looking screenshot: {colours} colours, {ink:.1%} non-background"
    return pixels, text, dom.svgs


def _fills(html: str, cls: str) -> set[tuple[int, int, int]]:
    found = re.findall(rf'class="{cls}"[^>]*fill="#([0-9a-f]{{6}})"', html)
    return {(int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)) for c in found}


def _pixels_in(pixels: np.ndarray, colours: set[tuple[int, int, int]]) -> int:
    flat = pixels[..., :3].reshape(-1, 3)
    wanted = np.array(sorted(colours), dtype=np.uint8)
    return int((flat[:, None, :] == wanted[None, :, :]).all(axis=2).any(axis=1).sum())


def test_check_report_shows_the_heatmap(chromium: str, synthetic, tmp_path: Path) -> None:
    page = write_check_html(loraguard.check(synthetic.broken, synthetic.base, norms=True), tmp_path / "check.html")
    pixels, text, svgs = render(chromium, page, tmp_path)
    assert svgs >= 2 and "FAIL" in text and "layer 7" in text
    html = page.read_text()
    assert _pixels_in(pixels, _fills(html, "cell cell-value")) > 2000  # the coloured cells are on screen
    assert _pixels_in(pixels, {(0xD6, 0x27, 0x28)}) > 300  # and the NaN layer's red cells


def test_gate_report_shows_histograms(chromium: str, gate_files, tmp_path: Path) -> None:
    from loraguard.gate import run_gate
    from loraguard.monitor.predictions import read_labels, read_predictions
    from loraguard.report.html_gate import write_gate_html

    cand, base = read_predictions(gate_files.candidate), read_predictions(gate_files.baseline)
    labels = read_labels(gate_files.labels)
    page = write_gate_html(run_gate(cand, base, labels), cand, base, tmp_path / "gate.html", labels=labels)
    _, text, svgs = render(chromium, page, tmp_path)
    assert svgs >= 6 and "Checks" in text and "candidate" in text


def test_predictions_report(chromium: str, tmp_path: Path) -> None:
    from loraguard.report.html_predictions import write_predictions_html

    rng = np.random.default_rng(3)
    series = {"adapted": rng.beta(2, 5, 400), "base": rng.beta(5, 2, 400)}
    page = write_predictions_html(series, np.array(["rule A", "rule B"] * 200), tmp_path / "pred.html")
    _, text, svgs = render(chromium, page, tmp_path)
    assert svgs >= 3 and "adapted" in text


def test_matrix_report(chromium: str, synthetic, tmp_path: Path) -> None:
    from loraguard.matrix import run_matrix
    from loraguard.report.html_matrix import write_matrix_html

    result = run_matrix([synthetic.healthy, synthetic.broken], [str(synthetic.base), "gpt2"])
    page = write_matrix_html(result, tmp_path / "matrix.html")
    _, text, svgs = render(chromium, page, tmp_path)
    assert svgs >= 3 and "PASS" in text and "FAIL" in text
