"""The one prediction summary and the one set of distribution rules, with their policy and prediction files.

from loraguard.monitor import Monitor
mon = Monitor()
for batch in batches:
    mon.update(batch.values, parsed=batch.parsed, segments=batch.rules)
mon.summary().to_dict()          # JSON, "schema": "loraguard.monitor/1"
mon.alerts(policy, reference=reference_values)

- `summary.py`: `MonitorSummary`, the frozen statistics; `core.py`: the streaming `Monitor` and
  `summarize(values)` (the same calculation over a finished array).
- `alerts.py`: the distribution rules (`degenerate`, `stuck`, `low-spread`, `skew`, ...) and their
  conditions (`degenerate_reason`...), which `score`, `probe`, `gate` and `ensemble` call too.
- `drift.py`: PSI, KS and Jensen-Shannon against a reference; `policy.py`: policy files (monitor rule
  settings and gate checks); `predictions.py`: prediction and label CSV files.
- `render.py` and `prometheus.py`: text/JSON renderings and the Prometheus export.
"""

from __future__ import annotations

from loraguard.monitor.alerts import RULES, Alert, AlertRule, degenerate_reason, evaluate
from loraguard.monitor.core import OTHER_SEGMENT, Monitor, monitor_values, summarize
from loraguard.monitor.drift import DriftStats, drift_stats
from loraguard.monitor.policy import Policy, default_policy, load_policy
from loraguard.monitor.predictions import Labels, Predictions, read_labels, read_predictions
from loraguard.monitor.prometheus import export_prometheus
from loraguard.monitor.summary import SCHEMA, MonitorSummary

__all__ = [
    "OTHER_SEGMENT",
    "RULES",
    "SCHEMA",
    "Alert",
    "AlertRule",
    "DriftStats",
    "Labels",
    "Monitor",
    "MonitorSummary",
    "Policy",
    "Predictions",
    "default_policy",
    "degenerate_reason",
    "drift_stats",
    "evaluate",
    "export_prometheus",
    "load_policy",
    "monitor_values",
    "read_labels",
    "read_predictions",
    "summarize",
]
