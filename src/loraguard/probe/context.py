"""What the probe measured, as plain numbers (no torch): the `ProbeContext` the LG6xx rules read.

The probe runs the same rows through the model twice, with the adapter (`adapted`) and without it
(`base`, PEFT's `disable_adapter`). For each side it keeps the predictions of the chosen method, and
for the adapted side it also scores the rows batched (mixed lengths, padded) to compare them with
the one-row-at-a-time reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from loraguard.monitor.alerts import RULES, degenerate_reason, has_no_positives, is_low_spread, is_skewed
from loraguard.monitor.core import summarize
from loraguard.monitor.summary import MonitorSummary
from loraguard.scoring.answers import LOW_ANSWER_MASS

__all__ = ["BatchCheck", "Effect", "PredictionStats", "ProbeContext", "ProbeThresholds", "Side"]

_DEGENERATE = RULES["degenerate"].thresholds
"""LG602 uses the monitor's `degenerate` thresholds (std, distinct values, rows)..."""
DEGENERATE_STD_MIN_ROWS = 2
"""...except that the std test needs only 2 rows (the monitor's needs `min_samples`, 8)."""

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ProbeThresholds:
    """Every threshold the LG6xx rules use, with its default (see `loraguard explain LG601`...)."""

    no_effect_kl: float = 1e-6
    """LG601: mean KL(adapted ‖ base) of the next-token distribution at the answer position below this..."""
    no_effect_logit: float = 1e-4
    """...and max |logit difference| below this: the adapter changes nothing."""
    small_effect_prob: float = 0.02
    """LG607: max |ΔP(Yes)| below this (and not LG601): the adapter does not move the answer. Calibrated
    on SmolLM2-135M-Instruct over the 16 built-in rows: adapters trained in the scoring prompt moved
    P(Yes) by up to 0.28 (healthy) and 0.31 (collapsed); one trained in another prompt format, 0.012."""
    degenerate_std: float = _DEGENERATE["std_below"]
    """LG602: std of the predictions below this (at least 2 rows)..."""
    degenerate_min_rows: int = int(_DEGENERATE["min_samples"])
    degenerate_max_distinct: int = int(_DEGENERATE["distinct_at_most"])
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
    low_answer_mass: float = LOW_ANSWER_MASS
    """LG608 (logits): mean softmax mass on the answer tokens with the adapter below this (1%)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class PredictionStats:
    """Summary of one side's predictions (over the finite values): the probe's view of a `MonitorSummary`."""

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
        """The stats of `values`; `parsed` (False where no prediction was read) only counts failures."""
        failures = 0 if parsed is None else int((~np.asarray(parsed, dtype=bool)).sum())
        return cls.from_summary(summarize(values), failures)

    @classmethod
    def from_summary(cls, s: MonitorSummary, parse_failures: int = 0) -> PredictionStats:
        """The probe's view of a summary made without a parsed mask (parser defaults are values too)."""
        return cls(
            n=s.n_seen,
            mean=s.mean,
            std=s.std,
            min=s.min,
            max=s.max,
            distinct=s.distinct,
            nonfinite=s.n_invalid,
            parse_failures=parse_failures,
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
    answer_mass: FloatArray | None = None
    """Per row: the softmax mass on all answer tokens at the answer position (None when not measured)."""

    @cached_property
    def summary(self) -> MonitorSummary:
        """The monitor's summary of `probabilities`, parser defaults included (no parsed mask)."""
        return summarize(self.probabilities)

    @property
    def stats(self) -> PredictionStats:
        return PredictionStats.from_summary(self.summary, int((~self.parsed).sum()))

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
    checked: int | None = None
    """How many rows (the first ones) went through the batched paths; None: all of them."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "max_diff": dict(self.max_diff),
            "rows": list(self.rows),
            "checked": self.checked,
        }


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
        """Why `side`'s predictions are degenerate (the monitor's test, LG602's thresholds), or None."""
        t = self.thresholds
        return degenerate_reason(
            side.summary,
            min_samples=t.degenerate_min_rows,
            std_below=t.degenerate_std,
            distinct_at_most=t.degenerate_max_distinct,
            std_min_samples=DEGENERATE_STD_MIN_ROWS,
        )

    def low_spread(self, side: Side) -> list[str]:
        """LG603's reasons why `side`'s predictions look flat (the monitor's `low-spread`, `skew` and
        `no-positives` tests with LG603's thresholds over any number of rows); empty when none holds."""
        s, t = side.summary, self.thresholds
        lo, hi = t.low_spread_mean
        reasons = []
        if is_low_spread(s, min_samples=1, std_below=t.low_spread_std):
            reasons.append(f"std {s.std:.3g} < {t.low_spread_std:g}")
        if is_skewed(s, min_samples=1, mean_below=lo, mean_above=hi):
            reasons.append(f"mean {s.mean:.3g} outside [{lo:g}, {hi:g}]")
        if has_no_positives(s, min_samples=1, max_below=t.low_spread_max):
            reasons.append(f"max {s.max:.3g} < {t.low_spread_max:g}")
        return reasons

    def no_effect(self) -> bool:
        e, t = self.effect, self.thresholds
        return (
            e.mean_kl is not None
            and e.max_logit_diff is not None
            and e.mean_kl < t.no_effect_kl
            and e.max_logit_diff < t.no_effect_logit
        )
