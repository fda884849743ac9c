"""`Monitor.to_state` / `from_state`: a JSON round trip that loses nothing (the server keeps its monitors
across restarts this way)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from loraguard.errors import InputError
from loraguard.monitor import Monitor


def _fed(seed: int, n: int = 5000, top_capacity: int = 256) -> Monitor:
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.beta(2, 5, n), [0.0] * 50, [np.nan, 1.5]])
    parsed = np.ones(values.size, dtype=bool)
    parsed[:7] = False
    rules = rng.choice(["spam", "legal", "other"], values.size)
    return Monitor(top_capacity=top_capacity).update(values, parsed=parsed, segments=rules)


@pytest.mark.parametrize("top_capacity", [256, 10_000])  # Misra-Gries summary inexact, and exact
def test_round_trip_through_json_is_identical(top_capacity: int) -> None:
    mon = _fed(0, top_capacity=top_capacity)
    back = Monitor.from_state(json.loads(json.dumps(mon.to_state())))
    assert back.summary() == mon.summary()
    assert [a.to_dict() for a in back.alerts()] == [a.to_dict() for a in mon.alerts()]
    # the restored monitor keeps streaming exactly like the original
    more = np.random.default_rng(1).uniform(size=3000)
    mon.update(more, segments=["spam"] * more.size)
    back.update(more, segments=["spam"] * more.size)
    assert back.summary() == mon.summary()
    # and merges like it
    other = _fed(2, top_capacity=top_capacity)
    assert Monitor.from_state(mon.to_state()).merge(other).summary() == mon.merge(other).summary()


def test_an_empty_monitor_round_trips() -> None:
    empty = Monitor()
    back = Monitor.from_state(json.loads(json.dumps(empty.to_state())))
    assert back.summary() == empty.summary() and back.n == 0


@pytest.mark.parametrize(
    "damage",
    [
        lambda s: s.update(schema="something/else"),
        lambda s: s.pop("fine"),
        lambda s: s["fine"].update(index=[10_000]),
        lambda s: s.update(n=s["n"] + 1),  # counts no longer add up
        lambda s: s["top"].update(keys=s["top"]["keys"][:-1]),
        lambda s: s["config"].update(bins=1),
    ],
)
def test_damaged_states_are_refused(damage) -> None:
    state = json.loads(json.dumps(_fed(3).to_state()))
    damage(state)
    with pytest.raises(InputError):
        Monitor.from_state(state)
