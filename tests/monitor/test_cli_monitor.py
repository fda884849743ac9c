"""`loraguard monitor`: exit codes, output formats and bad-input messages."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

Run = Callable[[Sequence[str]], tuple[int, str, str]]


def _csv(path: Path, values: np.ndarray, ids: Sequence[str] | None = None, extra: str = "") -> Path:
    ids = list(ids) if ids is not None else [str(i) for i in range(len(values))]
    rows = [f"{rid},{v!r}{extra}" for rid, v in zip(ids, values.tolist(), strict=True)]
    path.write_text("row_id,rule_violation" + (",parsed" if extra else "") + "\n" + "\n".join(rows) + "\n")
    return path


HEALTHY = np.random.default_rng(1).beta(2, 5, 2029)


def test_healthy_file_passes(run_cli: Run, tmp_path: Path) -> None:
    code, out, _ = run_cli(["monitor", str(_csv(tmp_path / "p.csv", HEALTHY))])
    assert code == 0
    assert "No alerts." in out and "Result: PASS" in out
    assert "2029 rows" in out


def test_case_study_all_zero_file_fails(run_cli: Run, tmp_path: Path) -> None:
    code, out, _ = run_cli(["monitor", str(_csv(tmp_path / "zeros.csv", np.zeros(2029), extra=",1"))])
    assert code == 1
    assert "degenerate" in out and "stuck" in out and "Result: FAIL" in out
    assert "100.0% of 2029 predictions are exactly 0" in out


def test_warnings_fail_only_with_strict(run_cli: Run, tmp_path: Path) -> None:
    path = str(_csv(tmp_path / "low.csv", np.random.default_rng(2).uniform(0.0, 0.25, 500)))
    code, out, _ = run_cli(["monitor", path])
    assert code == 0 and "no-positives" in out and "Result: WARN" in out
    assert run_cli(["monitor", path, "--strict"])[0] == 1


def test_json_output_with_exact_drift(run_cli: Run, tmp_path: Path) -> None:
    cur = _csv(tmp_path / "cur.csv", HEALTHY)
    ref = _csv(tmp_path / "ref.csv", np.random.default_rng(3).beta(5, 2, 1000))
    code, out, _ = run_cli(["monitor", str(cur), "--reference", str(ref), "--format", "json"])
    doc = json.loads(out)
    assert code == 0  # drift is a warning by default
    assert doc["schema"] == "loraguard.monitor/1"
    assert doc["verdict"] == "warn"
    assert doc["drift"]["ks_method"] == "exact"
    assert [a["rule"] for a in doc["alerts"]] == ["drift"]
    assert doc["inputs"]["reference"] == str(ref)
    assert doc["policy"]["monitor"]["drift"]["psi_at_least"] == 0.2


def test_policy_file_changes_the_exit_code(run_cli: Run, tmp_path: Path) -> None:
    path = str(_csv(tmp_path / "zeros.csv", np.zeros(100)))
    policy = tmp_path / "p.toml"
    policy.write_text('[monitor.degenerate]\nseverity = "warning"\n[monitor.stuck]\nenabled = false\n')
    assert run_cli(["monitor", path, "--policy", str(policy)])[0] == 0


@pytest.mark.shared
def test_segments_from_the_jigsaw_file(run_cli: Run, tmp_path: Path, jigsaw_train: Path) -> None:
    from loraguard.monitor.predictions import read_labels

    labels = read_labels(jigsaw_train)
    values = np.where(labels.groups == labels.groups[0], 0.0, HEALTHY[: labels.y.size])
    path = _csv(tmp_path / "p.csv", values, ids=labels.row_ids.tolist())
    code, out, _ = run_cli(["monitor", str(path), "--group-by-file", str(jigsaw_train), "--format", "json"])
    doc = json.loads(out)
    assert code == 1
    assert len(doc["segments"]) == 2
    stuck = [a for a in doc["alerts"] if a["rule"] == "degenerate"]
    assert [a["segment"] for a in stuck] == [str(labels.groups[0])]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("row_id,score\n1,0.5\n", r"bad.csv has no 'rule_violation' column"),
        ("row_id,rule_violation\n1,0.5\n2,nan\n", r"bad.csv line 3: rule_violation = nan is NaN"),
        ("row_id,rule_violation\n1,0.5\n2,1.2\n", r"bad.csv line 3: rule_violation = 1.2 is outside \[0, 1\]"),
        ("row_id,rule_violation\n1,0.5\n1,0.2\n", r"bad.csv line 3: duplicate row_id '1' \(first on line 2\)"),
        ("", r"bad.csv is empty"),
    ],
)
def test_bad_input_exits_2_naming_file_and_row(run_cli: Run, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, out, err = run_cli(["monitor", str(path)])
    assert code == 2
    assert out == ""
    assert err.startswith("Error: ")
    assert __import__("re").search(message, err), err


def test_other_bad_inputs_exit_2(run_cli: Run, tmp_path: Path) -> None:
    good = str(_csv(tmp_path / "p.csv", HEALTHY[:10]))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("row_id,rule_violation\nd\xe9,0.1\n".encode("latin-1"))
    policy = tmp_path / "p.toml"
    policy.write_text("[monitor.stuck]\nshare = 0.6\n")
    groups = tmp_path / "g.csv"
    groups.write_text("row_id,rule\n0,A\n1,B\n")
    cases = {
        "is not UTF-8": ["monitor", str(latin)],
        "cannot read": ["monitor", str(tmp_path / "missing.csv")],
        "unknown key 'monitor.stuck.share'": ["monitor", good, "--policy", str(policy)],
        "8 row_id(s) of": ["monitor", good, "--group-by-file", str(groups)],
        "--segment needs --group-by-file": ["monitor", good, "--segment", "rule"],
    }
    for message, args in cases.items():
        code, _, err = run_cli(args)
        assert code == 2, args
        assert message in err, err


def test_unknown_format_is_a_usage_error(run_cli: Run, tmp_path: Path) -> None:
    code, _, _ = run_cli(["monitor", str(_csv(tmp_path / "p.csv", HEALTHY[:10])), "--format", "xml"])
    assert code == 2
