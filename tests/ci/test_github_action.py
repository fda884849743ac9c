"""The GitHub Action: `action.yml` and the script it runs, run here with fake GitHub files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "github_action.py"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A checked-out repository: two adapters (healthy, NaN), their base, and gate predictions."""
    from fault_cases import build_all, case_named

    root = tmp_path_factory.mktemp("action")
    built = build_all(root / "build", [case_named("plain-qv"), case_named("nan-weight")], torch=False)
    ws = root / "workspace"
    shutil.copytree(built["plain-qv"].adapter, ws / "adapters" / "good")
    shutil.copytree(built["nan-weight"].adapter, ws / "adapters" / "bad")
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.4).astype(int)
    base = np.clip(0.5 * y + 0.5 * rng.random(300), 0, 1)
    for name, values in (("prod", base), ("cand", np.clip(base + rng.normal(0, 0.01, 300), 0, 1))):
        rows = "".join(f"{i},{v:.6f}\n" for i, v in enumerate(values))
        (ws / f"{name}.csv").write_text("row_id,rule_violation\n" + rows)
    (ws / "labels.csv").write_text(
        "row_id,rule,rule_violation\n" + "".join(f"{i},{'ab'[i % 2]},{v}\n" for i, v in enumerate(y))
    )
    return {"ws": ws, "base": built["plain-qv"].base}


def run_action(ws: Path, tmp_path: Path, **inputs: str) -> tuple[int, str, str, str]:
    """Run the action's script as the composite step does; returns (exit code, log, job summary, outputs)."""
    summary, output = tmp_path / "summary.md", tmp_path / "output.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    env |= {f"INPUT_{k.upper()}": v for k, v in inputs.items()}
    env |= {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], cwd=ws, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    read = lambda p: p.read_text() if p.exists() else ""  # noqa: E731
    return done.returncode, done.stdout + done.stderr, read(summary), read(output)


def test_the_check_writes_the_job_summary_and_fails_on_errors(workspace: dict[str, Path], tmp_path: Path) -> None:
    code, log, summary, outputs = run_action(workspace["ws"], tmp_path, paths="adapters", base=str(workspace["base"]))
    assert code == 1, log
    assert "$ loraguard scan adapters --base" in log and "FAIL bad on" in log
    assert summary.startswith("## loraguard scan: **FAIL** 2 adapter(s): 1 pass, 1 fail")
    assert "### loraguard check: **PASS** `good`" in summary and "| error | LG402 |" in summary
    assert outputs.splitlines() == ["verdict=fail", "check-verdict=fail"]


def test_fail_on_findings_false_only_reports(workspace: dict[str, Path], tmp_path: Path) -> None:
    code, _, summary, outputs = run_action(
        workspace["ws"],
        tmp_path,
        paths="adapters/good\nadapters/bad",
        base=str(workspace["base"]),
        fail_on_findings="false",
    )
    assert code == 0 and "**FAIL**" in summary and "verdict=fail" in outputs


def test_healthy_adapters_pass_and_strict_and_ignore_are_passed_on(workspace: dict[str, Path], tmp_path: Path) -> None:
    code, log, _, outputs = run_action(
        workspace["ws"], tmp_path, paths="adapters", base=str(workspace["base"]), ignore="LG402, LG506", strict="true"
    )
    assert code == 0, log
    assert "--strict --ignore LG402 --ignore LG506" in log and outputs.startswith("verdict=pass")


def test_the_gate_runs_when_given_predictions(workspace: dict[str, Path], tmp_path: Path) -> None:
    code, log, summary, outputs = run_action(
        workspace["ws"],
        tmp_path,
        paths="adapters/good",
        base=str(workspace["base"]),
        gate_candidate="cand.csv",
        gate_baseline="prod.csv",
        gate_labels="labels.csv",
    )
    assert code == 0, log
    assert "$ loraguard gate cand.csv --baseline prod.csv --format markdown --labels labels.csv" in log
    assert "## ✅ loraguard gate: **PASS**" in summary and summary.index("loraguard scan") < summary.index("gate")
    assert outputs.splitlines() == ["verdict=pass", "check-verdict=pass", "gate-verdict=pass"]


def test_wrong_inputs_fail_clearly(workspace: dict[str, Path], tmp_path: Path) -> None:
    code, log, _, outputs = run_action(workspace["ws"], tmp_path, paths="")
    assert code == 2 and "the `paths` input is empty" in log and outputs == "verdict=error\n"
    code, log, _, outputs = run_action(workspace["ws"], tmp_path, paths="no-such-folder")
    assert code == 2 and "no such file or folder" in log and "verdict=error" in outputs
    code, log, _, _ = run_action(workspace["ws"], tmp_path, paths="adapters", gate_candidate="cand.csv")
    assert code == 2 and "gate-candidate and gate-baseline go together" in log


def test_action_yml_passes_every_input_to_the_script() -> None:
    yaml = pytest.importorskip("yaml")
    action: Any = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    run = next(s for s in steps if s.get("id") == "loraguard")
    assert run["run"] == 'python "$GITHUB_ACTION_PATH/scripts/github_action.py"'
    passed = {k for k in run["env"] if k.startswith("INPUT_")}
    read = set(re.findall(r'"(INPUT_[A-Z_]+)"', SCRIPT.read_text()))
    wanted = {f"INPUT_{name.upper().replace('-', '_')}" for name in action["inputs"]} - {
        "INPUT_PYTHON_VERSION",
        "INPUT_INSTALL",
    }
    assert passed == wanted == read
    for key, value in run["env"].items():
        if key.startswith("INPUT_"):
            name = key.removeprefix("INPUT_").lower().replace("_", "-")
            assert value == "${{ inputs." + name + " }}"
    install = next(s for s in steps if s.get("name") == "Install loraguard")
    assert "github.action_path" in install["env"]["LORAGUARD_INSTALL"]
    assert set(action["outputs"]) == {"verdict", "check-verdict", "gate-verdict"}
