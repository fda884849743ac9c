"""Policy TOML: overrides, validation with errors naming key and file, and docs/policy.md in sync."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from loraguard.errors import PolicyError
from loraguard.findings import Severity
from loraguard.monitor import RULES, evaluate, monitor_values
from loraguard.monitor.policy import GATE_METRICS, MetricThreshold, default_policy, load_policy, policy_from_mapping

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
STUCK_60 = np.where(np.arange(1000) < 600, 0.0, np.linspace(0.01, 1, 1000))


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def _rules(policy_path: Path) -> set[str]:
    return {a.rule for a in evaluate(monitor_values(STUCK_60).summary(), load_policy(policy_path))}


def test_defaults_come_from_the_rule_table() -> None:
    policy = default_policy()
    assert list(policy.monitor) == list(RULES)
    for name, spec in RULES.items():
        assert policy.monitor[name].severity is spec.severity
        assert dict(policy.monitor[name].thresholds) == dict(spec.thresholds)


def test_threshold_override_changes_what_fires(tmp_path: Path) -> None:
    assert "stuck" in _rules(_policy(tmp_path, ""))
    assert "stuck" not in _rules(_policy(tmp_path, "[monitor.stuck]\nshare_at_least = 0.7\n"))


def test_severity_and_enabled_overrides(tmp_path: Path) -> None:
    path = _policy(tmp_path, '[monitor.stuck]\nseverity = "warning"\n[monitor.skew]\nenabled = false\n')
    policy = load_policy(path)
    alerts = {a.rule: a for a in evaluate(monitor_values(np.zeros(50)).summary(), policy)}
    assert alerts["stuck"].severity is Severity.WARNING
    assert "skew" not in alerts
    assert policy.monitor["degenerate"] == default_policy().monitor["degenerate"]  # untouched rules keep defaults
    assert policy.source == str(path)
    assert policy.to_dict()["monitor"]["stuck"]["severity"] == "warning"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[monitor.stuck]\nshare_at_lest = 0.6\n", r"unknown key 'monitor.stuck.share_at_lest'"),
        ("[monitor.stuk]\nshare_at_least = 0.6\n", r"unknown key 'monitor.stuk'"),
        ("[monitr]\n", r"unknown key 'monitr'"),
        ("[gate.aucc]\nthreshold = 0.8\n", r"unknown key 'gate.aucc'"),
        ("[gate.auc]\nthreshhold = 0.8\n", r"unknown key 'gate.auc.threshhold'"),
        ('[monitor.stuck]\nshare_at_least = "half"\n', r"monitor.stuck.share_at_least = 'half' is not a finite number"),
        ("[monitor.stuck]\nshare_at_least = 1.5\n", r"monitor.stuck.share_at_least = 1.5 must be <= 1"),
        ("[monitor.stuck]\nmin_samples = -1\n", r"monitor.stuck.min_samples = -1 must be >= 0"),
        ('[monitor.stuck]\nseverity = "fatal"\n', r"monitor.stuck.severity = 'fatal' is not error, warning or info"),
        ('[monitor.stuck]\nenabled = "no"\n', r"monitor.stuck.enabled = 'no' must be true or false"),
        ("[gate.spearman]\nmin_absolute_change = 0.1\n", r"spearman has no baseline value"),
        ("[gate.auc]\ncritical = false\n", r"\[gate.auc\] sets no threshold"),
        ("[gate.auc]\nmin_relative_change = 2.0\n", r"min_relative_change = 2.0 is outside \[-1, 1\]"),
        ("[gate]\ndecision_threshold = 1.5\n", r"gate.decision_threshold = 1.5 must be in"),
        ("[gate]\nbootstrap_resamples = 0\n", r"gate.bootstrap_resamples = 0 must be"),
        ("monitor = 3\n", r"\[monitor\] must be a table"),
        ("[monitor.stuck\n", r"is not valid TOML"),
    ],
)
def test_invalid_policies_name_the_key_and_the_file(tmp_path: Path, text: str, pattern: str) -> None:
    path = _policy(tmp_path, text)
    with pytest.raises(PolicyError, match=pattern) as info:
        load_policy(path)
    assert str(path) in str(info.value)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"cannot read policy .*absent.toml"):
        load_policy(tmp_path / "absent.toml")


def test_gate_table_replaces_the_default_check_and_can_disable_it(tmp_path: Path) -> None:
    path = _policy(
        tmp_path,
        "[gate]\ndecision_threshold = 0.3\nbootstrap_resamples = 200\n"
        "[gate.auc]\nthreshold = 0.8\n"
        "[gate.positive_rate_shift]\nthreshold = 0.1\ncritical = false\n"
        "[gate.spearman]\nenabled = false\n",
    )
    policy = load_policy(path)
    assert policy.gate["auc"] == MetricThreshold(threshold=0.8, higher_is_better=True, critical=True)
    assert policy.gate["positive_rate_shift"] == MetricThreshold(threshold=0.1, higher_is_better=False, critical=False)
    assert "spearman" not in policy.gate
    assert (policy.gate_settings.decision_threshold, policy.gate_settings.bootstrap_resamples) == (0.3, 200)
    assert policy.gate["auc_macro"] == default_policy().gate["auc_macro"]


def test_docs_default_policy_block_equals_the_defaults() -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/policy.md has no ```toml block"
    documented = policy_from_mapping(tomllib.loads(blocks[0]), source=str(DOC))
    defaults = default_policy()
    assert documented.to_dict()["monitor"] == defaults.to_dict()["monitor"]
    assert documented.to_dict()["gate"] == defaults.to_dict()["gate"]
    parsed = tomllib.loads(blocks[0])
    assert set(parsed["monitor"]) == set(RULES)  # every rule spelled out, not just inherited
    assert {k for k, v in parsed["gate"].items() if isinstance(v, dict)} == set(defaults.gate)
    for metric in GATE_METRICS:
        assert f"`{metric}`" in text
