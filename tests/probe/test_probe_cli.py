"""`loraguard probe` on the command line: output formats, JSON schema and exit codes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from loraguard.cli.app import main

pytestmark = pytest.mark.slow


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["probe", *args, "--format", "json", "--device", "cpu"])
    return code, json.loads(capsys.readouterr().out)


def test_json_schema_and_exit_codes(probe_fx: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    base = str(probe_fx["base"])
    code, data = run_json(capsys, str(probe_fx["healthy"]), "--base", base, "--samples", "8")
    assert code == 0
    assert data["schema"] == "loraguard.probe/1" and data["verdict"] == "pass" and data["blame"] is None
    assert set(data) >= {"verdict", "findings", "stats", "effect", "blame", "differential", "check", "stopped"}
    for side in ("adapted", "base"):
        assert set(data["stats"][side]) >= {"mean", "std", "min", "max", "distinct"}
        assert data["stats"][side]["distinct"] == 8
    assert data["effect"]["mean_kl"] > 0 and data["effect"]["max_logit_diff"] > 0
    assert data["samples"] == 8 and len(data["predictions"]) == 8 and data["check"]["verdict"] == "pass"

    code, data = run_json(capsys, str(probe_fx["degenerate"]), "--base", base, "--samples", "8")
    assert code == 1 and data["verdict"] == "fail" and data["blame"] == "adapter"
    errors = [f for f in data["findings"] if f["severity"] == "error"]
    assert [(f["code"], f["category"]) for f in errors] == [("LG602", "degenerate-output")]
    assert set(errors[0]) == {"code", "severity", "category", "message", "fix", "evidence"}


def test_noop_stops_after_check_unless_forced(probe_fx: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    noop, base = str(probe_fx["noop"]), str(probe_fx["base"])
    assert main(["probe", noop, "--base", base]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and "zero-adapter" in out and "--force" in out
    code, data = run_json(capsys, noop, "--base", base)
    assert code == 1 and data["stopped"] is True and data["stats"] is None and data["blame"] is None
    code, data = run_json(capsys, noop, "--base", base, "--force", "--samples", "4")
    assert code == 1 and data["stopped"] is False and data["blame"] == "adapter"
    assert {f["category"] for f in data["findings"] if f["severity"] == "error"} == {"zero-adapter", "no-effect"}
    assert data["effect"]["mean_kl"] == 0.0


def test_text_output(probe_fx: dict[str, Any], rows_csv: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "probe",
            str(probe_fx["degenerate"]),
            "--base",
            str(probe_fx["base"]),
            "--data",
            str(rows_csv),
            "--samples",
            "8",
            "--device",
            "cpu",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("FAIL")
    assert "with adapter" in out and "base alone" in out and "mean KL" in out
    assert "degenerate only with the adapter: the adapter is the problem" in out and "LG602" in out


def test_unloadable_base_exits_2(probe_fx: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    # a catalog name passes the static check's base resolution, but the probe needs a local folder
    assert main(["probe", str(probe_fx["healthy"]), "--base", "Qwen/Qwen2.5-1.5B-Instruct", "--force"]) == 2
    assert "local folder" in capsys.readouterr().err
