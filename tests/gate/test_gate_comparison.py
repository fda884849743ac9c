"""Gate statistics: vectorised weighted AUC, the paired bootstrap, agreement metrics and checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from loraguard.gate import bootstrap_auc_delta, evaluate_check, weighted_auc
from loraguard.gate.comparison import auc, auc_by_group, decision_stats, rank_agreement
from loraguard.monitor.policy import MetricThreshold


def _data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(np.int8)
    a = np.round(np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1), 2)  # rounded: plenty of ties
    b = np.round(np.clip(0.2 * y + rng.random(n) * 0.8, 0, 1), 2)
    return y, a, b


def test_weighted_auc_equals_sklearn_with_ties_and_weights() -> None:
    y, a, _ = _data()
    rng = np.random.default_rng(1)
    weights = rng.integers(0, 4, size=(5, y.size))
    got = weighted_auc(a, y, np.vstack([np.ones(y.size, dtype=np.int64), weights]))
    assert got[0] == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    for row, w in zip(got[1:], weights, strict=True):
        assert row == pytest.approx(roc_auc_score(y, a, sample_weight=w), abs=1e-12)


def test_weighted_auc_is_nan_with_one_class() -> None:
    assert np.isnan(weighted_auc(np.array([0.1, 0.2]), np.array([1, 1], dtype=np.int8), np.ones((1, 2), int))[0])
    assert auc([1, 1], [0.1, 0.2]) is None


def test_bootstrap_matches_a_naive_loop_with_the_same_draws() -> None:
    y, a, b = _data(n=300)
    ci = bootstrap_auc_delta(y, a, b, resamples=60, seed=42, confidence=0.9)
    assert ci is not None
    idx = np.random.default_rng(42).integers(0, y.size, size=(60, y.size))
    naive = [roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]) for i in idx]
    low, high = np.percentile(naive, [5, 95])
    assert (ci.low, ci.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert ci.delta == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    assert ci.low <= ci.delta <= ci.high
    assert bootstrap_auc_delta(y, a, b, resamples=60, seed=42, confidence=0.9) == ci  # seeded


def test_bootstrap_of_identical_models_is_zero() -> None:
    y, a, _ = _data()
    ci = bootstrap_auc_delta(y, a, a, resamples=200)
    assert ci is not None and (ci.delta, ci.low, ci.high) == (0.0, 0.0, 0.0)


def test_grouped_bootstrap_uses_the_mean_of_per_group_aucs() -> None:
    y, a, b = _data(n=500)
    groups = np.where(np.arange(500) % 3 == 0, "r1", "r2")
    ci = bootstrap_auc_delta(y, a, b, groups=groups, resamples=100)
    per_a, per_b = auc_by_group(y, a, groups), auc_by_group(y, b, groups)
    assert ci is not None
    assert ci.delta == pytest.approx(np.mean(list(per_a.values())) - np.mean(list(per_b.values())), abs=1e-12)
    assert ci.valid_resamples == 100


def test_decision_and_rank_agreement() -> None:
    base = np.array([0.1, 0.2, 0.6, 0.7, 0.3, 0.9, 0.05, 0.4, 0.45, 0.8])
    cand = base.copy()
    cand[[1, 4]] = 0.55  # two more positives
    d = decision_stats(cand, base, 0.5)
    assert (d["positive_rate"], d["positive_rate_baseline"]) == (0.6, 0.4)
    assert d["positive_rate_shift"] == pytest.approx(0.2)
    assert d["decision_agreement"] == pytest.approx(0.8)
    r = rank_agreement(base, base, top_k_fraction=0.3)
    assert (r["spearman"], r["top_k_overlap"], r["top_k"]) == (pytest.approx(1.0), 1.0, 3)
    assert rank_agreement(np.zeros(10), base)["spearman"] is None


@pytest.mark.parametrize(
    ("check", "cand", "base", "status", "failed"),
    [
        (MetricThreshold(threshold=0.8), 0.81, None, "pass", ()),
        (MetricThreshold(threshold=0.8), 0.79, None, "fail", ("threshold",)),
        (MetricThreshold(threshold=0.8, critical=False), 0.79, None, "warn", ("threshold",)),
        (MetricThreshold(threshold=0.05, higher_is_better=False), 0.13, None, "fail", ("threshold",)),
        (MetricThreshold(min_absolute_change=-0.01), 0.905, 0.91, "pass", ()),
        (MetricThreshold(min_absolute_change=-0.01), 0.89, 0.91, "fail", ("min_absolute_change",)),
        (MetricThreshold(min_absolute_change=0.05), 0.95, 0.91, "fail", ("min_absolute_change",)),  # MLflow
        (MetricThreshold(min_absolute_change=0.05, higher_is_better=False), 0.10, 0.2, "pass", ()),
        (MetricThreshold(min_relative_change=0.1), 0.995, 0.9, "pass", ()),
        (MetricThreshold(min_relative_change=0.1), 0.98, 0.9, "fail", ("min_relative_change",)),
        (MetricThreshold(min_relative_change=0.1), 1e-11, 0.0, "fail", ("min_relative_change",)),
        (MetricThreshold(min_relative_change=0.1), 1e-9, 0.0, "pass", ()),
        (MetricThreshold(threshold=0.0), 0.0, None, "pass", ()),
    ],
)
def test_metric_threshold_semantics(
    check: MetricThreshold, cand: float, base: float | None, status: str, failed: tuple[str, ...]
) -> None:
    result = evaluate_check("m", check, cand, base)
    assert (result.status, result.failed) == (status, failed)
    assert result.message.startswith("m = ")


def test_missing_values_are_skipped_not_passed() -> None:
    assert evaluate_check("auc", MetricThreshold(min_absolute_change=-0.01), None, None).status == "skipped"
    assert evaluate_check("auc", MetricThreshold(min_absolute_change=-0.01), 0.9, None).status == "skipped"
    partial = evaluate_check("auc", MetricThreshold(threshold=0.95, min_absolute_change=-0.01), 0.9, None)
    assert (partial.status, partial.failed) == ("fail", ("threshold",))
