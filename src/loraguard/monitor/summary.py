"""`MonitorSummary`: the frozen snapshot of a `Monitor`, with its JSON form `loraguard.monitor/1`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from loraguard.errors import DataFormatError, InputError

SCHEMA = "loraguard.monitor/1"
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)

__all__ = ["QUANTILES", "SCHEMA", "MonitorSummary", "jsonable", "quantiles_from_histogram"]


@dataclass(frozen=True)
class MonitorSummary:
    """Statistics of a stream of probabilities. Fields are `None` when no value was counted."""

    n: int
    """Values in the statistics: parsed, finite and in [0, 1]."""
    n_seen: int
    """Every row passed to `update`, including unparsed and invalid ones."""
    n_unparsed: int
    n_invalid: int
    """Parsed values that were NaN, infinite or outside [0, 1] (left out of the statistics)."""
    mean: float | None
    std: float | None
    """Population standard deviation (ddof=0)."""
    min: float | None
    max: float | None
    histogram: tuple[int, ...]
    """Counts over equal-width bins on [0, 1]; the last bin includes 1.0."""
    fine_histogram: tuple[int, ...]
    """The finer histogram the quantiles and the binned KS test are computed from."""
    top_value: float | None
    """The most frequent value (rounded to the monitor's resolution, 1e-6 by default)."""
    top_count: int
    """Occurrences of `top_value`; a lower bound, exact when `top_count_error` is 0."""
    top_count_error: int
    """At most this many occurrences of any value may be missing (Misra-Gries bound)."""
    distinct: int
    """Distinct rounded values when `distinct_exact`; else `top_capacity + 1`, meaning "more than that"."""
    distinct_exact: bool
    segments: Mapping[str, MonitorSummary] = field(default_factory=dict)
    segments_capped: bool = False
    """True when segments beyond the cap were pooled into the `(other)` segment."""
    quantiles: Mapping[str, float] = field(init=False)
    """`p01` … `p99`, interpolated within the fine histogram's bins (resolution 1/len(fine_histogram))."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", MappingProxyType(dict(self.segments)))
        q = quantiles_from_histogram(self.fine_histogram, QUANTILES, self.min, self.max)
        object.__setattr__(self, "quantiles", MappingProxyType(q))

    @property
    def bins(self) -> int:
        """Number of bins of the coarse histogram."""
        return len(self.histogram)

    def rebinned(self, bins: int) -> tuple[int, ...]:
        """Counts over `bins` equal-width bins on [0, 1], summed from the fine histogram.

        `bins` must divide the fine histogram's length (1,000 by default: 10, 20, 50, 100... bins).
        """
        fine = np.asarray(self.fine_histogram, dtype=np.int64)
        if bins < 1 or fine.size % bins:
            raise InputError(f"{bins} bins do not divide the fine histogram's {fine.size} bins")
        return tuple(int(c) for c in fine.reshape(bins, -1).sum(axis=1))

    @property
    def parse_success_share(self) -> float | None:
        """Share of rows whose output parsed (None before any row)."""
        return None if self.n_seen == 0 else (self.n_seen - self.n_unparsed) / self.n_seen

    @property
    def invalid_share(self) -> float | None:
        """Share of parsed values that were invalid (None before any parsed row)."""
        parsed = self.n_seen - self.n_unparsed
        return None if parsed == 0 else self.n_invalid / parsed

    @property
    def top_share(self) -> float | None:
        """Share of the most frequent value (lower bound; see `top_count_error`)."""
        return None if self.n == 0 else self.top_count / self.n

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with `"schema": "loraguard.monitor/1"`."""
        edges = np.linspace(0.0, 1.0, self.bins + 1).round(12).tolist()
        return {
            "schema": SCHEMA,
            "n": self.n,
            "n_seen": self.n_seen,
            "n_unparsed": self.n_unparsed,
            "n_invalid": self.n_invalid,
            "parse_success_share": _num(self.parse_success_share),
            "mean": _num(self.mean),
            "std": _num(self.std),
            "min": _num(self.min),
            "max": _num(self.max),
            "quantiles": {k: _num(v) for k, v in self.quantiles.items()},
            "histogram": {"edges": edges, "counts": list(self.histogram)},
            "fine_histogram": list(self.fine_histogram),
            "top": {
                "value": _num(self.top_value),
                "count": self.top_count,
                "count_error": self.top_count_error,
                "share": _num(self.top_share),
            },
            "distinct": {"count": self.distinct, "exact": self.distinct_exact},
            "segments": {name: seg.to_dict() for name, seg in self.segments.items()},
            "segments_capped": self.segments_capped,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitorSummary:
        """The inverse of `to_dict` (e.g. a stored reference summary)."""
        if data.get("schema") != SCHEMA:
            raise DataFormatError(f"not a {SCHEMA} summary (schema = {data.get('schema')!r})")
        return cls(
            n=int(data["n"]),
            n_seen=int(data["n_seen"]),
            n_unparsed=int(data["n_unparsed"]),
            n_invalid=int(data["n_invalid"]),
            mean=data["mean"],
            std=data["std"],
            min=data["min"],
            max=data["max"],
            histogram=tuple(int(c) for c in data["histogram"]["counts"]),
            fine_histogram=tuple(int(c) for c in data["fine_histogram"]),
            top_value=data["top"]["value"],
            top_count=int(data["top"]["count"]),
            top_count_error=int(data["top"]["count_error"]),
            distinct=int(data["distinct"]["count"]),
            distinct_exact=bool(data["distinct"]["exact"]),
            segments={k: cls.from_dict(v) for k, v in data.get("segments", {}).items()},
            segments_capped=bool(data.get("segments_capped", False)),
        )


def quantiles_from_histogram(
    counts: tuple[int, ...] | np.ndarray,
    probs: tuple[float, ...],
    lo: float | None = None,
    hi: float | None = None,
) -> dict[str, float]:
    """Quantiles of values binned on [0, 1], linear within a bin and clipped to `[lo, hi]`."""
    hist = np.asarray(counts, dtype=np.float64)
    total = hist.sum()
    if total <= 0:
        return {}
    cum = np.cumsum(hist)
    width = 1.0 / hist.size
    out = {}
    for p in probs:
        target = p * total
        i = int(np.searchsorted(cum, target, side="left"))
        i = min(i, hist.size - 1)
        below = cum[i - 1] if i > 0 else 0.0
        frac = (target - below) / hist[i] if hist[i] > 0 else 0.0
        value = (i + frac) * width
        if lo is not None and hi is not None:
            value = min(max(value, lo), hi)
        out[f"p{round(p * 100):02d}"] = float(value)
    return out


def jsonable(value: Any) -> Any:
    """`value` with numpy scalars, tuples, enums and non-finite floats made JSON-ready."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _num(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    return getattr(value, "value", str(value))


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
