"""The routing table: weighted split, stickiness by key, stability across rebuilds, shadow/idle modes."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

from loraguard.server.routing import Route, RoutingTable, key_point


def _table(*weights: tuple[str, str, float]) -> RoutingTable:
    return RoutingTable.build([Route(f"{n}@1", n, 1, status, w) for n, status, w in weights], revision=7)


def test_random_split_follows_the_weights() -> None:
    table = _table(("a", "production", 3.0), ("b", "candidate", 1.0))
    rng = random.Random(1)
    counts = Counter(table.choose(None, rng).ref for _ in range(20_000))  # type: ignore[union-attr]
    assert abs(counts["a@1"] / 20_000 - 0.75) < 0.015
    assert table.shares() == {"a@1": 0.75, "b@1": 0.25}


def test_keys_are_sticky_and_split_by_weight() -> None:
    table = _table(("a", "production", 1.0), ("b", "candidate", 1.0))
    keys = [f"user-{i}" for i in range(4000)]
    first = {k: table.choose(k).ref for k in keys}  # type: ignore[union-attr]
    assert all(table.choose(k).ref == first[k] for k in keys)  # type: ignore[union-attr]
    share = sum(v == "a@1" for v in first.values()) / len(keys)
    assert 0.46 < share < 0.54


def test_same_key_same_adapter_after_a_rebuild_in_another_order() -> None:
    """A restart rebuilds the table from the registry, maybe in another order: keys must not move."""
    routes = [
        Route("b@2", "b", 2, "candidate", 1.0),
        Route("a@1", "a", 1, "production", 2.0),
        Route("c@1", "c", 1, "candidate", 0.0),
    ]
    one, two = RoutingTable.build(routes), RoutingTable.build(list(reversed(routes)))
    for i in range(500):
        assert one.choose(f"k{i}") == two.choose(f"k{i}")


def test_key_point_is_a_stable_hash_not_pythons_salted_hash() -> None:
    want = int.from_bytes(hashlib.sha256(b"user-42").digest()[:8], "big") / 2.0**64
    assert key_point("user-42") == want
    assert 0.0 <= key_point("") < 1.0


def test_changing_one_weight_moves_only_the_keys_it_must() -> None:
    """a:b from 1:1 to 1:3 moves keys from a to b only (never from b to a)."""
    before = _table(("a", "production", 1.0), ("b", "candidate", 1.0))
    after = _table(("a", "production", 1.0), ("b", "candidate", 3.0))
    moved = Counter((before.choose(f"k{i}").ref, after.choose(f"k{i}").ref) for i in range(3000))  # type: ignore[union-attr]
    assert moved[("b@1", "a@1")] == 0 and moved[("a@1", "b@1")] > 500


def test_modes_and_no_live_adapter() -> None:
    table = _table(("a", "production", 0.0), ("b", "candidate", 0.0))
    assert [r.mode for r in table.routes] == ["idle", "shadow"]
    assert table.choose("x") is None and table.choose(None) is None
    assert [r.ref for r in table.shadows] == ["b@1"]
    assert RoutingTable().choose() is None
