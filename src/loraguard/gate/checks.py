"""One gate check: a metric's candidate (and baseline) value against a `MetricThreshold`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from loraguard.monitor.policy import MetricThreshold

__all__ = ["CheckResult", "evaluate_check"]

Status = Literal["pass", "warn", "fail", "skipped"]
_TOLERANCE = 1e-12
_MLFLOW_ZERO_BASELINE_STEP = 1e-10


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one metric check, with the values and the threshold it was judged by."""

    metric: str
    status: Status
    candidate: float | None
    baseline: float | None
    check: MetricThreshold
    failed: tuple[str, ...]
    """The parts that failed: `threshold`, `min_absolute_change`, `min_relative_change`."""
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the check and its readable rule."""
        return {
            "metric": self.metric,
            "status": self.status,
            "candidate": self.candidate,
            "baseline": self.baseline,
            "check": self.check.to_dict(),
            "rule": self.check.describe(),
            "failed": list(self.failed),
            "message": self.message,
        }


def evaluate_check(
    metric: str, check: MetricThreshold, candidate: float | None, baseline: float | None = None
) -> CheckResult:
    """Judge `candidate` (and `baseline`) with MLflow's `MetricThreshold` semantics."""
    if candidate is None:
        return CheckResult(metric, "skipped", None, baseline, check, (), f"{metric}: not computed, check skipped")
    better = _ge if check.higher_is_better else _le
    op = ">=" if check.higher_is_better else "<="
    sign = 1.0 if check.higher_is_better else -1.0
    needs_baseline = check.min_absolute_change is not None or check.min_relative_change is not None
    if needs_baseline and baseline is None and check.threshold is None:
        return CheckResult(
            metric,
            "skipped",
            candidate,
            None,
            check,
            (),
            f"{metric}: no baseline value to compare with, check skipped",
        )
    bounds: dict[str, tuple[float, str]] = {}
    if check.threshold is not None:
        bounds["threshold"] = (check.threshold, "")
    if check.min_absolute_change is not None and baseline is not None:
        delta = sign * check.min_absolute_change
        sign_text = "+" if delta >= 0 else "−"
        bounds["min_absolute_change"] = (baseline + delta, f"baseline {baseline:.4g} {sign_text} {abs(delta):g}")
    if check.min_relative_change is not None and baseline is not None:
        r = sign * check.min_relative_change
        if baseline == 0 and check.min_relative_change > 0:
            bounds["min_relative_change"] = (sign * _MLFLOW_ZERO_BASELINE_STEP, "baseline 0, must improve")
        else:
            bounds["min_relative_change"] = (baseline * (1.0 + r), f"baseline {baseline:.4g} × {1.0 + r:g}")
    failed = [name for name, (bound, _) in bounds.items() if not better(candidate, bound)]
    status: Status = "pass" if not failed else "fail" if check.critical else "warn"
    head = f"{metric} = {candidate:.4g}" + (f" vs baseline {baseline:.4g}" if baseline is not None else "")
    if failed:
        needs = "; ".join(
            f"{name} needs {op} {bounds[name][0]:.4g}" + (f" ({bounds[name][1]})" if bounds[name][1] else "")
            for name in failed
        )
        message = f"{head}: {'fails' if check.critical else 'warns'}, {needs}"
    else:
        message = f"{head}: passes ({check.describe()})"
    return CheckResult(metric, status, candidate, baseline, check, tuple(failed), message)


def _ge(value: float, bound: float) -> bool:
    return value >= bound - _TOLERANCE


def _le(value: float, bound: float) -> bool:
    return value <= bound + _TOLERANCE
