"""`check --html` and `gate --html` write their pages without changing the command's other output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from loraguard.cli.app import main


def test_check_html_writes_the_page_and_keeps_stdout_clean(synthetic, tmp_path: Path, capsys) -> None:
    out = tmp_path / "check.html"
    code = main(["check", str(synthetic.broken), "--base", str(synthetic.base), "--format", "json", "--html", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert json.loads(captured.out)["verdict"] == "fail"  # stdout is still pure JSON
    assert f"HTML report in {out}" in captured.err
    page = out.read_text()
    assert "cell cell-nonfinite" in page and "row-flagged" in page
    assert main(["check", str(synthetic.healthy), "--base", str(synthetic.base), "--html", str(out)]) == 0
    assert 'class="badge v-pass"' in out.read_text()  # rewritten in place


def test_check_html_does_not_import_torch(synthetic, tmp_path: Path) -> None:
    code = (
        "import sys; from loraguard.cli.app import main;"
        " rc = main(['check', sys.argv[1], '--base', sys.argv[2], '--html', sys.argv[3]]);"
        " print('HEAVY', [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(synthetic.healthy), str(synthetic.base), str(tmp_path / "c.html")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_gate_html(gate_files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "gate.html"
    code = main(
        [
            "gate",
            str(gate_files.candidate),
            "--baseline",
            str(gate_files.baseline),
            "--labels",
            str(gate_files.labels),
            "--html",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert code in (0, 1) and text.startswith("loraguard gate:")
    page = out.read_text()
    assert "Per group (3)" in page and "By true label" in page and page.count("<svg") >= 6


def test_html_into_a_missing_folder_exits_2(synthetic, tmp_path: Path, capsys) -> None:
    out = tmp_path / "nowhere" / "check.html"
    assert main(["check", str(synthetic.healthy), "--base", str(synthetic.base), "--html", str(out)]) == 2
    assert "no such folder" in capsys.readouterr().err
