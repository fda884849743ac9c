"""`run_gate`: compare a candidate's predictions with the production baseline's and decide."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from loraguard.findings import Severity
from loraguard.gate.checks import evaluate_check
from loraguard.gate.comparison import (
    auc,
    auc_by_group,
    bootstrap_auc_delta,
    decision_stats,
    distribution_stats,
    macro,
    rank_agreement,
)
from loraguard.gate.report import GateReport, count_alerts, verdict_of_checks
from loraguard.monitor.alerts import evaluate
from loraguard.monitor.core import summarize
from loraguard.monitor.policy import GATE_METRICS, Policy, default_policy
from loraguard.monitor.predictions import Labels, Predictions, align

__all__ = ["run_gate"]


def run_gate(
    candidate: Predictions,
    baseline: Predictions,
    labels: Labels | None = None,
    policy: Policy | None = None,
    *,
    threshold: float | None = None,
) -> GateReport:
    """Gate `candidate` against `baseline` (rows aligned by `row_id`).

    Runs the monitor rules on the candidate, compares the two distributions (KS, PSI, JS), rank
    agreement (Spearman, top-k overlap), decisions at the threshold, and with `labels` the pooled and
    per-group AUC with paired bootstrap intervals of the difference. Each metric with a check in
    `policy.gate` is judged; the verdict fails on a critical failure and warns on a non-critical one.
    `threshold` overrides the policy's decision threshold.
    """
    policy = policy or default_policy()
    settings = policy.gate_settings
    if threshold is not None:
        settings = replace(settings, decision_threshold=float(threshold))
    cand, base = align(candidate, baseline)
    c, b = cand.values, base.values
    cand_summary = summarize(c, parsed=cand.parsed)
    base_summary = summarize(b, parsed=base.parsed)
    alerts = evaluate(cand_summary, policy)
    base_alerts = evaluate(base_summary, policy)

    values: dict[str, float | None] = {
        "monitor_errors": count_alerts(alerts, Severity.ERROR),
        "monitor_warnings": count_alerts(alerts, Severity.WARNING),
    }
    base_values: dict[str, float | None] = {}
    decisions = decision_stats(c, b, settings.decision_threshold)
    base_values["positive_rate"] = decisions.pop("positive_rate_baseline")
    values.update(decisions)
    ranks = rank_agreement(c, b, settings.top_k_fraction)
    values.update(spearman=ranks["spearman"], top_k_overlap=ranks["top_k_overlap"])
    values.update(distribution_stats(c, b, bins=cand_summary.bins))

    per_group: dict[str, dict[str, Any]] = {}
    bootstrap = {}
    if labels is not None:
        lab = labels.aligned_to(cand.row_ids, source=cand.source)
        values["auc"], base_values["auc"] = auc(lab.y, c), auc(lab.y, b)
        ci = bootstrap_auc_delta(
            lab.y,
            c,
            b,
            resamples=settings.bootstrap_resamples,
            seed=settings.bootstrap_seed,
            confidence=settings.confidence,
        )
        if ci is not None:
            bootstrap["auc"] = ci
        if lab.groups is not None:
            per_group = _per_group(lab, c, b)
            values["auc_macro"] = macro({k: v["candidate"] for k, v in per_group.items()})
            base_values["auc_macro"] = macro({k: v["baseline"] for k, v in per_group.items()})
            ci = bootstrap_auc_delta(
                lab.y,
                c,
                b,
                groups=lab.groups,
                resamples=settings.bootstrap_resamples,
                seed=settings.bootstrap_seed,
                confidence=settings.confidence,
            )
            if ci is not None:
                bootstrap["auc_macro"] = ci
    for key, ci in bootstrap.items():
        values[f"{key}_delta"], values[f"{key}_delta_ci_high"] = ci.delta, ci.high

    checks = tuple(
        evaluate_check(name, check, values.get(name), base_values.get(name) if GATE_METRICS[name][1] else None)
        for name, check in policy.gate.items()
    )
    return GateReport(
        verdict=verdict_of_checks(checks),
        candidate=cand.source,
        baseline=base.source,
        labels=None if labels is None else labels.source,
        n=len(cand),
        metrics=values,
        baseline_metrics=base_values,
        checks=checks,
        alerts=alerts,
        baseline_alerts=base_alerts,
        candidate_summary=cand_summary,
        baseline_summary=base_summary,
        settings=settings,
        policy={
            **policy.to_dict(),
            "gate": {**policy.to_dict()["gate"], "decision_threshold": settings.decision_threshold},
        },
        per_group=per_group,
        bootstrap=bootstrap,
    )


def _per_group(lab: Labels, c: np.ndarray, b: np.ndarray) -> dict[str, dict[str, Any]]:
    assert lab.groups is not None
    out = {}
    cand_auc, base_auc = auc_by_group(lab.y, c, lab.groups), auc_by_group(lab.y, b, lab.groups)
    for name in cand_auc:
        rows = lab.groups == name
        out[name] = {
            "rows": int(rows.sum()),
            "positives": int(lab.y[rows].sum()),
            "candidate": cand_auc[name],
            "baseline": base_auc[name],
        }
    return out
