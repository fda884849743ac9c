"""`run_gate`: the silent regressions it must catch, what it must let through, and its report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from loraguard.errors import DataFormatError
from loraguard.findings import Verdict
from loraguard.gate import run_gate
from loraguard.monitor.predictions import Labels, Predictions, read_labels
from loraguard.report.gate_formatter import GateFormatter

N = 1000
RNG = np.random.default_rng(10)
IDS = np.array([f"r{i}" for i in range(N)])
Y = (RNG.random(N) < 0.3).astype(np.int8)
BASE_VALUES = np.clip(0.35 * Y + RNG.beta(2, 5, N) * 0.65, 0, 1)


def _preds(values: np.ndarray, source: str, ids: np.ndarray = IDS) -> Predictions:
    return Predictions(ids, values, source=source)


BASELINE = _preds(BASE_VALUES, "prod.csv")
LABELS = Labels(IDS, Y, np.where(np.arange(N) % 2 == 0, "rule A", "rule B"), "train.csv")


def _positive_rate_at(values: np.ndarray, rate: float) -> np.ndarray:
    """A monotone transform of `values` whose share >= 0.5 is `rate` (ranks, hence AUC, unchanged)."""
    ordered = np.sort(values)
    k = round(rate * values.size)
    cut = (ordered[-k - 1] + ordered[-k]) / 2  # exactly k values above the cut
    return values ** (np.log(0.5) / np.log(cut))


def _failed(report: object) -> list[str]:
    return [c.metric for c in report.checks if c.status == "fail"]  # type: ignore[attr-defined]


def test_positive_rate_shift_from_10_to_23_percent_fails() -> None:
    baseline = _preds(_positive_rate_at(BASE_VALUES, 0.10), "prod.csv")
    candidate = _preds(_positive_rate_at(BASE_VALUES, 0.23), "cand.csv")
    report = run_gate(candidate, baseline, LABELS)
    assert report.baseline_metrics["positive_rate"] == pytest.approx(0.10, abs=1e-3)
    assert report.metrics["positive_rate"] == pytest.approx(0.23, abs=1e-3)
    assert report.metrics["auc"] == pytest.approx(report.baseline_metrics["auc"])  # the ranking did not move
    assert report.verdict is Verdict.FAIL
    assert _failed(report) == ["positive_rate_shift"]
    assert report.exit_code() == 1


def test_identical_candidate_passes() -> None:
    report = run_gate(_preds(BASE_VALUES, "cand.csv"), BASELINE, LABELS)
    assert report.verdict is Verdict.PASS, [c.message for c in report.checks if c.status != "pass"]
    assert {c.status for c in report.checks} == {"pass"}
    assert report.bootstrap["auc"].delta == 0.0
    assert report.exit_code(strict=True) == 0


def test_degenerate_candidate_fails_on_the_monitor_rules() -> None:
    report = run_gate(_preds(np.zeros(N), "zeros.csv"), BASELINE)
    assert report.verdict is Verdict.FAIL
    assert "monitor_errors" in _failed(report)
    assert {"degenerate", "stuck"} <= {a.rule for a in report.alerts}
    skipped = {c.metric for c in report.checks if c.status == "skipped"}
    assert {"auc", "auc_macro", "spearman"} <= skipped  # no labels; Spearman undefined for a constant


def test_clearly_worse_auc_fails_with_its_interval() -> None:
    noisy = np.clip(0.6 * BASE_VALUES + 0.4 * np.random.default_rng(3).random(N), 0, 1)
    report = run_gate(_preds(noisy, "cand.csv"), BASELINE, LABELS)
    ci = report.bootstrap["auc"]
    assert ci.high < 0 and ci.delta < -0.01
    assert {"auc", "auc_delta_ci_high", "auc_macro", "auc_macro_delta_ci_high"} <= set(_failed(report))


def test_non_critical_failures_only_warn() -> None:
    rng = np.random.default_rng(4)
    shuffled_a_bit = np.clip(BASE_VALUES + rng.normal(0, 0.08, N), 0, 1)
    report = run_gate(_preds(shuffled_a_bit, "cand.csv"), BASELINE)  # no labels: no AUC checks
    assert report.verdict is Verdict.WARN, [c.message for c in report.checks if c.status != "pass"]
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1


def test_rows_are_aligned_by_row_id() -> None:
    order = np.random.default_rng(5).permutation(N)
    candidate = _preds(BASE_VALUES[order], "cand.csv", IDS[order])
    report = run_gate(candidate, BASELINE, LABELS)
    assert report.verdict is Verdict.PASS
    assert report.metrics["spearman"] == pytest.approx(1.0)


def test_mismatched_ids_are_refused() -> None:
    other = _preds(BASE_VALUES, "cand.csv", np.array([f"x{i}" for i in range(N)]))
    with pytest.raises(DataFormatError, match="row_ids do not match"):
        run_gate(other, BASELINE)


def test_threshold_argument_overrides_the_policy() -> None:
    report = run_gate(_preds(BASE_VALUES, "cand.csv"), BASELINE, threshold=0.3)
    assert report.settings.decision_threshold == 0.3
    assert report.metrics["positive_rate"] == pytest.approx(np.mean(BASE_VALUES >= 0.3))
    assert report.policy["gate"]["decision_threshold"] == 0.3


def test_report_serialises_with_schema_and_policy() -> None:
    report = run_gate(_preds(_positive_rate_at(BASE_VALUES, 0.23), "cand.csv"), BASELINE, LABELS)
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["schema"] == "loraguard.gate/1"
    assert doc["verdict"] == "fail"
    assert doc["policy"]["gate"]["checks"]["positive_rate_shift"]["threshold"] == 0.05
    assert {c["metric"] for c in doc["checks"]} == set(report.policy["gate"]["checks"])
    assert doc["bootstrap"]["auc"]["resamples"] == 1000
    md = GateFormatter().markdown(report)
    assert md.startswith("## ❌ loraguard gate: **FAIL**")
    assert "| ❌ | `positive_rate_shift` |" in md
    assert "Policy applied (defaults)" in md
    assert "positive_rate_shift" in GateFormatter().text(report)


@pytest.mark.shared
def test_per_rule_auc_on_the_real_jigsaw_labels(jigsaw_train: Path) -> None:
    labels = read_labels(jigsaw_train)
    rng = np.random.default_rng(0)
    base = np.clip(0.3 * labels.y + rng.beta(2, 5, labels.y.size) * 0.7, 0, 1)
    cand = np.clip(0.25 * labels.y + rng.beta(2, 5, labels.y.size) * 0.75, 0, 1)
    report = run_gate(
        Predictions(labels.row_ids, cand, source="c"), Predictions(labels.row_ids, base, source="b"), labels
    )
    assert len(report.per_group) == 2
    for rule, row in report.per_group.items():
        rows = labels.groups == rule
        assert row["rows"] == int(rows.sum())
        assert row["candidate"] == pytest.approx(roc_auc_score(labels.y[rows], cand[rows]))
        assert row["baseline"] == pytest.approx(roc_auc_score(labels.y[rows], base[rows]))
    assert report.metrics["auc_macro"] == pytest.approx(np.mean([r["candidate"] for r in report.per_group.values()]))
    assert report.metrics["auc"] == pytest.approx(roc_auc_score(labels.y, cand))
    ci = report.bootstrap["auc_macro"]
    assert ci.low <= ci.delta <= ci.high
