"""AUC (pooled and per rule) and the distribution summary a score run reports (from the monitor's summary)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loraguard.monitor import summarize
from loraguard.scoring.metrics import auc_report, histogram_lines, roc_auc, run_summary


def test_roc_auc_matches_sklearn_with_ties() -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.random(500) + 0.3 * y, 1)  # many ties
    assert roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)


def test_roc_auc_edges() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5] * 4) == 0.5
    assert np.isnan(roc_auc([1, 1, 1], [0.1, 0.2, 0.3]))


def test_per_rule_auc_skips_one_class_rules_and_says_so() -> None:
    labels = [0, 1, 0, 1, 1, 1]
    scores = [0.1, 0.9, 0.2, 0.8, 0.3, 0.4]
    rules = ["a", "a", "b", "b", "c", "c"]
    rep = auc_report(labels, scores, rules)
    assert rep.per_rule["a"] == 1.0 and rep.per_rule["b"] == 1.0
    assert rep.skipped_rules == ("c",)
    assert rep.mean_rule_auc == 1.0
    assert rep.auc == pytest.approx(roc_auc(labels, scores))
    assert rep.to_dict()["per_rule"]["c"] == {"auc": None, "n": 2}


def test_pooled_and_per_rule_differ_on_real_data(jigsaw_train: Path) -> None:
    """A synthetic predictor that ranks well inside each rule but shifts one rule up: per-rule AUC
    stays high while pooled AUC drops, which is why both are reported."""
    from loraguard.scoring.data import load_rows

    rs = load_rows(jigsaw_train)
    assert rs.labels is not None
    rng = np.random.default_rng(0)
    y = rs.labels.astype(float)
    first_rule = rs.rules[0]
    shift = np.array([0.6 if r == first_rule else 0.0 for r in rs.rules])
    scores = 0.3 * y + 0.25 * rng.random(len(y)) + shift
    rep = auc_report(rs.labels, scores, rs.rules)
    assert len(rep.per_rule) == 2 and not rep.skipped_rules
    assert all(v > 0.85 for v in rep.per_rule.values())
    assert rep.mean_rule_auc == pytest.approx(np.mean(list(rep.per_rule.values())))
    assert rep.auc < rep.mean_rule_auc - 0.1
    sk = pytest.importorskip("sklearn.metrics")
    assert rep.auc == pytest.approx(sk.roc_auc_score(rs.labels, scores), abs=1e-12)


def test_summarize_and_histogram() -> None:
    values = np.array([0.0, 0.05, 0.5, 0.95, 1.0])
    s = run_summary(summarize(values), degenerate=False)
    assert s["n"] == 5 and s["min"] == 0.0 and s["max"] == 1.0
    assert s["mean"] == pytest.approx(0.5)
    assert s["histogram"] == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    lines = histogram_lines(s["histogram"])
    assert len(lines) == 10 and lines[0].endswith(" 2") and lines[-1].startswith("[0.9, 1.0]")
