"""AUC (pooled and per rule), a distribution summary and the degenerate-output alert.

The Jigsaw metric is reported both ways because it is not verified which one the competition used:
pooled ROC AUC over all rows, and the mean of per-rule AUCs (rules with one class are skipped and
named). AUC is computed with average ranks (Mann-Whitney U), so ties count one half, as in
scikit-learn, without needing it.

`summarize` is the distribution summary `score` prints. Alerts after scoring come from
`loraguard.monitor` (its default policy); `is_degenerate` restates the monitor's `degenerate`
thresholds for callers without a Monitor: std below 1e-3, or at least 8 values with at most 2
distinct ones (rounded to 1e-6), the case study's failure (100% parse success, every value 0.0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from loraguard.errors import InputError

__all__ = ["AucReport", "auc_report", "histogram_lines", "is_degenerate", "roc_auc", "summarize"]

DEGENERATE_STD = 1e-3
DEGENERATE_MIN_ROWS = 8
DEGENERATE_MAX_DISTINCT = 2
_DISTINCT_DECIMALS = 6


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """ROC AUC of `scores` for binary `labels` (0/1); NaN when only one class is present."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape:
        raise InputError(f"labels and scores differ in shape: {y.shape} vs {s.shape}")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # average rank over each run of ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


@dataclass(frozen=True)
class AucReport:
    """Pooled AUC, per-rule AUCs and their mean (the competition metric), with the skipped rules."""

    auc: float
    mean_rule_auc: float
    per_rule: Mapping[str, float]
    rule_counts: Mapping[str, int]
    skipped_rules: tuple[str, ...]
    """Rules with a single class in the labels: no AUC, left out of the mean."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "auc": _nan_none(self.auc),
            "mean_rule_auc": _nan_none(self.mean_rule_auc),
            "per_rule": {r: {"auc": _nan_none(a), "n": self.rule_counts[r]} for r, a in self.per_rule.items()},
            "skipped_rules": list(self.skipped_rules),
        }


def auc_report(labels: npt.ArrayLike, scores: npt.ArrayLike, rules: Sequence[str]) -> AucReport:
    """Pooled AUC and the macro average of per-rule AUCs."""
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    groups: dict[str, list[int]] = {}
    for i, rule in enumerate(rules):
        groups.setdefault(rule, []).append(i)
    per_rule: dict[str, float] = {}
    skipped: list[str] = []
    for rule, idx in groups.items():
        value = roc_auc(y[idx], s[idx])
        per_rule[rule] = value
        if np.isnan(value):
            skipped.append(rule)
    valid = [v for v in per_rule.values() if not np.isnan(v)]
    return AucReport(
        auc=roc_auc(y, s),
        mean_rule_auc=float(np.mean(valid)) if valid else float("nan"),
        per_rule=MappingProxyType(per_rule),
        rule_counts=MappingProxyType({r: len(i) for r, i in groups.items()}),
        skipped_rules=tuple(skipped),
    )


def summarize(values: npt.ArrayLike, *, bins: int = 10) -> dict[str, Any]:
    """n, mean, std (population), min, max, distinct values, histogram counts on [0, 1], degenerate flag."""
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = v[np.isfinite(v)]
    hist = np.histogram(np.clip(finite, 0.0, 1.0), bins=bins, range=(0.0, 1.0))[0]
    out: dict[str, Any] = {
        "n": int(v.size),
        "n_nonfinite": int(v.size - finite.size),
        "mean": float(finite.mean()) if finite.size else None,
        "std": float(finite.std()) if finite.size else None,
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "distinct": int(np.unique(np.round(finite, _DISTINCT_DECIMALS)).size),
        "histogram": [int(c) for c in hist],
    }
    out["degenerate"] = is_degenerate(v)
    return out


def is_degenerate(values: npt.ArrayLike) -> bool:
    """True when predictions are (nearly) constant: std < 1e-3, or >= 8 values with <= 2 distinct."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.isfinite(v).all():
        return v.size > 0
    if v.size >= 2 and float(v.std()) < DEGENERATE_STD:
        return True
    distinct = np.unique(np.round(v, _DISTINCT_DECIMALS)).size
    return v.size >= DEGENERATE_MIN_ROWS and distinct <= DEGENERATE_MAX_DISTINCT


def histogram_lines(values: npt.ArrayLike, *, bins: int = 10, width: int = 40) -> list[str]:
    """A text histogram on [0, 1], one line per bin: `[0.0, 0.1)  ####  12`."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = np.clip(v[np.isfinite(v)], 0.0, 1.0)
    counts = np.histogram(v, bins=bins, range=(0.0, 1.0))[0] if v.size else np.zeros(bins, dtype=int)
    top = max(int(counts.max()), 1)
    lines = []
    for i, c in enumerate(counts):
        lo, hi = i / bins, (i + 1) / bins
        close = "]" if i == bins - 1 else ")"
        bar = "#" * round(width * int(c) / top)
        if c and not bar:
            bar = "."
        lines.append(f"[{lo:.1f}, {hi:.1f}{close} {bar:<{width}} {int(c)}")
    return lines


def _nan_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
