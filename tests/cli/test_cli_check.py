"""The CLI: exit codes, formats, explain, and no torch on the static check path."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loraguard.cli.app import main


@pytest.mark.slow
def test_exit_codes_and_json_schema(built_cases, capsys) -> None:
    ok = built_cases["plain-qv"]
    assert main(["check", str(ok.adapter), "--base", str(ok.base), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "loraguard.check/1" and data["verdict"] == "pass"
    assert set(data) >= {"adapter", "base", "findings", "inferred_bases", "timing_ms"}
    bad = built_cases["wider-base-claims-this-base"]
    assert main(["check", str(bad.adapter), "--base", str(bad.base)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and "shape-mismatch" in out
    warn = built_cases["declared-target-missing"]
    assert main(["check", str(warn.adapter), "--base", str(warn.base)]) == 0
    assert main(["check", str(warn.adapter), "--base", str(warn.base), "--strict"]) == 1
    capsys.readouterr()
    assert main(["check", str(warn.adapter), "--base", str(warn.base), "--format", "markdown"]) == 0
    assert "| warning | LG203 |" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys) -> None:
    assert main(["check", "x", "--format", "yaml"]) == 2
    assert main(["explain", "LG000"]) == 2
    assert "Error:" in capsys.readouterr().err


def test_explain_prints_rule_docs(capsys) -> None:
    assert main(["explain", "LG301"]) == 0
    out = capsys.readouterr().out
    assert "shape-mismatch" in out and "How to fix" in out


@pytest.mark.slow
def test_static_check_does_not_import_torch(built_cases) -> None:
    item = built_cases["plain-qv"]
    code = (
        "import sys; from loraguard.cli.app import main; rc = main(['check', sys.argv[1], '--base', sys.argv[2]]);"
        " heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules];"
        " print('HEAVY', heavy); sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(item.adapter), str(item.base)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
