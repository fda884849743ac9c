"""`loraguard gate`: exit codes, formats, --out, and bad-input messages."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

Run = Callable[[Sequence[str]], tuple[int, str, str]]
N = 500
RNG = np.random.default_rng(21)
Y = (RNG.random(N) < 0.3).astype(int)
BASE = np.clip(0.35 * Y + RNG.beta(2, 5, N) * 0.65, 0, 1)


def _csv(path: Path, values: np.ndarray, ids: Sequence[str] | None = None) -> str:
    ids = list(ids) if ids is not None else [str(i) for i in range(len(values))]
    body = "\n".join(f"{rid},{v!r}" for rid, v in zip(ids, values.tolist(), strict=True))
    path.write_text(f"row_id,rule_violation\n{body}\n")
    return str(path)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "row_id,rule,rule_violation\n" + "\n".join(f"{i},{'A' if i % 2 else 'B'},{y}" for i, y in enumerate(Y)) + "\n"
    )
    shifted = np.where((BASE < 0.5) & (BASE > np.quantile(BASE, 0.7)), BASE + 0.3, BASE)
    return {
        "base": _csv(tmp_path / "prod.csv", BASE),
        "same": _csv(tmp_path / "same.csv", BASE),
        "shifted": _csv(tmp_path / "shifted.csv", np.clip(shifted, 0, 1)),
        "labels": str(labels),
        "dir": str(tmp_path),
    }


def test_identical_candidate_passes(run_cli: Run, files: dict[str, str]) -> None:
    code, out, _ = run_cli(["gate", files["same"], "--baseline", files["base"], "--labels", files["labels"]])
    assert code == 0
    assert out.startswith("loraguard gate: PASS")
    assert "AUC per group:" in out


def test_positive_rate_shift_fails_and_threshold_option_applies(run_cli: Run, files: dict[str, str]) -> None:
    code, out, _ = run_cli(["gate", files["shifted"], "--baseline", files["base"], "--format", "json"])
    doc = json.loads(out)
    assert code == 1 and doc["verdict"] == "fail"
    failed = {c["metric"] for c in doc["checks"] if c["status"] == "fail"}
    assert failed == {"positive_rate_shift"}
    code, out, _ = run_cli(
        ["gate", files["shifted"], "--baseline", files["base"], "--format", "json", "--threshold", "0.95"]
    )
    assert json.loads(out)["settings"]["decision_threshold"] == 0.95
    assert "positive_rate_shift" not in {c["metric"] for c in json.loads(out)["checks"] if c["status"] == "fail"}


def test_policy_makes_a_check_non_critical_and_strict_fails_on_warn(run_cli: Run, files: dict[str, str]) -> None:
    policy = Path(files["dir"]) / "p.toml"
    policy.write_text("[gate.positive_rate_shift]\nthreshold = 0.05\ncritical = false\n")
    args = ["gate", files["shifted"], "--baseline", files["base"], "--policy", str(policy)]
    code, out, _ = run_cli(args)
    assert code == 0 and out.startswith("loraguard gate: WARN")
    assert str(policy) in out
    assert run_cli([*args, "--strict"])[0] == 1


def test_markdown_to_out_file_and_overwrite(run_cli: Run, files: dict[str, str]) -> None:
    out_file = Path(files["dir"]) / "gate.md"
    args = ["gate", files["shifted"], "--baseline", files["base"], "--format", "markdown", "--out", str(out_file)]
    code, out, _ = run_cli(args)
    assert code == 1
    assert "report in" in out and "positive_rate_shift" in out
    assert out_file.read_text().startswith("## ❌ loraguard gate: **FAIL**")
    code, _, err = run_cli(args)
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert run_cli([*args, "--overwrite"])[0] == 1
    assert sorted(p.name for p in Path(files["dir"]).glob(".gate.md*")) == []


def test_bad_inputs_exit_2_naming_file_and_row(run_cli: Run, files: dict[str, str], tmp_path: Path) -> None:
    other_ids = _csv(tmp_path / "other.csv", BASE, ids=[f"x{i}" for i in range(N)])
    dup = tmp_path / "dup.csv"
    dup.write_text("row_id,rule_violation\n1,0.1\n2,0.2\n2,0.3\n")
    bad_labels = tmp_path / "badlabels.csv"
    bad_labels.write_text("row_id,rule_violation\n0,1\n1,2\n")
    no_label_col = tmp_path / "nolabel.csv"
    no_label_col.write_text("row_id,rule\n0,A\n")
    cases = {
        f"{N} row_id(s) of {files['same']} are not in {other_ids}": ["gate", files["same"], "--baseline", other_ids],
        f"{dup} line 4: duplicate row_id '2' (first on line 3)": ["gate", str(dup), "--baseline", files["base"]],
        f"{bad_labels} line 3: label rule_violation = '2' is not 0 or 1": [
            "gate",
            files["same"],
            "--baseline",
            files["base"],
            "--labels",
            str(bad_labels),
        ],
        f"{no_label_col} has no 'rule_violation' column": [
            "gate",
            files["same"],
            "--baseline",
            files["base"],
            "--labels",
            str(no_label_col),
        ],
    }
    for message, args in cases.items():
        code, out, err = run_cli(args)
        assert code == 2, args
        assert message in err, err
        assert out == ""


def test_missing_baseline_option_is_a_usage_error(run_cli: Run, files: dict[str, str]) -> None:
    assert run_cli(["gate", files["same"]])[0] == 2
