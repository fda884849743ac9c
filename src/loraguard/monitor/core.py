"""`Monitor`: streaming statistics of predicted probabilities in O(1) memory.

Per batch (numpy, no Python loop over values):

- count, mean and M2 merged with Chan et al.'s parallel form of Welford's update;
- min / max;
- a fine histogram on [0, 1] (`bins × resolution` bins, 1,000 by default) from which the coarse
  histogram, the quantiles and the binned KS statistic are derived;
- the most frequent values, rounded to `rounding`, as a Misra-Gries summary of at most
  `top_capacity` counters. While the stream has at most `top_capacity` distinct values the counts
  and the number of distinct values are exact; after that the top count is a lower bound that is
  off by at most `n / (top_capacity + 1)` (reported as `top_count_error`);
- the parse-success share (`parsed=` mask) and the count of invalid values (NaN, ±inf, outside
  [0, 1]), which are kept out of the statistics;
- optionally a sub-monitor per segment (`segments=`), at most `max_segments`; later segments are
  pooled into `(other)`.

Memory does not grow with the number of values: every piece of state has a fixed size.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from loraguard.errors import InputError
from loraguard.monitor.alerts import Alert, RulePolicy, evaluate
from loraguard.monitor.drift import ReferenceLike
from loraguard.monitor.summary import MonitorSummary

__all__ = ["OTHER_SEGMENT", "STATE_SCHEMA", "Monitor", "monitor_values", "summarize"]

OTHER_SEGMENT = "(other)"
STATE_SCHEMA = "loraguard.monitor-state/1"
"""`Monitor.to_state()` documents: JSON, so a server can keep its monitors across restarts."""
ArrayLike = npt.ArrayLike


class _TopValues:
    """Exact counts of rounded values up to `capacity` distinct values, then a Misra-Gries summary."""

    __slots__ = ("capacity", "counts", "decrement", "exact", "keys")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.keys = np.empty(0, dtype=np.int64)
        self.counts = np.empty(0, dtype=np.int64)
        self.exact = True
        self.decrement = 0

    def add(self, keys: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]) -> None:
        """Add counts for sorted, unique `keys`; both summaries' error bounds add up."""
        if self.keys.size:
            pos = np.minimum(np.searchsorted(keys, self.keys), max(keys.size - 1, 0))
            hit = keys[pos] == self.keys if keys.size else np.zeros(self.keys.size, dtype=np.bool_)
            counts = counts.copy()
            counts[pos[hit]] += self.counts[hit]
            keys = np.concatenate([keys, self.keys[~hit]])
            counts = np.concatenate([counts, self.counts[~hit]])
        if keys.size > self.capacity:
            self.exact = False
            kth = keys.size - self.capacity - 1
            cut = int(np.partition(counts, kth)[kth])
            counts = counts - cut
            keep = counts > 0
            keys, counts = keys[keep], counts[keep]
            self.decrement += cut
        order = np.argsort(keys)
        self.keys, self.counts = keys[order], counts[order]

    def merge(self, other: _TopValues) -> None:
        """Fold another summary in (counts add up, and so do the error bounds)."""
        self.add(other.keys, other.counts)
        self.exact = self.exact and other.exact
        self.decrement += other.decrement

    def top(self) -> tuple[int | None, int]:
        """(key, count) of the most frequent rounded value, or (None, 0)."""
        if not self.counts.size:
            return None, 0
        i = int(np.argmax(self.counts))
        return int(self.keys[i]), int(self.counts[i])


class Monitor:
    """Streaming monitor of predicted probabilities; see the module docstring for what it tracks."""

    def __init__(
        self,
        *,
        bins: int = 20,
        resolution: int = 50,
        top_capacity: int = 256,
        rounding: float = 1e-6,
        max_segments: int = 50,
    ) -> None:
        if bins < 2 or resolution < 1 or top_capacity < 1 or rounding <= 0 or max_segments < 0:
            raise InputError("Monitor: bins >= 2, resolution >= 1, top_capacity >= 1, rounding > 0 required")
        self.bins, self.resolution, self.top_capacity = bins, resolution, top_capacity
        self.rounding, self.max_segments = rounding, max_segments
        self._scale = 1.0 / rounding
        self._fine = np.zeros(bins * resolution, dtype=np.int64)
        self._top = _TopValues(top_capacity)
        self._n = self._seen = self._unparsed = self._invalid = 0
        self._mean = self._m2 = 0.0
        self._min, self._max = np.inf, -np.inf
        self._segments: dict[str, Monitor] = {}
        self._segments_capped = False

    @property
    def n(self) -> int:
        """Values counted in the statistics so far."""
        return self._n

    def config(self) -> dict[str, float]:
        """The settings two monitors must share to be merged or compared."""
        return {
            "bins": self.bins,
            "resolution": self.resolution,
            "top_capacity": self.top_capacity,
            "rounding": self.rounding,
            "max_segments": self.max_segments,
        }

    def update(
        self,
        values: ArrayLike,
        *,
        parsed: ArrayLike | None = None,
        segments: ArrayLike | None = None,
    ) -> Monitor:
        """Add a batch. `parsed` (bool per value) marks parse failures, whose values are ignored
        (they may be NaN); `segments` (a label per value) also feeds one sub-monitor per label."""
        v = np.asarray(values, dtype=np.float64).ravel()
        mask = None if parsed is None else np.asarray(parsed, dtype=np.bool_).ravel()
        if mask is not None and mask.shape != v.shape:
            raise InputError(f"Monitor.update: parsed has {mask.size} entries for {v.size} values")
        if segments is not None:
            self._update_segments(v, mask, np.asarray(segments).ravel())
        self._seen += v.size
        if mask is not None:
            self._unparsed += int(v.size - np.count_nonzero(mask))
            v = v[mask]
        if v.size:
            lo, hi = v.min(), v.max()
            if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
                ok = (v >= 0.0) & (v <= 1.0)
                self._invalid += int(v.size - np.count_nonzero(ok))
                v = v[ok]
                if not v.size:
                    return self
                lo, hi = v.min(), v.max()
            self._add_valid(v, float(lo), float(hi))
        return self

    def _add_valid(self, v: npt.NDArray[np.float64], lo: float, hi: float) -> None:
        n_b = v.size
        mean_b = float(v.mean())
        d = v - mean_b
        m2_b = float(np.square(d, out=d).sum())  # not np.dot: BLAS threads cost more than they save here
        n = self._n + n_b
        delta = mean_b - self._mean
        self._mean += delta * n_b / n
        self._m2 += m2_b + delta * delta * self._n * n_b / n
        self._n = n
        self._min, self._max = min(self._min, lo), max(self._max, hi)
        idx = (v * self._fine.size).astype(np.intp)
        np.minimum(idx, self._fine.size - 1, out=idx)
        self._fine += np.bincount(idx, minlength=self._fine.size)
        keys, counts = np.unique(np.rint(v * self._scale).astype(np.int64), return_counts=True)
        self._top.add(keys, counts.astype(np.int64))

    def _update_segments(
        self, v: npt.NDArray[np.float64], mask: npt.NDArray[np.bool_] | None, labels: npt.NDArray[np.generic]
    ) -> None:
        if labels.shape != v.shape:
            raise InputError(f"Monitor.update: segments has {labels.size} entries for {v.size} values")
        names, inverse = np.unique(labels.astype(np.str_), return_inverse=True)
        for i, name in enumerate(names.tolist()):
            rows = inverse == i
            self._segment(name).update(v[rows], parsed=None if mask is None else mask[rows])

    def _segment(self, name: str) -> Monitor:
        sub = self._segments.get(name)
        if sub is None:
            if len(self._segments) >= self.max_segments and name != OTHER_SEGMENT:
                self._segments_capped = True
                return self._segment(OTHER_SEGMENT)
            sub = self._segments[name] = Monitor(
                bins=self.bins,
                resolution=self.resolution,
                top_capacity=self.top_capacity,
                rounding=self.rounding,
                max_segments=0,
            )
        return sub

    def merge(self, other: Monitor) -> Monitor:
        """Fold `other` (e.g. another worker's monitor) into this one, in place; returns self."""
        if (other.bins, other.resolution, other.top_capacity, other.rounding) != (
            self.bins,
            self.resolution,
            self.top_capacity,
            self.rounding,
        ):
            raise InputError(f"cannot merge monitors with different settings: {self.config()} vs {other.config()}")
        n = self._n + other._n
        if n:
            delta = other._mean - self._mean
            self._m2 += other._m2 + delta * delta * self._n * other._n / n
            self._mean += delta * other._n / n
        self._n = n
        self._seen += other._seen
        self._unparsed += other._unparsed
        self._invalid += other._invalid
        self._min, self._max = min(self._min, other._min), max(self._max, other._max)
        self._fine += other._fine
        self._top.merge(other._top)
        for name, sub in other._segments.items():
            self._segment(name).merge(sub)
        self._segments_capped |= other._segments_capped
        return self

    def summary(self) -> MonitorSummary:
        """A frozen snapshot of the statistics (segments included)."""
        has = self._n > 0
        key, count = self._top.top()
        coarse = self._fine.reshape(self.bins, self.resolution).sum(axis=1)
        return MonitorSummary(
            n=self._n,
            n_seen=self._seen,
            n_unparsed=self._unparsed,
            n_invalid=self._invalid,
            mean=self._mean if has else None,
            std=float(np.sqrt(max(self._m2, 0.0) / self._n)) if has else None,
            min=float(self._min) if has else None,
            max=float(self._max) if has else None,
            histogram=tuple(coarse.tolist()),
            fine_histogram=tuple(self._fine.tolist()),
            top_value=None if key is None else key * self.rounding,
            top_count=count,
            top_count_error=self._top.decrement,
            distinct=int(self._top.keys.size) if self._top.exact else self.top_capacity + 1,
            distinct_exact=self._top.exact,
            segments={name: sub.summary() for name, sub in sorted(self._segments.items())},
            segments_capped=self._segments_capped,
        )

    def alerts(self, policy: RulePolicy | None = None, reference: ReferenceLike | None = None) -> tuple[Alert, ...]:
        """Alerts for the current state under `policy` (defaults when None). With `reference`
        (values, a `Monitor` or a `MonitorSummary`) the `drift` rule runs too, with KS computed
        from the histograms (see `loraguard.monitor.drift`)."""
        return evaluate(self.summary(), policy, reference=reference)

    def to_state(self) -> dict[str, Any]:
        """The complete state as plain JSON types (`from_state` rebuilds an identical monitor)."""
        nonzero = np.flatnonzero(self._fine)
        return {
            "schema": STATE_SCHEMA,
            "config": self.config(),
            "n": self._n,
            "seen": self._seen,
            "unparsed": self._unparsed,
            "invalid": self._invalid,
            "mean": self._mean,
            "m2": self._m2,
            "min": float(self._min) if math.isfinite(self._min) else None,
            "max": float(self._max) if math.isfinite(self._max) else None,
            "fine": {"index": nonzero.tolist(), "count": self._fine[nonzero].tolist()},
            "top": {
                "keys": self._top.keys.tolist(),
                "counts": self._top.counts.tolist(),
                "exact": self._top.exact,
                "decrement": self._top.decrement,
            },
            "segments": {name: sub.to_state() for name, sub in sorted(self._segments.items())},
            "segments_capped": self._segments_capped,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Monitor:
        """Rebuild a monitor saved with `to_state`; `InputError` for anything else."""
        try:
            if state.get("schema") != STATE_SCHEMA:
                raise ValueError(f"schema {state.get('schema')!r}, expected {STATE_SCHEMA}")
            cfg = state["config"]
            mon = cls(
                bins=int(cfg["bins"]),
                resolution=int(cfg["resolution"]),
                top_capacity=int(cfg["top_capacity"]),
                rounding=float(cfg["rounding"]),
                max_segments=int(cfg["max_segments"]),
            )
            mon._n, mon._seen = int(state["n"]), int(state["seen"])
            mon._unparsed, mon._invalid = int(state["unparsed"]), int(state["invalid"])
            mon._mean, mon._m2 = float(state["mean"]), float(state["m2"])
            mon._min = np.inf if state["min"] is None else float(state["min"])
            mon._max = -np.inf if state["max"] is None else float(state["max"])
            index = np.asarray(state["fine"]["index"], dtype=np.int64)
            if index.size and (index.min() < 0 or index.max() >= mon._fine.size):
                raise ValueError("histogram index out of range")
            mon._fine[index] = np.asarray(state["fine"]["count"], dtype=np.int64)
            top = state["top"]
            mon._top.keys = np.asarray(top["keys"], dtype=np.int64)
            mon._top.counts = np.asarray(top["counts"], dtype=np.int64)
            if mon._top.keys.shape != mon._top.counts.shape:
                raise ValueError("top-value keys and counts differ in length")
            mon._top.exact, mon._top.decrement = bool(top["exact"]), int(top["decrement"])
            mon._segments = {str(k): cls.from_state(v) for k, v in state["segments"].items()}
            mon._segments_capped = bool(state["segments_capped"])
        except InputError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"not a saved monitor state: {exc}") from None
        if int(mon._fine.sum()) != mon._n:
            raise InputError(
                f"not a consistent monitor state: histogram holds {int(mon._fine.sum())} values, n is {mon._n}"
            )
        return mon

    def memory_bytes(self) -> int:
        """Approximate bytes held by this monitor's state (flat in the number of values)."""
        own = sys.getsizeof(self) + self._fine.nbytes + self._top.keys.nbytes + self._top.counts.nbytes
        return own + sum(sys.getsizeof(k) + s.memory_bytes() for k, s in self._segments.items())

    def __repr__(self) -> str:
        return f"Monitor(n={self._n}, bins={self.bins}, segments={len(self._segments)})"


def monitor_values(
    values: ArrayLike,
    *,
    parsed: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    batch_size: int = 1 << 20,
    bins: int = 20,
) -> Monitor:
    """A `Monitor` with `bins` histogram bins, fed with `values` in batches of `batch_size`."""
    v = np.asarray(values, dtype=np.float64).ravel()
    p = None if parsed is None else np.asarray(parsed, dtype=np.bool_).ravel()
    s = None if segments is None else np.asarray(segments).ravel()
    mon = Monitor(bins=bins)
    for start in range(0, max(v.size, 1), batch_size):
        stop = start + batch_size
        mon.update(
            v[start:stop],
            parsed=None if p is None else p[start:stop],
            segments=None if s is None else s[start:stop],
        )
    return mon


def summarize(
    values: ArrayLike,
    *,
    parsed: ArrayLike | None = None,
    segments: ArrayLike | None = None,
    bins: int = 20,
) -> MonitorSummary:
    """The `MonitorSummary` of a finished array: the streaming calculation, run over the whole array.

    What `score`, `probe`, `gate` and `ensemble` summarise their predictions with, so a finished run
    and a live stream of the same values give the same numbers and fire the same rules.
    """
    return monitor_values(values, parsed=parsed, segments=segments, bins=bins).summary()
