"""One summary and one "degenerate": a finished array is summarised as a stream is, and score, probe and
the monitor decide "degenerate" with the same function (each with its documented thresholds)."""

from __future__ import annotations

import numpy as np
import pytest

from loraguard.errors import InputError
from loraguard.monitor import RULES, Monitor, degenerate_reason, evaluate, summarize
from loraguard.monitor.alerts import has_no_positives, is_low_spread, is_skewed
from loraguard.probe import Effect, ProbeContext, Side

DEGENERATE = dict(RULES["degenerate"].thresholds)


def _fired(values: object, parsed: object = None) -> set[str]:
    return {a.rule for a in evaluate(summarize(values, parsed=parsed))}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0] * 10, True),  # the case study
        ([0.3 + 1e-5 * i for i in range(10)], True),  # std < 1e-3
        ([0.1, 0.9] * 5, True),  # two values only, n >= 8
        ([0.1, 0.9] * 3, False),  # two values but too few rows to say
        (list(np.linspace(0, 1, 10)), False),
        ([0.5, float("nan"), 0.7], True),  # NaN output is broken output (the invalid-value error)
        ([], False),
    ],
)
def test_degenerate_or_broken_output_of_a_finished_array(values: list[float], expected: bool) -> None:
    assert bool(_fired(values) & {"degenerate", "invalid-value"}) is expected


def test_a_finished_array_is_summarised_as_the_stream_is() -> None:
    values = np.random.default_rng(3).beta(2, 5, 5000)
    parsed = np.random.default_rng(4).random(5000) > 0.05
    stream = Monitor()
    for start in range(0, values.size, 333):
        stream.update(values[start : start + 333], parsed=parsed[start : start + 333])
    whole, streamed = summarize(values, parsed=parsed), stream.summary()
    assert whole.n == streamed.n == int(parsed.sum()) and whole.n_unparsed == 5000 - int(parsed.sum())
    assert whole.fine_histogram == streamed.fine_histogram and whole.distinct == streamed.distinct
    assert whole.mean == pytest.approx(streamed.mean, rel=1e-12) and whole.std == pytest.approx(streamed.std)
    assert [a.to_dict() for a in evaluate(whole)] == [a.to_dict() for a in evaluate(streamed)]


def test_rebinned_histogram_sums_the_fine_bins() -> None:
    s = summarize([0.0, 0.05, 0.5, 0.7, 0.95, 1.0])
    assert s.rebinned(10) == (2, 0, 0, 0, 0, 1, 0, 1, 0, 2)
    assert s.rebinned(20) == s.histogram and sum(s.rebinned(1)) == 6
    with pytest.raises(InputError, match="do not divide"):
        s.rebinned(7)


def test_degenerate_reason_names_the_test_that_fired() -> None:
    assert degenerate_reason(summarize(np.zeros(10)), **DEGENERATE) == "std 0 < 0.001"
    two = summarize([0.1, 0.9] * 5)
    assert degenerate_reason(two, **DEGENERATE) == "only 2 distinct value(s) over 10 rows"
    assert degenerate_reason(summarize(np.linspace(0, 1, 10)), **DEGENERATE) is None
    assert degenerate_reason(summarize([]), **{**DEGENERATE, "min_samples": 0}) is None  # no value, no verdict
    unparsed = summarize(np.zeros(10), parsed=np.zeros(10, dtype=bool))
    assert degenerate_reason(unparsed, **DEGENERATE) is None  # parse failures are not predictions


def test_the_probe_keeps_its_two_row_std_test_with_the_same_function() -> None:
    """The monitor's `degenerate` needs `min_samples` (8) values for both tests; LG602 documents
    "std < 1e-3 (at least 2 rows)": the same function, the probe's thresholds."""
    four = np.full(4, 0.25)
    assert degenerate_reason(summarize(four), **DEGENERATE) is None
    assert "degenerate" not in _fired(four)
    assert degenerate_reason(summarize(four), **DEGENERATE, std_min_samples=2) == "std 0 < 0.001"
    spread = np.linspace(0.05, 0.95, 4)
    effect = Effect(mean_kl=1.0, max_logit_diff=1.0, max_prob_diff=0.5, mean_prob_diff=0.1, rows=4)

    def side(p: np.ndarray) -> Side:
        return Side(probabilities=p, parsed=np.ones(p.size, dtype=bool), logits_finite=np.ones(p.size, dtype=bool))

    ctx = ProbeContext(tuple("abcd"), "logits", side(four), side(spread), effect)
    assert ctx.degenerate(ctx.adapted) == "std 0 < 0.001" and ctx.degenerate(ctx.base) is None
    assert ctx.adapted_stats.distinct == ctx.adapted.summary.distinct == 1


def test_probe_monitor_and_score_agree_on_the_case_study() -> None:
    from loraguard.scoring.metrics import run_summary

    zeros = np.zeros(16)
    s = summarize(zeros)
    fired = {a.rule for a in evaluate(s)}
    summary = run_summary(s, degenerate="degenerate" in fired)
    assert summary["degenerate"] and summary["distinct"] == 1 and summary["n"] == 16
    side = Side(probabilities=zeros, parsed=np.ones(16, dtype=bool), logits_finite=np.ones(16, dtype=bool))
    effect = Effect(mean_kl=1.0, max_logit_diff=1.0, max_prob_diff=0.5, mean_prob_diff=0.1, rows=16)
    assert ProbeContext(tuple(map(str, range(16))), "logits", side, side, effect).degenerate(side) is not None
    assert {"degenerate", "stuck", "low-spread", "skew", "no-positives"} == fired


def test_shape_conditions_respect_their_thresholds() -> None:
    flat = summarize(np.full(10, 0.1) + np.linspace(0, 0.01, 10))
    assert is_low_spread(flat, min_samples=8, std_below=0.05)
    assert not is_low_spread(flat, min_samples=11, std_below=0.05)
    assert is_skewed(flat, min_samples=1, mean_below=0.2, mean_above=0.8)
    assert not is_skewed(flat, min_samples=1, mean_below=0.05, mean_above=0.95)
    assert has_no_positives(flat, min_samples=1, max_below=0.3) and not has_no_positives(
        flat, min_samples=1, max_below=0.1
    )
    empty = summarize([])
    assert not (is_low_spread(empty, min_samples=0, std_below=1) or has_no_positives(empty, min_samples=0, max_below=1))
