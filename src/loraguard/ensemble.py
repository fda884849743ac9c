"""Ensembling predictions of several models, aligned by `row_id`.

- `rank` (default): each model's values become normalised ranks, `rankdata(v, method="average") / (n + 1)`,
  then a weighted sum, as the Jigsaw ACRC top solutions did. With `groups` the ranks are computed
  within each group (e.g. per rule, as the first-place team did), so every group spans (0, 1).
- `mean`: the weighted arithmetic mean of the probabilities.
- `geometric`: the weighted geometric mean, `exp(Σ wᵢ log pᵢ)`, with p clipped at 1e-15.

Weights are normalised to sum to 1; the result is a `Predictions` in the first input's row order.
`input_alerts` runs the monitor's rules on each input: a degenerate input hides inside a healthy-looking
rank average, so `loraguard ensemble` monitors every input as well as the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from loraguard.errors import InputError
from loraguard.monitor.alerts import Alert, RulePolicy, evaluate
from loraguard.monitor.core import summarize
from loraguard.monitor.predictions import Predictions, align
from loraguard.monitor.summary import MonitorSummary

__all__ = ["METHODS", "Method", "ensemble", "input_alerts", "input_summaries", "normalised_ranks", "parse_weights"]

Method = Literal["rank", "mean", "geometric"]
METHODS: tuple[Method, ...] = ("rank", "mean", "geometric")
_LOG_FLOOR = 1e-15


def ensemble(
    preds: Sequence[Predictions],
    method: Method = "rank",
    weights: Sequence[float] | None = None,
    groups: npt.ArrayLike | Mapping[str, str] | None = None,
) -> Predictions:
    """Combine `preds` (at least two, the same `row_id`s) into one `Predictions`.

    `groups` is one label per row of `preds[0]` (or a mapping row_id → label); it applies to the
    `rank` method only. Raises `DataFormatError` on mismatched row_ids, `InputError` on bad options.
    """
    if len(preds) < 2:
        raise InputError(f"ensemble needs at least two prediction files, got {len(preds)}")
    if method not in METHODS:
        raise InputError(f"unknown ensemble method {method!r}: use one of {', '.join(METHODS)}")
    w = _weights(weights, len(preds))
    first = preds[0]
    aligned = [first, *(align(first, p)[1] for p in preds[1:])]
    matrix = np.vstack([p.values for p in aligned])
    labels = _groups(groups, first)
    if labels is not None and method != "rank":
        raise InputError(f"grouping only applies to the rank method (got --method {method})")
    if method == "rank":
        matrix = np.vstack([normalised_ranks(row, labels) for row in matrix])
        values = w @ matrix
    elif method == "mean":
        values = w @ matrix
    else:
        values = np.exp(w @ np.log(np.clip(matrix, _LOG_FLOOR, 1.0)))
    masks = [p.parsed for p in aligned if p.parsed is not None]
    parsed = np.logical_and.reduce(masks) if masks else None
    source = f"{method}-ensemble({', '.join(p.source for p in aligned)})"
    return Predictions(first.row_ids, np.clip(values, 0.0, 1.0), parsed, source)


def input_summaries(preds: Sequence[Predictions]) -> list[MonitorSummary]:
    """The monitor's summary of each input (the same calculation `loraguard monitor` makes)."""
    return [summarize(p.values, parsed=p.parsed) for p in preds]


def input_alerts(
    preds: Sequence[Predictions],
    policy: RulePolicy | None = None,
    summaries: Sequence[MonitorSummary] | None = None,
) -> tuple[Alert, ...]:
    """The monitor's alerts on each input under `policy`, each labelled with its input (`segment`
    `input <source>`, the message prefixed alike), errors first."""
    found: list[Alert] = []
    for p, summary in zip(preds, summaries if summaries is not None else input_summaries(preds), strict=True):
        label = f"input {p.source}"
        found += [
            Alert(a.rule, a.severity, f"[{label}] {a.message}", a.evidence, label if a.segment is None else a.segment)
            for a in evaluate(summary, policy)
        ]
    return tuple(sorted(found, key=lambda a: -a.severity.rank))


def normalised_ranks(values: npt.ArrayLike, groups: npt.NDArray[np.str_] | None = None) -> npt.NDArray[np.float64]:
    """`rankdata(values, method="average") / (n + 1)`, within each group when `groups` is given."""
    from scipy.stats import rankdata

    v = np.asarray(values, dtype=np.float64)
    if groups is None:
        return np.asarray(rankdata(v, method="average") / (v.size + 1), dtype=np.float64)
    out = np.empty_like(v)
    for g in np.unique(groups):
        rows = groups == g
        out[rows] = rankdata(v[rows], method="average") / (int(rows.sum()) + 1)
    return out


def parse_weights(text: str) -> list[float]:
    """`"0.5,0.3,0.2"` → `[0.5, 0.3, 0.2]` (raises `InputError` naming the bad item)."""
    items = [item.strip() for item in text.split(",")]
    try:
        return [float(item) for item in items]
    except ValueError:
        bad = next(i for i in items if not _is_float(i))
        raise InputError(f"--weights {text!r}: {bad!r} is not a number; give comma-separated numbers") from None


def _weights(weights: Sequence[float] | None, count: int) -> npt.NDArray[np.float64]:
    if weights is None:
        return np.full(count, 1.0 / count)
    w = np.asarray(weights, dtype=np.float64)
    if w.size != count:
        raise InputError(f"{w.size} weight(s) for {count} prediction files: give one weight per file")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise InputError(f"weights {w.tolist()} must be finite, non-negative and not all zero")
    return np.asarray(w / w.sum(), dtype=np.float64)


def _groups(groups: npt.ArrayLike | Mapping[str, str] | None, first: Predictions) -> npt.NDArray[np.str_] | None:
    if groups is None:
        return None
    if isinstance(groups, Mapping):
        missing = [rid for rid in first.row_ids.tolist() if rid not in groups]
        if missing:
            raise InputError(f"{len(missing)} row_id(s) of {first.source} have no group (first: {missing[0]!r})")
        return np.array([groups[rid] for rid in first.row_ids.tolist()], dtype=np.str_)
    labels = np.asarray(groups).astype(np.str_)
    if labels.shape != first.row_ids.shape:
        raise InputError(f"{labels.size} group labels for {len(first)} rows of {first.source}")
    return labels


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
