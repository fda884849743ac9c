"""`loraguard probe`: load the base and the adapter for real and run a few rows with and without it.

- `probe(adapter, base, rows=None, samples=16, method="logits", force=False)` -> `ProbeReport`
  (`run.py`): the static check first (stops on its errors unless `force`), then the measurements
  (`measure.py`) and the LG6xx rules (`rules.py`) over a `ProbeContext` (`context.py`).
- `ProbeReport.blame`: `adapter` (degenerate, non-finite or no effect only with the adapter),
  `base-or-prompt` (the same without it) or None.

Importing this package does not import torch; `probe()` does, when it loads the model.
"""

from __future__ import annotations

from loraguard.probe.context import BatchCheck, Effect, PredictionStats, ProbeContext, ProbeThresholds, Side
from loraguard.probe.report import BLAME_ADAPTER, BLAME_BASE_OR_PROMPT, PROBE_SCHEMA, ProbeReport, differential
from loraguard.probe.run import DEFAULT_SAMPLES, probe, sample_rows

__all__ = [
    "BLAME_ADAPTER",
    "BLAME_BASE_OR_PROMPT",
    "DEFAULT_SAMPLES",
    "PROBE_SCHEMA",
    "BatchCheck",
    "Effect",
    "PredictionStats",
    "ProbeContext",
    "ProbeReport",
    "ProbeThresholds",
    "Side",
    "differential",
    "probe",
    "sample_rows",
]
