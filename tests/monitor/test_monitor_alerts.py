"""Alert rules: each fires on a crafted input, none fires on healthy predictions; drift statistics."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from loraguard.findings import Severity
from loraguard.monitor import RULES, Monitor, drift_stats, evaluate, monitor_values
from loraguard.monitor.drift import histogram, js_distance, ks_binned, psi, psi_band

HEALTHY = np.random.default_rng(2024).beta(2, 5, 5000)


def rng(seed: int = 0) -> np.random.Generator:
    """A fresh generator per use, so results do not depend on test order (xdist)."""
    return np.random.default_rng(seed)


def _alerts(values: np.ndarray, parsed: np.ndarray | None = None, **kw: object) -> dict[str, object]:
    alerts = evaluate(monitor_values(values, parsed=parsed).summary(), **kw)  # type: ignore[arg-type]
    return {a.rule: a for a in alerts}


def test_healthy_beta_predictions_raise_no_alert() -> None:
    assert _alerts(HEALTHY) == {}
    assert _alerts(HEALTHY, reference=rng(9).beta(2, 5, 3000)) == {}


def test_case_study_all_zero_predictions_are_degenerate_and_stuck() -> None:
    alerts = _alerts(np.zeros(2029), parsed=np.ones(2029, dtype=bool))  # "parsing succeeded 100%"
    assert alerts["degenerate"].severity is Severity.ERROR
    assert alerts["stuck"].severity is Severity.ERROR
    assert alerts["stuck"].evidence["top_share"] == 1.0
    assert alerts["stuck"].evidence["top_value"] == 0.0
    assert alerts["degenerate"].evidence["distinct"] == 1
    assert "parse-failure" not in alerts
    assert set(alerts) == {"degenerate", "stuck", "low-spread", "skew", "no-positives"}


def _noise(loc: float, scale: float, n: int = 2000) -> np.ndarray:
    return np.clip(rng(1).normal(loc, scale, n), 0, 1)


CRAFTED: dict[str, Callable[[], tuple[np.ndarray, np.ndarray | None]]] = {
    "degenerate": lambda: (_noise(0.4, 1e-4), None),
    "stuck": lambda: (np.where(rng(2).random(2000) < 0.6, 0.0, rng(3).random(2000)), None),
    "low-spread": lambda: (_noise(0.5, 0.01), None),
    "skew": lambda: (rng(4).beta(1, 60, 2000), None),
    "no-positives": lambda: (rng(5).uniform(0.0, 0.25, 2000), None),
    "parse-failure": lambda: (rng(6).beta(2, 5, 2000), rng(7).random(2000) > 0.1),
    "invalid-value": lambda: (np.concatenate([rng(8).beta(2, 5, 2000), [np.nan]]), None),
}


@pytest.mark.parametrize("rule", sorted(CRAFTED))
def test_each_rule_fires_on_its_crafted_input(rule: str) -> None:
    values, parsed = CRAFTED[rule]()
    alerts = _alerts(values, parsed)
    assert rule in alerts
    assert alerts[rule].severity is RULES[rule].severity
    for key, threshold in RULES[rule].thresholds.items():
        assert alerts[rule].evidence[key] == threshold  # the thresholds that applied travel with the alert


def test_crafted_inputs_fire_only_what_they_should() -> None:
    assert "degenerate" not in _alerts(*CRAFTED["stuck"]())
    assert "degenerate" not in _alerts(*CRAFTED["low-spread"]())
    assert "stuck" not in _alerts(*CRAFTED["low-spread"]())


def test_two_distinct_values_are_degenerate_even_with_high_std() -> None:
    alerts = _alerts(np.tile([0.0, 1.0], 20))
    assert "degenerate" in alerts
    assert alerts["degenerate"].evidence["std"] == pytest.approx(0.5)


def test_too_few_samples_do_not_fire_shape_rules() -> None:
    assert _alerts(np.zeros(7)) == {}
    assert "degenerate" in _alerts(np.zeros(8))


def test_drift_fires_on_a_shifted_distribution_with_evidence() -> None:
    alerts = _alerts(HEALTHY, reference=rng(10).beta(5, 2, 3000))
    drift = alerts["drift"]
    assert drift.severity is Severity.WARNING
    assert drift.evidence["psi_band"] == "significant"
    assert drift.evidence["ks_method"] == "binned"
    assert set(drift.evidence["fired_by"]) == {"psi", "ks"}


def test_drift_uses_exact_ks_when_both_samples_are_given() -> None:
    ref = rng(11).beta(2.6, 5, 3000)
    s = monitor_values(HEALTHY).summary()
    exact = drift_stats(s, ref, current_values=HEALTHY)
    assert exact is not None and exact.ks_method == "exact"
    expected = stats.ks_2samp(HEALTHY, ref)
    assert exact.ks_statistic == pytest.approx(expected.statistic)
    assert exact.ks_pvalue == pytest.approx(expected.pvalue)


def test_binned_ks_is_a_close_lower_bound_of_the_exact_statistic() -> None:
    cur, ref = rng(12).beta(2, 5, 4000), rng(13).beta(2.3, 5, 4000)
    d_binned, p_binned = ks_binned(histogram(ref, 1000), histogram(cur, 1000))
    exact = stats.ks_2samp(cur, ref, method="asymp")
    max_bin_mass = max(histogram(cur, 1000).max() / cur.size, histogram(ref, 1000).max() / ref.size)
    assert exact.statistic - max_bin_mass <= d_binned <= exact.statistic + 1e-12
    assert p_binned >= exact.pvalue  # same asymptotic distribution, smaller D
    assert p_binned == pytest.approx(stats.kstwo.sf(d_binned, 2000))


def test_psi_and_js_values() -> None:
    a = np.array([50, 30, 20])
    assert psi(a, a) == 0.0
    assert js_distance(a, a) == 0.0
    b = np.array([20, 30, 50])
    p, q = b / 100, a / 100
    assert psi(a, b) == pytest.approx(np.sum((p - q) * np.log(p / q)))
    assert js_distance(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert [psi_band(x) for x in (0.05, 0.1, 0.19, 0.2)] == ["stable", "moderate", "moderate", "significant"]


def test_segment_alerts_name_the_segment_and_skip_rules_fired_overall() -> None:
    healthy = rng(14).beta(2, 5, 1000)
    values = np.concatenate([healthy, np.zeros(100)])
    labels = np.array(["ok"] * 1000 + ["broken rule"] * 100)
    alerts = Monitor().update(values, segments=labels).alerts()
    by_rule = {a.rule: a for a in alerts}
    assert by_rule["degenerate"].segment == "broken rule"
    assert by_rule["degenerate"].message.startswith("[broken rule]")
    assert all(a.segment == "broken rule" for a in alerts)
    everything_broken = Monitor().update(np.zeros(200), segments=np.array(["a", "b"] * 100)).alerts()
    assert [a.rule for a in everything_broken if a.rule == "stuck"] == ["stuck"]  # not repeated per segment


def test_drift_against_a_reference_monitor_runs_per_segment() -> None:
    rng = np.random.default_rng(8)
    labels = np.array(["big"] * 5000 + ["small"] * 100)
    ref = Monitor().update(rng.beta(2, 5, 5100), segments=labels)
    current = np.concatenate([rng.beta(2, 5, 5000), rng.beta(5, 2, 100)])  # only "small" moved
    drift = [a for a in Monitor().update(current, segments=labels).alerts(reference=ref) if a.rule == "drift"]
    assert [a.segment for a in drift] == ["small"]
    assert drift[0].evidence["n_reference"] == 100


def test_alerts_are_sorted_errors_first() -> None:
    alerts = evaluate(monitor_values(np.zeros(100)).summary())
    ranks = [a.severity.rank for a in alerts]
    assert ranks == sorted(ranks, reverse=True)


def test_registry_is_well_formed() -> None:
    for name, spec in RULES.items():
        assert name == spec.name and name == name.lower() and " " not in name
        assert spec.title and spec.thresholds
        assert "min_samples" in spec.thresholds
    assert [n for n, s in RULES.items() if s.needs_reference] == ["drift"]
