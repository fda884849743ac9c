"""The CLI with hostile names and inputs: one `Error:` line or a report, never a traceback; names escaped in
terminal, JSON, CSV and HTML output; --version, --verbose; read-only commands create no files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hostile_inputs import bounded, nested_json

RunCli = Callable[[Sequence[str]], tuple[int, str, str]]
ESC = "\x1b"
UNDECODABLE = os.fsdecode(b"ad\xffapter")  # a folder name that is not UTF-8: 'ad\udcffapter'
CONTROL = "esc\x1b[2J\x1b[31mred\u202e"  # clear screen, colour, right-to-left override
MARKUP = "[blink red]x[reverse]y"  # a path component cannot hold "/", so no closing tag here


def _plain(text: str) -> bool:
    """No raw escape, C1 control, bidi override or lone surrogate: safe on a terminal and encodable."""
    text.encode("utf-8")  # raises on a lone surrogate
    return not any(c == ESC or "\x80" <= c <= "\x9f" or c == "\u202e" for c in text)


@pytest.fixture
def named(tmp_path: Path, good: Path) -> dict[str, Path]:
    folder = tmp_path / "adapters"
    folder.mkdir()
    return {name: Path(shutil.copytree(good, folder / name)) for name in (UNDECODABLE, CONTROL, MARKUP, "plain")}


def test_version(run_cli: RunCli) -> None:
    from loraguard import __version__

    assert run_cli(["--version"]) == (0, f"loraguard {__version__}\n", "")  # was: "Missing command", exit 2


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_check_output_escapes_names(run_cli: RunCli, named: dict[str, Path], base: Path, fmt: str) -> None:
    run_cli(["check", str(named["plain"]), "--base", str(base)])  # imports, outside the bound
    for name, path in named.items():
        with bounded(seconds=3, megabytes=100):
            code, out, err = run_cli(["check", str(path), "--base", str(base), "--format", fmt])
        assert code == 0 and err == "" and _plain(out), (name, out)
        if fmt == "json":
            doc = json.loads(out)  # was: UnicodeEncodeError or unparsable JSON
            assert _plain(json.dumps(doc, ensure_ascii=False))
            assert doc["adapter"]["name"] == {
                UNDECODABLE: "ad\\xffapter",
                CONTROL: "esc\\x1b[2J\\x1b[31mred\\u202e",
            }.get(name, name)
        elif name == MARKUP:
            assert MARKUP in out  # printed as written, never parsed as rich markup


def test_hostile_text_in_a_config_is_escaped(run_cli: RunCli, tmp_path: Path, base: Path) -> None:
    from hostile_inputs import adapter_with_config

    adapter = adapter_with_config(tmp_path, "claims", {"base_model_name_or_path": "[/bold]evil\x1b[2J\x9b31m"})
    code, out, err = run_cli(["check", str(adapter), "--base", str(base)])  # was: rich MarkupError traceback
    assert code in (0, 1) and _plain(out + err) and "[/bold]evil\\x1b[2J\\x9b31m" in out


def test_matrix_survives_undecodable_and_control_names(run_cli: RunCli, named: dict[str, Path], base: Path) -> None:
    root = next(iter(named.values())).parent
    out_csv, out_html = root.parent / "m.csv", root.parent / "m.html"
    with bounded(seconds=10, megabytes=200):
        code, out, err = run_cli(
            [
                "matrix",
                str(root),
                "--base",
                str(base),
                "--out",
                str(out_csv),
                "--html",
                str(out_html),
                "--executor",
                "serial",
            ]
        )
    assert code == 0 and "4 pass" in out and _plain(out + err), err  # was: the scan died (UnicodeEncodeError)
    csv_text = out_csv.read_bytes().decode("utf-8")  # strict UTF-8
    assert _plain(csv_text) and "ad\\xffapter" in csv_text and "esc\\x1b[2J" in csv_text
    html = out_html.read_bytes().decode("utf-8")
    assert _plain(html) and "ad\\xffapter" in html


def test_error_lines_escape_names(run_cli: RunCli, tmp_path: Path) -> None:
    code, _, err = run_cli(["monitor", str(tmp_path / CONTROL)])
    assert code == 2 and err.startswith("Error:") and len(err.splitlines()) == 1 and _plain(err)


def test_unexpected_exception_is_one_line_exit_3(run_cli: RunCli, good: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\x1b[2J")

    monkeypatch.setattr("loraguard.checks.checker.check", broken)
    monkeypatch.delenv("LORAGUARD_DEBUG", raising=False)
    code, out, err = run_cli(["check", str(good)])
    assert code == 3 and out == "" and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("Error: internal error (RuntimeError: boom\\x1b[2J)") and "LORAGUARD_DEBUG=1" in err
    monkeypatch.setenv("LORAGUARD_DEBUG", "1")
    with pytest.raises(RuntimeError):
        run_cli(["check", str(good)])


def test_library_warnings_only_with_verbose(good: Path, base: Path) -> None:
    """In a real process (pytest records warnings and logs itself): a library's FutureWarning and a PEFT
    logger warning reach stderr only with --verbose."""
    code = (
        "import logging, sys, warnings\n"
        "from loraguard.checks import checker\n"
        "real = checker.check\n"
        "def noisy(*a, **k):\n"
        "    warnings.warn_explicit('deprecated thing', FutureWarning, 'x.py', 1, module='transformers.x')\n"
        "    logging.getLogger('peft.tuners').warning('missing adapter keys')\n"
        "    return real(*a, **k)\n"
        "checker.check = noisy\n"
        "from loraguard.cli.app import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["check", str(good), "--base", str(base)]
    quiet = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    loud = subprocess.run([sys.executable, "-c", code, "--verbose", *args], capture_output=True, text=True, timeout=120)
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    assert "deprecated thing" not in quiet.stderr and "missing adapter keys" not in quiet.stderr
    assert "deprecated thing" in loud.stderr and "missing adapter keys" in loud.stderr


def test_read_only_registry_commands_create_no_files(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sqlalchemy")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("LORAGUARD_REGISTRY", raising=False)
    for args in (["list"], ["show", "tox"], ["events"], ["list", "--registry", "team.db"]):
        code, _, err = run_cli(["registry", *args])
        assert code == 2 and "no registry at" in err and len(err.splitlines()) == 1, (args, err)
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (bytes(range(256)) * 20, ""),
        (b"row_id,rule_violation\n1,0.5\x00\n", ""),
        (b"row_id,rule_violation\n1,nan\n2,inf\n", ""),
        (b"", ""),
    ],
)
def test_prediction_commands_on_garbage(run_cli: RunCli, tmp_path: Path, content: bytes, says: str) -> None:
    good = tmp_path / "good.csv"
    good.write_text("row_id,rule_violation\n" + "".join(f"{i},{i / 40:.3f}\n" for i in range(40)))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    for args in (
        ["monitor", str(bad)],
        ["monitor", str(good), "--reference", str(bad)],
        ["gate", str(bad), "--baseline", str(good)],
        ["gate", str(good), "--baseline", str(good), "--labels", str(bad)],
        ["ensemble", str(good), str(bad), "--out", str(tmp_path / "e.csv"), "--overwrite"],
    ):
        with bounded(seconds=5, megabytes=100):
            code, out, err = run_cli(args)
        assert code in (0, 1, 2) and "Traceback" not in err and _plain(out + err), (args, err)
        if code == 2:
            assert err.startswith("Error:") and len(err.splitlines()) == 1


def test_deeply_nested_policy_is_an_error(run_cli: RunCli, tmp_path: Path) -> None:
    preds = tmp_path / "p.csv"
    preds.write_text("row_id,rule_violation\n1,0.2\n2,0.7\n")
    policy = tmp_path / "policy.toml"
    policy.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    code, _, err = run_cli(["monitor", str(preds), "--policy", str(policy)])  # was: RecursionError, exit 1
    assert code == 2 and "nested too deeply" in err


def test_hostile_base_config_is_a_finding(run_cli: RunCli, tmp_path: Path, good: Path) -> None:
    from fault_cases.bases import tiny_config

    for name, text in {
        "deep": nested_json(100_000),
        "nan": json.dumps({**tiny_config(), "hidden_size": float("nan")}),
        "layers": json.dumps({**tiny_config(), "num_hidden_layers": 10**9}),  # enumerating them never ended
    }.items():
        folder = tmp_path / f"base-{name}"
        folder.mkdir()
        (folder / "config.json").write_text(text)
        with bounded(seconds=3, megabytes=100):
            code, out, err = run_cli(["check", str(good), "--base", str(folder)])
        assert code == 1 and err == "" and "LG101" in out, (name, out)


def test_explain_with_escape_codes(run_cli: RunCli) -> None:
    code, out, err = run_cli(["explain", "LG\x1b[2J"])
    assert code == 2 and _plain(out + err)
