"""Every command's `--format`: one option, its formats from the command's formatter, others a usage error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loraguard.errors import InputError
from loraguard.report.check_formatter import CheckFormatter
from loraguard.report.formatter import Formatter, OutputFormat
from loraguard.report.gate_formatter import GateFormatter
from loraguard.report.matrix_formatter import MatrixFormatter
from loraguard.report.monitor_formatter import MonitorFormatter
from loraguard.report.probe_formatter import ProbeFormatter
from loraguard.report.registry_formatter import EntryFormatter
from loraguard.report.rule_formatter import RuleFormatter
from loraguard.report.score_formatter import ScoreFormatter

FORMATTERS: dict[str, type[Formatter]] = {
    "check": CheckFormatter,
    "gate": GateFormatter,
    "probe": ProbeFormatter,
    "monitor": MonitorFormatter,
    "ensemble": MonitorFormatter,
    "score": ScoreFormatter,
    "matrix": MatrixFormatter,
    "registry list": EntryFormatter,
    "explain": RuleFormatter,
}


@pytest.mark.parametrize("command", sorted(FORMATTERS))
def test_help_lists_exactly_the_formatters_formats(command: str, run_cli) -> None:
    code, out, _ = run_cli([*command.split(), "--help"])
    names = "|".join(f.value for f in FORMATTERS[command].formats)
    assert code == 0 and f"--format {names}" in " ".join(out.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["monitor", "p.csv", "--format", "markdown"], "loraguard monitor writes text or json"),
        (["ensemble", "a.csv", "b.csv", "--out", "e.csv", "-f", "markdown"], "writes text or json"),
        (["probe", "a", "--base", "b", "--format", "markdown"], "loraguard probe writes text or json"),
        (["matrix", "a", "--out", "m.csv", "--format", "json"], "writes text (its rows go to the --out CSV)"),
        (["registry", "list", "--format", "markdown"], "loraguard registry writes text or json"),
        (["check", "a", "--format", "yaml"], "loraguard check writes text, json or markdown"),
        (["score", "d.csv", "--base", "b", "--out", "o.csv", "--format", "markdown"], "writes text or json"),
    ],
)
def test_an_unsupported_format_is_a_usage_error_before_any_work(
    args: list[str], message: str, run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be created (no registry file, no output)
    code, out, err = run_cli(args)
    assert code == 2 and out == ""
    assert "Invalid value for '--format'" in err and message in " ".join(err.split())
    assert list(tmp_path.iterdir()) == []


def test_render_refuses_what_a_formatter_lacks() -> None:
    assert MonitorFormatter.supported() == "text or json" and CheckFormatter.supported() == "text, json or markdown"
    assert CheckFormatter.format_of("markdown") is OutputFormat.markdown
    with pytest.raises(InputError, match="loraguard matrix writes text"):
        MatrixFormatter().render(object(), "json")
    with pytest.raises(InputError, match="--format yaml"):
        GateFormatter.format_of("yaml")
    with pytest.raises(InputError, match="markdown"):
        MonitorFormatter().markdown(object())  # type: ignore[arg-type]


def test_registry_json_alias_and_format_json_print_the_same_document(run_cli, tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    from loraguard.registry import Registry

    url = f"sqlite:///{tmp_path / 'r.db'}"
    Registry(url).close()  # `registry list` is read-only: it never creates the registry
    code, legacy, _ = run_cli(["registry", "list", "--registry", url, "--json"])
    assert code == 0
    code, new, _ = run_cli(["registry", "list", "--registry", url, "--format", "json"])
    assert code == 0 and new == legacy
    assert json.loads(new) == {"schema": "loraguard.registry/1", "revision": 0, "entries": []}
    assert "--json" not in run_cli(["registry", "list", "--help"])[1]  # hidden: kept for existing scripts


def test_explain_json_carries_every_rule_and_its_doc(run_cli) -> None:
    code, out, _ = run_cli(["explain", "--format", "json"])
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == "loraguard.rules/1"
    codes = [r["code"] for r in doc["rules"]]
    assert codes == sorted(codes) and {"LG301", "LG401", "LG602"} <= set(codes)
    code, out, _ = run_cli(["explain", "lg301", "-f", "json"])
    (rule,) = json.loads(out)["rules"]
    assert code == 0 and rule["category"] == "shape-mismatch" and "How to fix" in rule["doc"]
