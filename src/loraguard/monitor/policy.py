"""Policy files: thresholds for the monitor's alert rules and the gate's checks (TOML, docs/policy.md).

```toml
[monitor.stuck]            # one table per alert rule: override any threshold,
share_at_least = 0.6       # its severity ("error", "warning", "info") or `enabled`
severity = "warning"

[gate]                     # gate settings
decision_threshold = 0.5

[gate.auc]                 # one table per gate metric, in MLflow's MetricThreshold form;
min_absolute_change = -0.02  # it replaces that metric's default check
critical = true
```

Unknown sections, rules, metrics or keys raise `PolicyError` naming the key and the file.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from loraguard.errors import PolicyError
from loraguard.findings import Severity
from loraguard.monitor.alerts import RULES, RuleSettings, default_settings

__all__ = [
    "GATE_METRICS",
    "GateSettings",
    "MetricThreshold",
    "Policy",
    "default_policy",
    "load_policy",
    "policy_from_mapping",
]


_UNBOUNDED_THRESHOLDS = frozenset({"min_samples", "distinct_at_most", "psi_at_least"})
"""Rule thresholds that may exceed 1 (the others are shares, probabilities or p-values)."""


@dataclass(frozen=True)
class MetricThreshold:
    """A gate check in MLflow's `MetricThreshold` form.

    - `threshold`: the candidate's value must be `>=` it (higher is better) or `<=` it.
    - `min_absolute_change`: candidate `>=` baseline + change (higher is better) or `<=` baseline − change.
      Unlike MLflow, negative values are allowed and mean a tolerated regression
      (`-0.01`: the candidate may be up to 0.01 worse).
    - `min_relative_change`: candidate `>=` baseline × (1 + change), or `<=` baseline × (1 − change);
      in [-1, 1]. A baseline of 0 falls back to "better by 1e-10" as in MLflow when the change is > 0.
    - `critical`: a failed critical check fails the gate; a failed non-critical check makes it warn.
    """

    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    higher_is_better: bool = True
    critical: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of these settings."""
        return asdict(self)

    def describe(self) -> str:
        """E.g. `>= 0.9`, `Δ >= -0.01`; the parts joined with `and`."""
        ge = ">=" if self.higher_is_better else "<="
        parts = []
        if self.threshold is not None:
            parts.append(f"{ge} {self.threshold:g}")
        if self.min_absolute_change is not None:
            sign = 1 if self.higher_is_better else -1
            parts.append(f"Δ {ge} {sign * self.min_absolute_change:+g}")
        if self.min_relative_change is not None:
            sign = 1 if self.higher_is_better else -1
            parts.append(f"Δ% {ge} {sign * self.min_relative_change:+.1%}")
        return " and ".join(parts) or "(no threshold)"


@dataclass(frozen=True)
class GateSettings:
    """Settings of the gate's computations (the `[gate]` table's plain keys)."""

    decision_threshold: float = 0.5
    """Predictions at or above it count as positive (decision agreement, positive rate)."""
    top_k_fraction: float = 0.1
    """Share of rows in the top-k overlap."""
    bootstrap_resamples: int = 1000
    bootstrap_seed: int = 0
    confidence: float = 0.95
    """Confidence level of the paired bootstrap interval of the AUC difference."""


def _m(description: str, comparable: bool, default: MetricThreshold | None) -> tuple[str, bool, MetricThreshold | None]:
    return description, comparable, default


GATE_METRICS: Mapping[str, tuple[str, bool, MetricThreshold | None]] = MappingProxyType(
    {
        # name: (description, has a baseline value to compare with, default check)
        "monitor_errors": _m(
            "error alerts of the monitor rules on the candidate",
            False,
            MetricThreshold(threshold=0, higher_is_better=False),
        ),
        "monitor_warnings": _m(
            "warning alerts of the monitor rules on the candidate",
            False,
            MetricThreshold(threshold=0, higher_is_better=False, critical=False),
        ),
        "auc": _m("pooled ROC AUC against the labels", True, MetricThreshold(min_absolute_change=-0.01)),
        "auc_macro": _m("mean of the per-group (per-rule) ROC AUCs", True, MetricThreshold(min_absolute_change=-0.01)),
        "auc_delta": _m("AUC(candidate) − AUC(baseline), pooled", False, None),
        "auc_delta_ci_high": _m(
            "upper end of the paired bootstrap interval of auc_delta", False, MetricThreshold(threshold=0.0)
        ),
        "auc_macro_delta": _m("AUC(candidate) − AUC(baseline), mean per group", False, None),
        "auc_macro_delta_ci_high": _m(
            "upper end of the paired bootstrap interval of auc_macro_delta",
            False,
            MetricThreshold(threshold=0.0),
        ),
        "positive_rate": _m("share of predictions >= the decision threshold", True, None),
        "positive_rate_shift": _m(
            "|positive rate(candidate) − positive rate(baseline)|",
            False,
            MetricThreshold(threshold=0.05, higher_is_better=False),
        ),
        "decision_agreement": _m(
            "share of rows with the same decision at the threshold",
            False,
            MetricThreshold(threshold=0.9, critical=False),
        ),
        "spearman": _m(
            "Spearman rank correlation of candidate and baseline",
            False,
            MetricThreshold(threshold=0.8, critical=False),
        ),
        "top_k_overlap": _m(
            "share of the baseline's top-k rows also in the candidate's top-k",
            False,
            MetricThreshold(threshold=0.5, critical=False),
        ),
        "psi": _m(
            "PSI of the candidate against the baseline over the histogram bins",
            False,
            MetricThreshold(threshold=0.2, higher_is_better=False, critical=False),
        ),
        "js_distance": _m(
            "Jensen-Shannon distance (base 2) over the histogram bins",
            False,
            MetricThreshold(threshold=0.1, higher_is_better=False, critical=False),
        ),
        "ks_statistic": _m("two-sample KS statistic (exact)", False, None),
        "ks_pvalue": _m(
            "two-sample KS p-value (exact, scipy.stats.ks_2samp)",
            False,
            MetricThreshold(threshold=0.05, critical=False),
        ),
    }
)


@dataclass(frozen=True)
class Policy:
    """Monitor rule settings and gate checks, with the file they came from."""

    monitor: Mapping[str, RuleSettings]
    gate: Mapping[str, MetricThreshold]
    gate_settings: GateSettings = field(default_factory=GateSettings)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Everything applied, for reports."""
        return {
            "source": self.source,
            "monitor": {name: cfg.to_dict() for name, cfg in self.monitor.items()},
            "gate": {**asdict(self.gate_settings), "checks": {k: v.to_dict() for k, v in self.gate.items()}},
        }


def default_policy() -> Policy:
    """The documented defaults (docs/policy.md)."""
    monitor = default_settings()
    gate = {name: default for name, (_, _, default) in GATE_METRICS.items() if default is not None}
    return Policy(MappingProxyType(monitor), MappingProxyType(gate))


def load_policy(path: str | Path) -> Policy:
    """Read a TOML policy file over the defaults; raises `PolicyError` naming the key and file."""
    name = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read policy {name}: {exc.strerror or exc}", path=name) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"policy {name} is not valid TOML: {exc}", path=name) from exc
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        raise PolicyError(f"policy {name} is not valid TOML: nested too deeply", path=name) from None
    return policy_from_mapping(data, source=name)


def policy_from_mapping(data: Mapping[str, Any], *, source: str = "<policy>") -> Policy:
    """A `Policy` from parsed TOML (a mapping with optional `monitor` and `gate` tables)."""
    _unknown(data, {"monitor", "gate"}, "", source)
    base = default_policy()
    monitor = dict(base.monitor)
    for rule_name in _table(data, "monitor", source):
        if rule_name not in RULES:
            raise PolicyError(_unknown_msg(f"monitor.{rule_name}", source, RULES), path=source)
        monitor[rule_name] = _rule_settings(
            monitor[rule_name],
            _table(data["monitor"], rule_name, source, "monitor."),
            f"monitor.{rule_name}",
            source,
        )
    gate = dict(base.gate)
    chosen: dict[str, Any] = {}
    plain = {f.name for f in fields(GateSettings)}
    for key, value in _table(data, "gate", source).items():
        if key in plain:
            chosen[key] = _setting(key, value, source)
        elif key in GATE_METRICS:
            check = _metric_threshold(key, _table(data["gate"], key, source, "gate."), source)
            if check is None:
                gate.pop(key, None)
            else:
                gate[key] = check
        else:
            raise PolicyError(_unknown_msg(f"gate.{key}", source, [*sorted(plain), *GATE_METRICS]), path=source)
    return Policy(MappingProxyType(monitor), MappingProxyType(gate), GateSettings(**chosen), source)


def _rule_settings(base: RuleSettings, table: Mapping[str, Any], where: str, source: str) -> RuleSettings:
    _unknown(table, {"enabled", "severity", *base.thresholds}, where + ".", source)
    thresholds = dict(base.thresholds)
    for key, value in table.items():
        if key in thresholds:
            unbounded = key in _UNBOUNDED_THRESHOLDS
            thresholds[key] = _number(value, f"{where}.{key}", source, minimum=0.0, maximum=None if unbounded else 1.0)
    severity = base.severity
    if "severity" in table:
        try:
            severity = Severity(table["severity"])
        except ValueError:
            raise PolicyError(
                f"policy {source}: {where}.severity = {table['severity']!r} is not error, warning or info",
                path=source,
            ) from None
    enabled = _boolean(table.get("enabled", base.enabled), f"{where}.enabled", source)
    return RuleSettings(enabled, severity, MappingProxyType(thresholds))


def _metric_threshold(metric: str, table: Mapping[str, Any], source: str) -> MetricThreshold | None:
    keys = {f.name for f in fields(MetricThreshold)} | {"enabled"}
    _unknown(table, keys, f"gate.{metric}.", source)
    if not _boolean(table.get("enabled", True), f"gate.{metric}.enabled", source):
        return None
    _, comparable, default = GATE_METRICS[metric]
    where = f"gate.{metric}"
    values: dict[str, Any] = {
        "higher_is_better": (default or MetricThreshold()).higher_is_better,
        "critical": (default or MetricThreshold()).critical,
    }
    for key in ("higher_is_better", "critical"):
        if key in table:
            values[key] = _boolean(table[key], f"{where}.{key}", source)
    for key in ("threshold", "min_absolute_change", "min_relative_change"):
        if key in table:
            values[key] = _number(table[key], f"{where}.{key}", source)
    if not {"threshold", "min_absolute_change", "min_relative_change"} & values.keys():
        raise PolicyError(
            f"policy {source}: [{where}] sets no threshold, min_absolute_change or min_relative_change "
            "(use enabled = false to turn the check off)",
            path=source,
        )
    if not comparable and ({"min_absolute_change", "min_relative_change"} & values.keys()):
        raise PolicyError(
            f"policy {source}: [{where}] compares with the baseline, but {metric} has no baseline value; use threshold",
            path=source,
        )
    rel = values.get("min_relative_change")
    if rel is not None and not -1.0 <= rel <= 1.0:
        raise PolicyError(f"policy {source}: {where}.min_relative_change = {rel} is outside [-1, 1]", path=source)
    return MetricThreshold(**values)


def _setting(key: str, value: Any, source: str) -> float | int:
    where = f"gate.{key}"
    if key in ("bootstrap_resamples", "bootstrap_seed"):
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "bootstrap_resamples" else 0):
            raise PolicyError(f"policy {source}: {where} = {value!r} must be a non-negative integer", path=source)
        return value
    number = _number(value, where, source, minimum=0.0)
    upper = 1.0 if key in ("decision_threshold", "top_k_fraction") else 0.9999
    if number > upper or (key in ("top_k_fraction", "confidence") and number <= 0):
        raise PolicyError(f"policy {source}: {where} = {value!r} must be in (0, {upper:g}]", path=source)
    return number


def _table(data: Mapping[str, Any], key: str, source: str, prefix: str = "") -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise PolicyError(f"policy {source}: [{prefix}{key}] must be a table, got {value!r}", path=source)
    return value


def _number(
    value: Any, where: str, source: str, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PolicyError(f"policy {source}: {where} = {value!r} is not a finite number", path=source)
    if minimum is not None and value < minimum:
        raise PolicyError(f"policy {source}: {where} = {value!r} must be >= {minimum:g}", path=source)
    if maximum is not None and value > maximum:
        raise PolicyError(f"policy {source}: {where} = {value!r} must be <= {maximum:g}", path=source)
    return value


def _boolean(value: Any, where: str, source: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"policy {source}: {where} = {value!r} must be true or false", path=source)
    return value


def _unknown(table: Mapping[str, Any], known: set[str] | Mapping[str, Any], prefix: str, source: str) -> None:
    for key in table:
        if key not in known:
            raise PolicyError(_unknown_msg(prefix + key, source, known), path=source)


def _unknown_msg(key: str, source: str, known: Any) -> str:
    return f"policy {source}: unknown key {key!r}. Known here: {', '.join(sorted(known))}"
