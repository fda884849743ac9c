"""Durations and the time-budget projection (with a fake clock)."""

from __future__ import annotations

import pytest

from loraguard.errors import InputError, TimeBudgetExceededError
from loraguard.scoring.progress import TimeBudget, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("9h", 32400), ("90m", 5400), ("1h30m", 5400), ("45s", 45), ("45", 45), ("1.5h", 5400), (" 2m 30s ", 150)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "0s", "-3m", "h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(InputError, match="time budget"):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(12.34) == "12.3s"
    assert format_duration(3725) == "1h02m05s"
    assert format_duration(125) == "2m05s"


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_budget_stops_after_second_batch_with_projection() -> None:
    clock = FakeClock()
    budget = TimeBudget(100.0, clock=clock)
    budget.start(100, 1000)
    clock.t = 30.0  # slow first batch (warm-up) is not used for the rate
    budget.advance(10, 100)
    clock.t = 32.0  # 2 s per 100 units -> 800 units left -> 16 s more -> 48 s: fine
    budget.advance(10, 100)
    clock.t = 52.0  # 22 s per 200 units since the first batch; 700 left -> 52 + 77 > 100
    with pytest.raises(TimeBudgetExceededError, match=r"would be exceeded by .*projected"):
        budget.advance(10, 100)


def test_budget_counts_all_adapter_runs() -> None:
    clock = FakeClock()
    budget = TimeBudget(100.0, runs=3, clock=clock)
    budget.start(10, 100)
    clock.t = 5.0
    budget.advance(5, 50)
    clock.t = 20.0  # 15 s per 50 units; 50 + 200 units left -> 20 + 75 = 95 s: fine
    budget.advance(5, 50)
    budget.start(10, 100)
    clock.t = 50.0  # 45 s for 100 units since the first batch; 150 units left -> 50 + 67.5 > 100
    with pytest.raises(TimeBudgetExceededError, match="over 3 adapter runs"):
        budget.advance(5, 50)


def test_budget_never_stops_finished_work() -> None:
    clock = FakeClock()
    budget = TimeBudget(1.0, clock=clock)
    budget.start(2, 20)
    clock.t = 0.5
    budget.advance(1, 10)
    clock.t = 5.0
    budget.advance(1, 10)  # over budget, but nothing is left to do


def test_budget_already_exceeded_on_first_batch() -> None:
    clock = FakeClock()
    budget = TimeBudget(1.0, clock=clock)
    budget.start(10, 100)
    clock.t = 3.0
    with pytest.raises(TimeBudgetExceededError, match="exceeded by"):
        budget.advance(1, 10)
