"""AUC (pooled and per rule), and the `summary` a score run reports, read from the monitor's summary.

The Jigsaw metric is reported both ways because it is not verified which one the competition used:
pooled ROC AUC over all rows, and the mean of per-rule AUCs (rules with one class are skipped and
named). AUC is computed with average ranks (Mann-Whitney U), so ties count one half, as in
scikit-learn, without needing it.

The distribution numbers and the degenerate flag are not computed here: a run's predictions are
summarised once by `loraguard.monitor` (`MonitorSummary`), whose `degenerate` rule (default policy)
sets the flag; `run_summary` lays that summary out as the `summary` of `loraguard.score/1`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from loraguard.errors import InputError
from loraguard.monitor.summary import MonitorSummary

__all__ = ["AucReport", "auc_report", "histogram_lines", "roc_auc", "run_summary"]

SUMMARY_BINS = 10
"""Bins of the histogram in a score run's `summary` (and of the text histogram `score` prints)."""


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


def run_summary(summary: MonitorSummary, *, degenerate: bool, bins: int = SUMMARY_BINS) -> dict[str, Any]:
    """A score run's `summary` (`loraguard.score/1`) from the monitor's summary of its predictions.

    `n` counts every row; mean, std (population), min, max and distinct are over the values in the
    statistics (parsed, finite, in [0, 1]); `n_nonfinite` counts the rest of the parsed rows;
    `histogram` has `bins` equal-width bins on [0, 1]. `distinct` is exact up to the monitor's
    top-value capacity (256), above it that capacity + 1 (meaning "more").
    """
    return {
        "n": summary.n_seen,
        "n_nonfinite": summary.n_invalid,
        "mean": summary.mean,
        "std": summary.std,
        "min": summary.min,
        "max": summary.max,
        "distinct": summary.distinct,
        "histogram": list(summary.rebinned(bins)),
        "degenerate": degenerate,
    }


def histogram_lines(counts: Sequence[int], *, width: int = 40) -> list[str]:
    """A text histogram of counts over equal-width bins on [0, 1], one line per bin: `[0.0, 0.1)  ####  12`."""
    bins = len(counts)
    top = max(max(counts, default=0), 1)
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
