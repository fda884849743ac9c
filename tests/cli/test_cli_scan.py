"""`loraguard scan`: every adapter at or below some paths (what the pre-commit hook and the GitHub Action run)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

Run = Callable[[Sequence[str]], tuple[int, str, str]]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A folder `adapters/` holding a healthy and a NaN adapter, and the base they are checked against."""
    from fault_cases import build_all, case_named

    root = tmp_path_factory.mktemp("scan")
    cases = [case_named(n) for n in ("plain-qv", "nan-weight", "fewer-layers-undeclared")]
    built = build_all(root / "build", cases, torch=False)
    adapters = root / "repo" / "adapters"
    adapters.mkdir(parents=True)
    good = Path(shutil.copytree(built["plain-qv"].adapter, adapters / "good"))
    bad = Path(shutil.copytree(built["nan-weight"].adapter, adapters / "team" / "bad"))
    (root / "repo" / "README.md").write_text("not an adapter\n")
    thin = built["fewer-layers-undeclared"].adapter  # a warning only (LG303), outside the repo
    return {"root": root / "repo", "good": good, "bad": bad, "thin": thin, "base": built["plain-qv"].base}


def test_folders_and_their_files_are_checked(run_cli: Run, repo: dict[str, Any]) -> None:
    base = str(repo["base"])
    code, out, _ = run_cli(["scan", str(repo["good"] / "adapter_config.json"), "--base", base])
    assert code == 0 and out.startswith("PASS good on ") and out.rstrip().endswith("scan: 1 adapter(s): 1 pass")
    code, out, _ = run_cli(
        ["scan", str(repo["good"] / "adapter_config.json"), str(repo["bad"] / "adapter_model.safetensors"), "-b", base]
    )
    assert code == 1 and "FAIL bad on " in out and "LG402" in out
    assert out.rstrip().endswith("scan: 2 adapter(s): 1 pass, 1 fail")


def test_a_folder_is_searched_and_each_adapter_checked_once(run_cli: Run, repo: dict[str, Any]) -> None:
    code, out, _ = run_cli(
        ["scan", str(repo["root"]), str(repo["good"]), "--base", str(repo["base"]), "--format", "json"]
    )
    doc = json.loads(out)
    assert code == 1 and doc["schema"] == "loraguard.scan/1" and doc["verdict"] == "fail"
    names = sorted(r["adapter"]["name"] for r in doc["reports"])
    assert names == ["bad", "good"] and all(r["schema"] == "loraguard.check/1" for r in doc["reports"])


def test_strict_and_ignore(run_cli: Run, repo: dict[str, Any]) -> None:
    base = str(repo["base"])
    assert run_cli(["scan", str(repo["bad"]), "--base", base])[0] == 1
    assert run_cli(["scan", str(repo["bad"]), "--base", base, "--ignore", "LG402"])[0] == 0
    code, out, _ = run_cli(["scan", str(repo["thin"]), "--base", base])
    assert code == 0 and "LG303" in out and "1 warn" in out
    assert run_cli(["scan", str(repo["thin"]), "--base", base, "--strict"])[0] == 1


def test_the_summary_file_gets_the_markdown_appended(run_cli: Run, repo: dict[str, Any], tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    for _ in range(2):
        code, out, _ = run_cli(["scan", str(repo["root"]), "-b", str(repo["base"]), "--summary", str(summary)])
        assert code == 1 and "scan: 2 adapter(s): 1 pass, 1 fail" in out  # stdout stays text
    text = summary.read_text()
    assert text.startswith("# earlier step\n## loraguard scan: **FAIL** 2 adapter(s): 1 pass, 1 fail")
    assert text.count("## loraguard scan") == 2 and text.count("### loraguard check: **FAIL** `bad`") == 2
    assert "| error | LG402 | non-finite-weights |" in text


def test_nothing_to_check_is_a_usage_error(run_cli: Run, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["scan", str(tmp_path / "empty")])
    assert code == 2 and "no adapter found at or below" in err
    code, _, err = run_cli(["scan", str(tmp_path / "missing")])
    assert code == 2 and "no such file or folder" in err
