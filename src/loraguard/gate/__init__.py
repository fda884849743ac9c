"""Gate a candidate adapter's predictions against the production baseline's.

from loraguard.gate import run_gate
report = run_gate(read_predictions("cand.csv"), read_predictions("prod.csv"),
                  labels=read_labels("train.csv"), policy=load_policy("policy.toml"))
report.verdict, report.to_dict()          # "schema": "loraguard.gate/1"
GateFormatter().render(report, "markdown")  # from loraguard.report.gate_formatter
"""

from __future__ import annotations

from loraguard.gate.checks import CheckResult, evaluate_check
from loraguard.gate.comparison import BootstrapInterval, bootstrap_auc_delta, weighted_auc
from loraguard.gate.report import SCHEMA, GateReport
from loraguard.gate.run import run_gate

__all__ = [
    "SCHEMA",
    "BootstrapInterval",
    "CheckResult",
    "GateReport",
    "bootstrap_auc_delta",
    "evaluate_check",
    "run_gate",
    "weighted_auc",
]
