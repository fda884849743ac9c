"""Streaming statistics of `Monitor`: exactness against numpy, merging, memory, segments, JSON."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

from loraguard.errors import InputError
from loraguard.monitor import OTHER_SEGMENT, Monitor, MonitorSummary, monitor_values


def _batches(rng: np.random.Generator, total: int) -> list[np.ndarray]:
    sizes = rng.integers(0, 700, size=total // 350)  # includes empty and 1-value batches
    return [rng.beta(0.7, 2.5, int(s)) for s in sizes]


def test_welford_matches_numpy_on_random_batches() -> None:
    rng = np.random.default_rng(7)
    batches = [*_batches(rng, 20_000), np.array([0.3]), np.array([])]
    mon = Monitor()
    for batch in batches:
        mon.update(batch)
    everything = np.concatenate(batches)
    s = mon.summary()
    assert s.n == everything.size
    assert s.mean == pytest.approx(everything.mean(), rel=1e-12)
    assert s.std == pytest.approx(everything.std(), rel=1e-10)
    assert (s.min, s.max) == (everything.min(), everything.max())


def test_welford_is_stable_with_a_large_offset() -> None:
    # naive sum-of-squares loses everything here; Welford/Chan keeps the 1e-4 spread
    rng = np.random.default_rng(0)
    values = 0.9999 - rng.random(100_000) * 1e-4
    mon = Monitor()
    for chunk in np.array_split(values, 37):
        mon.update(chunk)
    assert mon.summary().std == pytest.approx(values.std(), rel=1e-6)


def test_histogram_and_quantiles_match_numpy() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.beta(2, 5, 50_000), [0.0, 1.0, 1.0]])
    s = monitor_values(values, batch_size=4096).summary()
    expected, _ = np.histogram(values, bins=20, range=(0.0, 1.0))
    assert list(s.histogram) == expected.tolist()
    for key, q in s.quantiles.items():
        assert q == pytest.approx(np.quantile(values, int(key[1:]) / 100), abs=2e-3), key


def test_merge_equals_a_single_pass() -> None:
    rng = np.random.default_rng(11)
    parts = [rng.beta(2, 5, n) for n in (1000, 1, 0, 5000, 333)]
    parts[1] = np.array([0.5])
    labels = [rng.choice(["a", "b", "c"], p.size) for p in parts]
    single = Monitor()
    merged = Monitor()
    for p, lab in zip(parts, labels, strict=True):
        single.update(p, segments=lab)
        merged.merge(Monitor().update(p, segments=lab))
    a, b = single.summary(), merged.summary()
    assert (a.n, a.min, a.max, a.histogram, a.fine_histogram) == (b.n, b.min, b.max, b.histogram, b.fine_histogram)
    assert a.mean == pytest.approx(b.mean, rel=1e-12)
    assert a.std == pytest.approx(b.std, rel=1e-10)
    assert a.segments.keys() == b.segments.keys() == {"a", "b", "c"}
    for name in a.segments:
        assert a.segments[name].n == b.segments[name].n
        assert a.segments[name].std == pytest.approx(b.segments[name].std, rel=1e-10)


def test_merge_refuses_different_settings() -> None:
    with pytest.raises(InputError, match="different settings"):
        Monitor(bins=20).merge(Monitor(bins=10))


def test_top_value_and_distinct_count_are_exact_for_few_values() -> None:
    values = np.array([0.0] * 70 + [0.25] * 20 + [1.0] * 10)
    s = monitor_values(values, batch_size=7).summary()
    assert (s.top_value, s.top_count, s.top_count_error) == (0.0, 70, 0)
    assert s.top_share == pytest.approx(0.7)
    assert (s.distinct, s.distinct_exact) == (3, True)


def test_values_equal_after_rounding_to_1e6_count_as_one() -> None:
    s = monitor_values(np.array([0.2, 0.2 + 1e-9, 0.2 - 1e-9, 0.7])).summary()
    assert (s.top_value, s.top_count, s.distinct) == (pytest.approx(0.2), 3, 2)


def test_heavy_hitter_found_among_many_distinct_values_within_the_error_bound() -> None:
    rng = np.random.default_rng(5)
    values = rng.random(200_000)
    values[rng.random(values.size) < 0.3] = 0.125  # a stuck value hidden in noise
    mon = Monitor(top_capacity=64)
    for chunk in np.array_split(values, 97):
        mon.update(chunk)
    s = mon.summary()
    true_count = int(np.sum(values == 0.125))
    assert s.top_value == 0.125
    assert not s.distinct_exact
    assert s.top_count <= true_count <= s.top_count + s.top_count_error
    assert s.top_count_error <= values.size / 65


def test_all_distinct_values_leave_no_top_value_but_a_bound() -> None:
    from loraguard.monitor.report import MonitorReport
    from loraguard.report.monitor_formatter import MonitorFormatter

    values = np.linspace(0.0, 1.0, 1000)  # 1000 distinct values, 256 counters
    s = monitor_values(values).summary()
    assert s.top_value is None and s.top_count == 0
    assert s.top_count_error >= 1  # the true count (1) is within the bound
    assert (s.distinct, s.distinct_exact) == (257, False)
    assert "no value occurs more than" in MonitorFormatter(title="t").text(MonitorReport(s, ()))


def test_parsed_mask_excludes_failures_and_allows_nan_there() -> None:
    values = np.array([0.2, np.nan, 0.4, 0.9, np.nan])
    parsed = np.array([True, False, True, True, False])
    s = Monitor().update(values, parsed=parsed).summary()
    assert (s.n, s.n_seen, s.n_unparsed, s.n_invalid) == (3, 5, 2, 0)
    assert s.parse_success_share == pytest.approx(0.6)
    assert s.mean == pytest.approx(0.5)


def test_invalid_values_are_counted_and_left_out() -> None:
    s = Monitor().update([0.1, np.nan, 1.5, -0.2, np.inf, 0.3]).summary()
    assert (s.n, s.n_invalid) == (2, 4)
    assert s.mean == pytest.approx(0.2)
    assert s.invalid_share == pytest.approx(4 / 6)


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(InputError, match="parsed has 2 entries for 3 values"):
        Monitor().update([0.1, 0.2, 0.3], parsed=[True, False])
    with pytest.raises(InputError, match="segments has 1 entries for 2 values"):
        Monitor().update([0.1, 0.2], segments=["a"])


def test_segments_match_a_monitor_per_subset_and_are_capped() -> None:
    rng = np.random.default_rng(2)
    values = rng.random(3000)
    labels = rng.choice(["r1", "r2", "r3", "r4"], values.size)
    mon = Monitor(max_segments=2)
    for v, lab in zip(np.array_split(values, 9), np.array_split(labels, 9), strict=True):
        mon.update(v, segments=lab)
    s = mon.summary()
    assert s.segments_capped
    assert set(s.segments) == {"r1", "r2", OTHER_SEGMENT}
    r1 = monitor_values(values[labels == "r1"]).summary()
    assert s.segments["r1"].n == r1.n
    assert s.segments["r1"].mean == pytest.approx(r1.mean)
    assert s.segments[OTHER_SEGMENT].n == int(np.isin(labels, ["r3", "r4"]).sum())


def test_retained_memory_does_not_grow_with_the_number_of_values() -> None:
    rng = np.random.default_rng(0)
    batch = rng.beta(2, 5, 10_000)

    def retained(n_batches: int) -> tuple[int, int]:
        tracemalloc.start()
        mon = Monitor()
        for _ in range(n_batches):
            mon.update(batch)
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return current, mon.memory_bytes()

    small_traced, small_state = retained(1)  # 1e4 values
    large_traced, large_state = retained(100)  # 1e6 values
    assert large_traced - small_traced < 64 * 1024
    assert large_state <= small_state + 4 * 1024
    assert large_state < 64 * 1024


def test_summary_json_round_trip() -> None:
    rng = np.random.default_rng(4)
    mon = Monitor().update(rng.random(500), parsed=rng.random(500) > 0.1, segments=rng.choice(["x", "y"], 500))
    s = mon.summary()
    doc = json.loads(json.dumps(s.to_dict()))
    assert doc["schema"] == "loraguard.monitor/1"
    assert doc["histogram"]["edges"][0] == 0.0 and doc["histogram"]["edges"][-1] == 1.0
    assert sum(doc["histogram"]["counts"]) == s.n
    assert MonitorSummary.from_dict(doc) == s


def test_empty_monitor_has_no_statistics() -> None:
    s = Monitor().summary()
    assert (s.n, s.mean, s.std, s.top_value, s.parse_success_share) == (0, None, None, None, None)
    assert s.quantiles == {}
    assert json.loads(json.dumps(s.to_dict()))["mean"] is None
