"""`loraguard registry ...`: exit codes, messages, JSON, and no traceback on bad input (check injected via
monkeypatch of `loraguard.checks.checker.check`, which `Registry.add` looks up when it runs)."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from registry_helpers import failing, passing

RunCli = Callable[[Sequence[str]], tuple[int, str, str]]


@pytest.fixture
def cli(run_cli: RunCli, url: str, monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """`cli([...])` runs `loraguard registry ...` on the test's registry with a passing check."""
    monkeypatch.setattr("loraguard.checks.checker.check", passing)
    return lambda args: run_cli(["registry", *args, "--registry", url])


def test_add_list_show_promote_set_traffic_retire(cli: RunCli, adapter: Path, base: Path) -> None:
    code, out, err = cli(["add", "tox", str(adapter), "--base", str(base), "--tag", "a", "--actor", "eve"])
    assert code == 0, err
    assert "registered tox@1: candidate, weight 0, shadow" in out and "3 file(s) hashed" in out
    code, out, _ = cli(["list"])
    assert code == 0
    assert out.split("\n")[0].split() == ["ref", "status", "weight", "shadow", "base", "forced", "created"]
    assert "tox@1" in out and "candidate" in out and "yes" in out and str(base.resolve()) in out and "eve" in out
    assert cli(["add", "tox", str(adapter), "--base", str(base)])[0] == 0
    code, out, _ = cli(["promote", "tox@1"])
    assert (code, out.strip()) == (0, "promoted: tox@1: production, weight 1")
    assert cli(["set-traffic", "tox@2", "0.25"]) == (0, "traffic set: tox@2: candidate, weight 0.25\n", "")
    code, out, _ = cli(["show", "tox@1"])
    assert code == 0 and "tox@1: production, weight 1" in out and "tags:       a" in out
    assert "adapter_model.safetensors" in out and "check:      pass" in out
    code, out, _ = cli(["list", "--status", "production", "--json"])
    data = json.loads(out)
    assert data["schema"] == "loraguard.registry/1" and [e["ref"] for e in data["entries"]] == ["tox@1"]
    assert data["entries"][0]["files"] == 3 and data["entries"][0]["check_verdict"] == "pass"
    assert cli(["retire", "tox@1"])[1].strip() == "retired: tox@1: retired, weight 0"
    code, out, _ = cli(["show", "tox", "--json"])
    entry = json.loads(out)["entry"]
    assert entry["ref"] == "tox@2" and entry["traffic_weight"] == 0.25 and len(entry["files"]) == 3
    code, out, _ = cli(["events", "tox", "--json", "--limit", "3"])
    assert [e["kind"] for e in json.loads(out)["events"]] == ["retired", "traffic", "promoted"]
    code, out, _ = cli(["events", "tox@1"])
    assert code == 0 and [line.split()[3] for line in out.strip().splitlines()] == ["retired", "promoted", "added"]


def test_rejection_prints_verdict_findings_and_hint_and_writes_nothing(
    cli: RunCli, adapter: Path, base: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("loraguard.checks.checker.check", failing)
    code, out, err = cli(["add", "tox", str(adapter), "--base", str(base)])
    assert code == 1 and err == ""
    assert out.startswith("REJECTED (FAIL)") and "LG401" in out and "zero-adapter" in out
    assert "--force --reason" in out
    code, out, _ = cli(["add", "tox", str(adapter), "--base", str(base), "--json"])
    data = json.loads(out)
    assert code == 1 and data["rejected"] is True and data["report"]["findings"][0]["code"] == "LG401"
    assert json.loads(cli(["list", "--json"])[1])["entries"] == []
    assert json.loads(cli(["events", "--json"])[1])["events"] == []
    code, _, err = cli(["add", "tox", str(adapter), "--base", str(base), "--force"])
    assert code == 2 and "Error: --force needs --reason" in err
    code, out, _ = cli(["add", "tox", str(adapter), "--base", str(base), "--force", "--reason", "A/B test", "--json"])
    entry = json.loads(out)["entry"]
    assert code == 0 and entry["forced"] is True and entry["force_reason"] == "A/B test"
    code, out, _ = cli(["list"])
    assert "FORCED" in out


def test_verify_exit_codes(cli: RunCli, adapter: Path, base: Path) -> None:
    cli(["add", "tox", str(adapter), "--base", str(base)])
    assert cli(["verify"]) == (0, "OK       tox@1\n", "")
    (adapter / "tokenizer" / "vocab.txt").write_text("a\nc\n", encoding="utf-8")
    code, out, err = cli(["verify", "tox"])
    assert code == 1 and "MISMATCH tox@1  changed: tokenizer/vocab.txt" in out and "re-register" in err
    code, out, _ = cli(["verify", "--json"])
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and data["results"][0]["changed"] == ["tokenizer/vocab.txt"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nope"], "no adapter nope"),
        (["show", "tox@x"], "expected NAME or NAME@VERSION"),
        (["promote", "tox@7"], "no adapter tox@7"),
        (["set-traffic", "tox@1", "nan"], "traffic weight"),
        (["list", "--status", "live"], "status 'live'"),
        (["add", "bad/name", "x", "--base", "b"], "adapter name"),
        (["add", "tox", "/no/such/adapter", "--base", "b"], "no such folder"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(
    cli: RunCli, adapter: Path, base: Path, args: list[str], message: str
) -> None:
    cli(["add", "tox", str(adapter), "--base", str(base)])
    code, out, err = cli(args)
    assert code == 2 and message in err and "Traceback" not in err + out
    assert err.startswith("Error:") and len(err.strip().splitlines()) == 1


def test_bad_registries_exit_2(run_cli: RunCli, tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n" * 100, encoding="utf-8")
    foreign = tmp_path / "app.db"
    sqlite3.connect(foreign).execute("CREATE TABLE users (id INTEGER)").connection.commit()
    cases = {
        f"sqlite:///{notes}": "is not a loraguard registry",
        str(foreign): "is not a loraguard registry",
        "foo://x": "unknown database 'foo'",
        f"sqlite:///{tmp_path}/missing/dir/r.db": "cannot open the database file",
        "not a url://x": "not a database URL",
    }
    if importlib.util.find_spec("psycopg2") is None:
        cases["postgresql+psycopg2://u@127.0.0.1:1/db"] = "A PostgreSQL registry needs the 'postgres' extra"
    for registry, message in cases.items():
        code, out, err = run_cli(["registry", "list", "--registry", registry])
        assert code == 2 and message in err and "Traceback" not in err + out, (registry, err)
    locked = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    run_cli(["registry", "list", "--registry", url])
    locked.execute("BEGIN EXCLUSIVE")
    locked.execute("CREATE TABLE scratch (x)")
    try:
        code, _, err = run_cli(["registry", "set-traffic", "x", "1", "--registry", url, "--lock-timeout", "0.1"])
    finally:
        locked.execute("ROLLBACK")
        locked.close()
    assert code == 2 and "locked by another writer" in err and "--lock-timeout" in err


def test_default_registry_is_env_then_working_folder(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loraguard.registry import DEFAULT_URL, registry_url

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LORAGUARD_REGISTRY", raising=False)
    assert registry_url() == DEFAULT_URL and registry_url("x.db") == "sqlite:///x.db"
    code, _, err = run_cli(["registry", "list"])  # read-only: names the registry, creates no file
    assert code == 2 and "no registry at sqlite:///loraguard-registry.db" in err and list(tmp_path.iterdir()) == []
    assert run_cli(["registry", "retire", "x"])[0] == 2 and (tmp_path / "loraguard-registry.db").is_file()
    assert run_cli(["registry", "list"])[0] == 0
    monkeypatch.setenv("LORAGUARD_REGISTRY", f"sqlite:///{tmp_path / 'env.db'}")
    assert registry_url() == f"sqlite:///{tmp_path / 'env.db'}" and registry_url("sqlite:///e.db") == "sqlite:///e.db"
    assert run_cli(["registry", "events"])[0] == 2 and not (tmp_path / "env.db").exists()
    assert run_cli(["registry", "retire", "x"])[0] == 2 and (tmp_path / "env.db").is_file()
    assert run_cli(["registry", "list"])[0] == 0


def test_cli_module_imports_neither_sqlalchemy_nor_torch() -> None:
    code = (
        "import sys; import loraguard.cli.cmd_registry, loraguard.registry;"
        " print([m for m in ('sqlalchemy', 'torch', 'transformers') if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_missing_sqlalchemy_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['sqlalchemy'] = None; from loraguard.cli.app import main;"
        " sys.exit(main(['registry', 'list']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "Error: The registry needs the 'registry' extra: pip install 'loraguard[registry]'"
    )


def test_hub_id_offline_is_a_clean_error(tmp_path: Path) -> None:
    env = {
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "PATH": "/usr/bin:/bin",
        "LORAGUARD_REGISTRY": f"sqlite:///{tmp_path / 'r.db'}",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "loraguard",
            "registry",
            "add",
            "tox",
            "some-org/no-such-lora",
            "--base",
            "Qwen/Qwen2.5-1.5B-Instruct",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("Error: some-org/no-such-lora: could not fetch the adapter from the Hugging Face Hub")
    assert "Traceback" not in proc.stderr
