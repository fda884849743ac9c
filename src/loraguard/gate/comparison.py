"""The numbers a gate compares: AUC (pooled and per group) with a paired bootstrap, rank and decision
agreement, and distribution distances. The AUC is `score`'s own (`scoring.metrics.roc_auc`); scipy is
imported inside the functions that need it."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "BootstrapInterval",
    "auc",
    "auc_by_group",
    "bootstrap_auc_delta",
    "decision_stats",
    "distribution_stats",
    "macro",
    "rank_agreement",
    "weighted_auc",
]

FloatArray = npt.NDArray[np.float64]
_CELLS_PER_CHUNK = 4_000_000  # resamples × rows held at once in the bootstrap


@dataclass(frozen=True)
class BootstrapInterval:
    """A paired bootstrap interval of AUC(candidate) − AUC(baseline)."""

    delta: float
    low: float
    high: float
    confidence: float
    resamples: int
    seed: int
    valid_resamples: int
    """Resamples where the AUC was defined (both classes present) for both models."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the interval."""
        return asdict(self)


def auc(y: npt.ArrayLike, scores: npt.ArrayLike) -> float | None:
    """ROC AUC, exactly as `score` reports it (`scoring.metrics.roc_auc`, equal to scikit-learn's
    `roc_auc_score` to 1e-12); None when only one class is present."""
    from loraguard.scoring.metrics import roc_auc

    value = roc_auc(np.asarray(y), np.asarray(scores, dtype=np.float64))
    return None if np.isnan(value) else value


def auc_by_group(y: npt.ArrayLike, scores: npt.ArrayLike, groups: npt.ArrayLike) -> dict[str, float | None]:
    """AUC within each group (None for a group with one class)."""
    y_arr, s_arr, g_arr = np.asarray(y), np.asarray(scores, dtype=np.float64), np.asarray(groups).astype(str)
    return {str(g): auc(y_arr[g_arr == g], s_arr[g_arr == g]) for g in np.unique(g_arr)}


def macro(values: dict[str, float | None]) -> float | None:
    """Mean of the defined values."""
    defined = [v for v in values.values() if v is not None]
    return float(np.mean(defined)) if defined else None


def weighted_auc(scores: FloatArray, y: npt.NDArray[np.int8], weights: npt.NDArray[np.int64]) -> FloatArray:
    """AUC for each row of `weights` (resample counts per observation), ties counted as 1/2.

    Vectorised Mann-Whitney: observations sorted by score, grouped by equal score, and each group's
    positive weight multiplied by the negative weight below it (plus half the group's own).
    """
    order = np.argsort(scores, kind="mergesort")
    s, yy, w = scores[order], y[order].astype(np.int64), weights[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos = np.add.reduceat(w * yy, starts, axis=1).astype(np.float64)
    neg = np.add.reduceat(w * (1 - yy), starts, axis=1).astype(np.float64)
    below = np.cumsum(neg, axis=1) - neg
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def bootstrap_auc_delta(
    y: npt.ArrayLike,
    candidate: npt.ArrayLike,
    baseline: npt.ArrayLike,
    *,
    groups: npt.ArrayLike | None = None,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> BootstrapInterval | None:
    """Paired bootstrap of AUC(candidate) − AUC(baseline): the same resampled rows for both models.

    With `groups` the statistic is the mean of the per-group AUCs (groups undefined in a resample are
    left out of that resample's mean). Percentile interval; None when the AUC is undefined.
    """
    y_arr = np.asarray(y).astype(np.int8)
    a, b = np.asarray(candidate, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    g = None if groups is None else np.asarray(groups).astype(str)
    point = (
        _statistic(a, y_arr, g, np.ones((1, y_arr.size), dtype=np.int64))[0]
        - _statistic(b, y_arr, g, np.ones((1, y_arr.size), dtype=np.int64))[0]
    )
    if not np.isfinite(point):
        return None
    rng = np.random.default_rng(seed)
    n = y_arr.size
    chunk = max(1, _CELLS_PER_CHUNK // max(n, 1))
    deltas = []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        w = np.bincount(idx.ravel(), minlength=size * n).reshape(size, n)
        deltas.append(_statistic(a, y_arr, g, w) - _statistic(b, y_arr, g, w))
    d = np.concatenate(deltas)
    d = d[np.isfinite(d)]
    if not d.size:
        return None
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(d, [tail, 100 - tail])
    return BootstrapInterval(float(point), float(low), float(high), confidence, resamples, seed, int(d.size))


def _statistic(
    scores: FloatArray, y: npt.NDArray[np.int8], groups: npt.NDArray[np.str_] | None, w: npt.NDArray[np.int64]
) -> FloatArray:
    if groups is None:
        return weighted_auc(scores, y, w)
    per_group = [weighted_auc(scores[groups == g], y[groups == g], w[:, groups == g]) for g in np.unique(groups)]
    stacked = np.vstack(per_group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resample → NaN, dropped later
        return np.asarray(np.nanmean(stacked, axis=0), dtype=np.float64)


def rank_agreement(candidate: FloatArray, baseline: FloatArray, top_k_fraction: float = 0.1) -> dict[str, Any]:
    """Spearman correlation (None if either side is constant) and the top-k overlap."""
    from scipy import stats

    spearman = None
    if np.ptp(candidate) > 0 and np.ptp(baseline) > 0:
        spearman = float(stats.spearmanr(candidate, baseline).statistic)
    k = max(1, round(top_k_fraction * candidate.size))
    top_c = np.argsort(-candidate, kind="stable")[:k]
    top_b = np.argsort(-baseline, kind="stable")[:k]
    overlap = np.intersect1d(top_c, top_b).size / k
    return {"spearman": spearman, "top_k_overlap": float(overlap), "top_k": int(k)}


def decision_stats(candidate: FloatArray, baseline: FloatArray, threshold: float = 0.5) -> dict[str, float]:
    """Positive rates at `threshold` (value >= threshold), their shift and the decision agreement."""
    pc, pb = candidate >= threshold, baseline >= threshold
    rate_c, rate_b = float(pc.mean()), float(pb.mean())
    return {
        "positive_rate": rate_c,
        "positive_rate_baseline": rate_b,
        "positive_rate_shift": abs(rate_c - rate_b),
        "decision_agreement": float(np.mean(pc == pb)),
    }


def distribution_stats(candidate: FloatArray, baseline: FloatArray, bins: int = 20) -> dict[str, float]:
    """KS (exact, `scipy.stats.ks_2samp`), PSI and Jensen-Shannon distance over `bins` bins on [0, 1]."""
    from scipy import stats

    from loraguard.monitor.drift import histogram, js_distance, psi

    ks = stats.ks_2samp(candidate, baseline)
    hc, hb = histogram(candidate, bins), histogram(baseline, bins)
    return {
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "psi": psi(hb, hc),
        "js_distance": js_distance(hb, hc),
    }
