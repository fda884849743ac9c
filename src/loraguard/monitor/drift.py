"""Distribution shift between a current and a reference stream of probabilities.

- **PSI** over the monitor's fixed equal-width bins on [0, 1] (20 by default), with bin shares clipped
  at 1e-4 as Evidently does. Bands: < 0.1 stable, 0.1–0.2 moderate, ≥ 0.2 significant.
- **Jensen-Shannon distance** (base 2, in [0, 1]) over the same bins; Evidently's default threshold is 0.1.
- **Two-sample KS.** `exact` when both samples are available as values (`scipy.stats.ks_2samp`).
  Otherwise `binned`: a streaming monitor keeps no samples, so D is the largest gap between the two
  empirical CDFs at the edges of the fine histogram (1,000 bins by default) and the p-value comes
  from the asymptotic distribution (`scipy.stats.kstwo` with n·m/(n+m)). The binned D never exceeds
  the exact D and falls short of it by at most the mass of one fine bin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

from loraguard.errors import InputError
from loraguard.monitor.summary import MonitorSummary

__all__ = [
    "DriftStats",
    "ReferenceLike",
    "SummarySource",
    "drift_stats",
    "histogram",
    "js_distance",
    "ks_binned",
    "psi",
    "psi_band",
]


class SummarySource(Protocol):
    """Anything with a `summary()`, such as a `Monitor`."""

    def summary(self) -> MonitorSummary:
        """The current statistics."""
        ...


ReferenceLike: TypeAlias = "SummarySource | MonitorSummary | npt.NDArray[np.float64] | Sequence[float]"
PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class DriftStats:
    """Drift of the current distribution from a reference."""

    psi: float
    psi_band: Literal["stable", "moderate", "significant"]
    js_distance: float
    ks_statistic: float
    ks_pvalue: float
    ks_method: Literal["exact", "binned"]
    n: int
    n_reference: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the statistics."""
        return asdict(self)


def histogram(values: npt.ArrayLike, bins: int) -> npt.NDArray[np.int64]:
    """Counts of values in [0, 1] over `bins` equal-width bins (the last bin includes 1.0)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    idx = (v * bins).astype(np.intp)
    np.clip(idx, 0, bins - 1, out=idx)
    return np.bincount(idx, minlength=bins).astype(np.int64)


def psi(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Population stability index between two histograms (counts) over the same bins."""
    q, p = _shares(reference), _shares(current)
    q, p = np.clip(q, PSI_FLOOR, None), np.clip(p, PSI_FLOOR, None)
    return float(np.sum((p - q) * np.log(p / q)))


def psi_band(
    value: float, moderate: float = 0.1, significant: float = 0.2
) -> Literal["stable", "moderate", "significant"]:
    """The conventional PSI band: < 0.1 stable, < 0.2 moderate, else significant."""
    return "significant" if value >= significant else "moderate" if value >= moderate else "stable"


def js_distance(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2) between two histograms over the same bins."""
    p, q = _shares(reference), _shares(current)
    m = 0.5 * (p + q)
    div = 0.5 * (_kl(p, m) + _kl(q, m))
    return float(math.sqrt(max(div, 0.0)))


def ks_binned(reference: npt.ArrayLike, current: npt.ArrayLike) -> tuple[float, float]:
    """(D, p-value) of the two-sample KS test computed from two histograms over the same bins."""
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(current, dtype=np.float64)
    n, m = a.sum(), b.sum()
    d = float(np.max(np.abs(np.cumsum(a) / n - np.cumsum(b) / m)))
    from scipy import stats

    en = max(round(n * m / (n + m)), 1)
    return d, float(np.clip(stats.kstwo.sf(d, en), 0.0, 1.0))


def drift_stats(
    current: MonitorSummary,
    reference: ReferenceLike,
    *,
    current_values: npt.ArrayLike | None = None,
    moderate: float = 0.1,
    significant: float = 0.2,
) -> DriftStats | None:
    """Drift of `current` from `reference` (None when either side has no values).

    KS is exact when `reference` is an array of values and `current_values` is given, binned otherwise.
    """
    ref_values = _as_values(reference)
    if ref_values is not None:
        ref_values = ref_values[np.isfinite(ref_values) & (ref_values >= 0) & (ref_values <= 1)]
        ref_coarse = histogram(ref_values, current.bins)
        ref_fine = histogram(ref_values, len(current.fine_histogram))
    else:
        ref = reference.summary() if not isinstance(reference, MonitorSummary) else reference  # type: ignore[union-attr]
        if len(ref.fine_histogram) != len(current.fine_histogram) or ref.bins != current.bins:
            raise InputError(
                f"reference has {ref.bins} bins ({len(ref.fine_histogram)} fine) but the current monitor has "
                f"{current.bins} ({len(current.fine_histogram)} fine): build both with the same settings"
            )
        ref_coarse = np.asarray(ref.histogram)
        ref_fine = np.asarray(ref.fine_histogram)
    n_ref = int(ref_coarse.sum())
    if current.n == 0 or n_ref == 0:
        return None
    cur_coarse = np.asarray(current.histogram)
    value = psi(ref_coarse, cur_coarse)
    if ref_values is not None and current_values is not None:
        from scipy import stats

        cur = np.asarray(current_values, dtype=np.float64).ravel()
        res = stats.ks_2samp(cur[np.isfinite(cur)], ref_values)
        ks_d, ks_p, method = float(res.statistic), float(res.pvalue), "exact"
    else:
        ks_d, ks_p = ks_binned(ref_fine, np.asarray(current.fine_histogram))
        method = "binned"
    return DriftStats(
        psi=value,
        psi_band=psi_band(value, moderate, significant),
        js_distance=js_distance(ref_coarse, cur_coarse),
        ks_statistic=ks_d,
        ks_pvalue=ks_p,
        ks_method=method,  # type: ignore[arg-type]
        n=current.n,
        n_reference=n_ref,
    )


def _as_values(reference: ReferenceLike) -> npt.NDArray[np.float64] | None:
    if isinstance(reference, MonitorSummary) or hasattr(reference, "summary"):
        return None
    return np.asarray(reference, dtype=np.float64).ravel()


def _shares(counts: npt.ArrayLike) -> npt.NDArray[np.float64]:
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    return c / total if total > 0 else c


def _kl(p: npt.NDArray[np.float64], q: npt.NDArray[np.float64]) -> float:
    nz = p > 0
    return float(np.sum(p[nz] * np.log2(p[nz] / q[nz])))
