"""Notebook fragments (`_repr_html_`) rendered in headless Chromium inside a page standing in for a notebook.

The host page has its own background and fonts: the fragments' styles must not leak onto it (they are
scoped to `div.loraguard-report`), and the charts must draw with no script and no console message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_html_browser import CHROMIUM, render

import loraguard

pytestmark = pytest.mark.browser

HOST_BACKGROUND = (0xF0, 0xE6, 0xC8)


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        pytest.skip(
            "headless Chromium is absent (/usr/bin/chromium): install Debian's `chromium` package "
            "(`.ci/run` does) to render the HTML reports"
        )
    return CHROMIUM


def notebook_page(path: Path, *fragments: str) -> Path:
    cells = "".join(f'<div class="cell"><p class="prompt">Out[{i}]:</p>{f}</div>' for i, f in enumerate(fragments, 1))
    path.write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>notebook</title><style>'
        "body { background: #f0e6c8; margin: 0; font-family: serif; } .cell { margin: 24px 60px; }"
        f"</style></head><body><h1>A notebook</h1>{cells}</body></html>",
        encoding="utf-8",
    )
    return path


def test_fragments_render_inside_a_notebook_page(
    chromium: str, synthetic: Any, gate_files: Any, tmp_path: Path
) -> None:
    from loraguard.gate import run_gate
    from loraguard.monitor.predictions import read_labels, read_predictions

    check = loraguard.check(synthetic.broken, synthetic.base, norms=True)
    gate = run_gate(
        read_predictions(gate_files.candidate), read_predictions(gate_files.baseline), read_labels(gate_files.labels)
    )
    page = notebook_page(tmp_path / "notebook.html", check._repr_html_(), gate._repr_html_())  # type: ignore[attr-defined]
    pixels, text, svgs = render(chromium, page, tmp_path)
    assert svgs >= 4 and "A notebook" in text and "Out[2]:" in text
    assert "FAIL" in text and "layer 7" in text and "Checks" in text
    host = (pixels[..., :3] == np.array(HOST_BACKGROUND, dtype=np.uint8)).all(axis=-1)
    assert host[:, :40].mean() > 0.9, (
        "the fragment's styles leaked onto the notebook's page (its margin is not host-coloured)"
    )
    assert host.mean() < 0.9, "the fragments did not draw"
