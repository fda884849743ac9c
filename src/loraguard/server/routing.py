"""The routing table: which adapter answers a request, and which adapters shadow it.

- *live* adapters (traffic weight > 0, production or candidate) split the traffic in proportion
  to their weights;
- *shadow* adapters (candidates at weight 0) score every request in the background; their answers
  are never returned;
- production adapters at weight 0 are loaded but get no traffic (shown as `idle`).

With a request `key`, the choice is sticky: the key's SHA-256 is mapped to a point of [0, 1) and the
live adapters own consecutive slices of that interval in ref order, so the same key lands on the
same adapter while the weights are unchanged, across restarts and across replicas. Without a key
the point is drawn at random. A table is immutable: the reloader builds a new one and swaps the
reference (an atomic assignment), so a request never sees half an update.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Route", "RoutingTable", "key_point"]


@dataclass(frozen=True)
class Route:
    """One loaded adapter as the router sees it."""

    ref: str
    name: str
    version: int
    status: str
    weight: float

    @property
    def mode(self) -> str:
        """`live`, `shadow` (candidate at weight 0) or `idle` (production at weight 0)."""
        if self.weight > 0:
            return "live"
        return "shadow" if self.status == "candidate" else "idle"


def key_point(key: str) -> float:
    """A stable point of [0, 1) for `key` (the first 8 bytes of its SHA-256)."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True)
class RoutingTable:
    """An immutable snapshot of the routes; build it with `RoutingTable.build`."""

    routes: tuple[Route, ...] = ()
    revision: int = -1
    """The registry revision it was built from (-1: none yet)."""
    _live: tuple[Route, ...] = field(default=(), repr=False)
    _edges: tuple[float, ...] = field(default=(), repr=False)

    @classmethod
    def build(cls, routes: Iterable[Route], revision: int = -1) -> RoutingTable:
        """A table over `routes`; live slices are laid out in ref order (stable across restarts)."""
        ordered = tuple(sorted(routes, key=lambda r: (r.name, r.version, r.ref)))
        live = tuple(r for r in ordered if r.mode == "live")
        total = sum(r.weight for r in live)
        edges: list[float] = []
        acc = 0.0
        for r in live:
            acc += r.weight / total
            edges.append(acc)
        if edges:
            edges[-1] = 1.0
        return cls(ordered, revision, live, tuple(edges))

    @property
    def live(self) -> tuple[Route, ...]:
        return self._live

    @property
    def shadows(self) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.mode == "shadow")

    def get(self, ref: str) -> Route | None:
        return next((r for r in self.routes if r.ref == ref), None)

    def shares(self) -> Mapping[str, float]:
        """Configured traffic share of every route (0 for shadow and idle ones)."""
        total = sum(r.weight for r in self._live)
        return {r.ref: (r.weight / total if r.mode == "live" and total else 0.0) for r in self.routes}

    def choose(self, key: str | None = None, rng: random.Random | None = None) -> Route | None:
        """The live route for a request (sticky by `key`), or None when nothing is live."""
        if not self._live:
            return None
        point = key_point(key) if key is not None else (rng or random).random()
        index = min(bisect_right(self._edges, point), len(self._live) - 1)
        return self._live[index]
