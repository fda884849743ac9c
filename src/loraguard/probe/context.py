"""What the probe measured, as plain numbers (no torch): the `ProbeContext` the LG6xx rules read.

The probe runs the same rows through the model twice, with the adapter (`adapted`) and without it
(`base`, PEFT's `disable_adapter`). For each side it keeps the predictions of the chosen method, and
for the adapted side it also scores the rows batched (mixed lengths, padded) to compare them with
the one-row-at-a-time reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from loraguard.scoring.metrics import DEGENERATE_MAX_DISTINCT, DEGENERATE_MIN_ROWS, DEGENERATE_STD

__all__ = ["BatchCheck", "Effect", "PredictionStats", "ProbeContext", "ProbeThresholds", "Side", "degenerate_reason"]

DISTINCT_DECIMALS = 6
"""Predictions are rounded to 1e-6 before counting distinct values (as `loraguard score` does)."""

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ProbeThresholds:
    """Every threshold the LG6xx rules use, with its default (see `loraguard explain LG601`...)."""

    no_effect_kl: float = 1e-6
    """LG601: mean KL(adapted ‖ base) of the next-token distribution at the answer position below this..."""
    no_effect_logit: float = 1e-4
    """...and max |logit difference| below this: the adapter changes nothing."""
    small_effect_prob: float = 1e-3
    """LG607: max |ΔP(Yes)| below this (and not LG601): the adapter does not move the answer."""
    degenerate_std: float = DEGENERATE_STD
    """LG602: std of the predictions below this (at least 2 rows)..."""
    degenerate_min_rows: int = DEGENERATE_MIN_ROWS
    degenerate_max_distinct: int = DEGENERATE_MAX_DISTINCT
    """...or at most this many distinct values over at least `degenerate_min_rows` rows."""
    low_spread_std: float = 0.05
    """LG603 (a hint): std below this, mean outside `low_spread_mean`, or max below `low_spread_max`."""
    low_spread_mean: tuple[float, float] = (0.2, 0.8)
    low_spread_max: float = 0.3
    batch_tolerance: float = 1e-3
    """LG604: batched and one-row predictions differing by more than this."""
    parse_error_share: float = 0.2
    """LG606 (generate): share of rows no parser stage could read above this is an error..."""
    parse_warning_share: float = 0.05
    """...above this a warning."""

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class PredictionStats:
    """Summary of one side's predictions (over the finite values)."""

    n: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    distinct: int
    nonfinite: int
    parse_failures: int
    """Rows without a readable prediction (logits: non-finite; generate: the parser's default used)."""

    @classmethod
    def of(cls, values: npt.ArrayLike, parsed: npt.ArrayLike | None = None) -> PredictionStats:
        v = np.asarray(values, dtype=np.float64).ravel()
        finite = v[np.isfinite(v)]
        ok = np.ones(v.size, dtype=bool) if parsed is None else np.asarray(parsed, dtype=bool)
        have = finite.size > 0
        return cls(
            n=int(v.size),
            mean=float(finite.mean()) if have else None,
            std=float(finite.std()) if have else None,
            min=float(finite.min()) if have else None,
            max=float(finite.max()) if have else None,
            distinct=int(np.unique(np.round(finite, DISTINCT_DECIMALS)).size),
            nonfinite=int(v.size - finite.size),
            parse_failures=int((~ok).sum()),
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def describe(self) -> str:
        if self.mean is None or self.std is None:
            return f"no finite prediction over {self.n} rows"
        return (
            f"mean {self.mean:.4g}, std {self.std:.3g}, range [{self.min:.4g}, {self.max:.4g}], "
            f"{self.distinct} distinct over {self.n} rows"
        )


def degenerate_reason(stats: PredictionStats, t: ProbeThresholds) -> str | None:
    """Why the predictions are degenerate (constant or nearly so), or None when they are not."""
    finite = stats.n - stats.nonfinite
    if stats.std is None or finite < 2:
        return None
    if stats.std < t.degenerate_std:
        return f"std {stats.std:.3g} < {t.degenerate_std:g}"
    if finite >= t.degenerate_min_rows and stats.distinct <= t.degenerate_max_distinct:
        return f"only {stats.distinct} distinct value(s) over {finite} rows"
    return None


@dataclass(frozen=True)
class Side:
    """One model state's outputs on the samples (with or without the adapter)."""

    probabilities: FloatArray
    """The predictions of the method (logits: P(Yes) of each row scored alone; generate: parsed text)."""
    parsed: BoolArray
    """False where no probability could be read (non-finite logits; generate: parser default)."""
    logits_finite: BoolArray
    """Per row: every logit at the answer position is finite."""
    stage_counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    texts: tuple[str, ...] | None = None

    @property
    def stats(self) -> PredictionStats:
        return PredictionStats.of(self.probabilities, self.parsed)

    @property
    def nonfinite_rows(self) -> int:
        return int((~(self.logits_finite & np.isfinite(self.probabilities))).sum())

    @property
    def parse_failure_share(self) -> float:
        return int((~self.parsed).sum()) / self.parsed.size if self.parsed.size else 0.0


@dataclass(frozen=True)
class Effect:
    """How much the adapter changes the model at the answer position (rows where both are finite)."""

    mean_kl: float | None
    """Mean KL(adapted ‖ base) between the next-token distributions."""
    max_logit_diff: float | None
    """Max |logit(adapted) - logit(base)| over rows and the whole vocabulary."""
    max_prob_diff: float | None
    """Max |P(Yes | adapted) - P(Yes | base)|."""
    mean_prob_diff: float | None
    rows: int
    """Rows compared (both sides finite)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class BatchCheck:
    """Batched scoring (adapter on) against one row at a time."""

    batch_size: int
    max_diff: Mapping[str, float | None]
    """Per batched path (`left-padded`, `prefix-cache`): max |P(batched) - P(one row)|."""
    rows: tuple[str, ...]
    """row_ids whose batched prediction differs beyond the tolerance (or is finite on one side only)."""

    def to_dict(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "max_diff": dict(self.max_diff), "rows": list(self.rows)}


@dataclass(frozen=True)
class ProbeContext:
    """Everything the LG6xx rules read; built by `loraguard.probe.measure` (or by hand in tests)."""

    row_ids: tuple[str, ...]
    method: str
    adapted: Side
    base: Side
    effect: Effect
    batch: BatchCheck | None = None
    thresholds: ProbeThresholds = field(default_factory=ProbeThresholds)

    @property
    def adapted_stats(self) -> PredictionStats:
        return self.adapted.stats

    @property
    def base_stats(self) -> PredictionStats:
        return self.base.stats

    def degenerate(self, side: Side) -> str | None:
        return degenerate_reason(side.stats, self.thresholds)

    def no_effect(self) -> bool:
        e, t = self.effect, self.thresholds
        return (
            e.mean_kl is not None
            and e.max_logit_diff is not None
            and e.mean_kl < t.no_effect_kl
            and e.max_logit_diff < t.no_effect_logit
        )
