"""Streaming monitor of predicted probabilities, its alert rules, drift statistics and exports.

from loraguard.monitor import Monitor
mon = Monitor()
for batch in batches:
    mon.update(batch.values, parsed=batch.parsed, segments=batch.rules)
mon.summary().to_dict()          # JSON, "schema": "loraguard.monitor/1"
mon.alerts(policy, reference=reference_values)
"""

from __future__ import annotations

from loraguard.monitor.core import OTHER_SEGMENT, Monitor, monitor_values
from loraguard.monitor.drift import DriftStats, drift_stats
from loraguard.monitor.prometheus import export_prometheus
from loraguard.monitor.rules import RULES, Alert, AlertRule, evaluate
from loraguard.monitor.summary import SCHEMA, MonitorSummary

__all__ = [
    "OTHER_SEGMENT",
    "RULES",
    "SCHEMA",
    "Alert",
    "AlertRule",
    "DriftStats",
    "Monitor",
    "MonitorSummary",
    "drift_stats",
    "evaluate",
    "export_prometheus",
    "monitor_values",
]
