"""Hostile adapter_config.json: wrong types, bad and runaway regexes, absurd sizes, deep nesting.

Each case asserts the finding (or the one-line error), the exit code, and a time and memory bound; the
comments give what the same input cost before the limits (issue 14).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hostile_inputs import adapter_with_config, bounded, nested_json

import loraguard
from loraguard.adapter.config import MAX_CONFIG_BYTES, AdapterConfig, config_problems
from loraguard.adapter.patterns import ConfigPatterns
from loraguard.checks.report import CheckReport
from loraguard.checks.targets import matches_target
from loraguard.errors import ConfigPatternError


def _lg206(report: CheckReport) -> list[str]:
    return [f.message for f in report.findings if f.code == "LG206"]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"r": "abc"}, "`r` is 'abc' (a string)"),  # was PASS; PEFT: TypeError
        ({"r": 8.5}, "`r` is 8.5 (a float)"),
        ({"r": True}, "`r` is True (a boolean)"),
        ({"r": [8]}, "`r` is [8] (a list)"),
        ({"r": "8"}, "`r` is '8' (a string)"),
        ({"r": 0}, "`r` is 0 (an integer); PEFT needs a positive integer"),
        ({"r": None}, "`r` is None (null)"),
        ({"lora_alpha": "sixteen"}, "`lora_alpha` is 'sixteen' (a string)"),  # was PASS
        ({"lora_dropout": "0.1"}, "`lora_dropout` is '0.1'"),
        ({"bias": "everything"}, "`bias` is 'everything'"),
        ({"rank_pattern": {"q_proj": "4"}}, "`rank_pattern` needs positive integer ranks"),
        ({"rank_pattern": ["q_proj"]}, "`rank_pattern` is ['q_proj'] (a list)"),
        ({"alpha_pattern": {"q_proj": "x"}}, "`alpha_pattern` needs finite numbers"),
        ({"target_modules": 5}, "`target_modules` is 5 (an integer)"),
        ({"target_modules": [1, None, {"a": 1}]}, "`target_modules` is [1, None, {'a': 1}] (a list)"),
        ({"modules_to_save": 5}, "`modules_to_save` is 5"),
        ({"layers_to_transform": "abc"}, "`layers_to_transform` is 'abc'"),
        ({"peft_type": ["LORA"]}, "`peft_type` is ['LORA'] (a list)"),
        ({"task_type": {"a": 1}}, "`task_type` is {'a': 1} (an object)"),
        ({"layers_pattern": "layers"}, "`layers_pattern` is set but `layers_to_transform` is not"),
        ({"target_modules": ".*q_proj", "layers_to_transform": [0]}, "`target_modules` is a regex string"),
    ],
)
def test_wrong_types_are_errors_as_peft_treats_them(tmp_path: Path, base: Path, changes: dict, says: str) -> None:
    adapter = adapter_with_config(tmp_path, "bad", changes)
    with bounded(seconds=3, megabytes=100):
        report = loraguard.check(adapter, base)
    assert report.exit_code() == 1
    assert any(says in m for m in _lg206(report)), _lg206(report)


def test_nan_and_non_finite_values(tmp_path: Path, base: Path) -> None:
    adapter = adapter_with_config(tmp_path, "nan", {"lora_alpha": 16})
    config = adapter / "adapter_config.json"
    config.write_text(
        config.read_text().replace('"r": 8', '"r": NaN').replace('"lora_alpha": 16', '"lora_alpha": Infinity')
    )
    report = loraguard.check(adapter, base)  # was: ValueError traceback (int(NaN))
    messages = _lg206(report)
    assert any("`r` is nan (not finite)" in m for m in messages) and any("`lora_alpha` is inf" in m for m in messages)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"target_modules": "(q_proj"}, "target_modules"),
        ({"exclude_modules": "(q"}, "exclude_modules"),
        ({"layers_to_transform": [0], "layers_pattern": "(layers"}, "layers_pattern"),
        ({"rank_pattern": {"(q": 4}}, "rank_pattern"),
        ({"alpha_pattern": {"[v": 4}}, "alpha_pattern"),
        ({"modules_to_save": ["score("]}, "modules_to_save"),
    ],
)
def test_bad_regexes_are_findings_not_tracebacks(tmp_path: Path, base: Path, changes: dict, field: str) -> None:
    adapter = adapter_with_config(tmp_path, "regex", changes)
    with bounded(seconds=3, megabytes=100):
        report = loraguard.check(adapter, base)  # was: re.error traceback
    messages = _lg206(report)
    assert any(m.startswith(f"{field} pattern") and "not a valid regular expression" in m for m in messages), messages
    assert report.exit_code() == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"target_modules": r"(?:[a-z.0-9_]|[a-z]|\w|.)+$(?<=Z)"},  # backtracks for hours on every module name
        {"exclude_modules": r"(?:[a-z.0-9_]|[a-z]|\w|.)+$(?<=Z)"},
        {"rank_pattern": {r"(?:[a-z.0-9_]|[a-z]|\w|.)+(?<=Z)": 4}},
    ],
)
def test_runaway_regex_is_stopped_and_reported(tmp_path: Path, base: Path, changes: dict) -> None:
    adapter = adapter_with_config(tmp_path, "slow", changes)
    with bounded(seconds=3, megabytes=100):
        report = loraguard.check(adapter, base)
    messages = _lg206(report)
    assert any("catastrophic backtracking" in m for m in messages), messages
    assert report.exit_code() == 1


def test_issue_regex_is_fast(tmp_path: Path, base: Path) -> None:
    adapter = adapter_with_config(tmp_path, "issue", {"target_modules": "(.*a){30}"})  # 54 s with re
    with bounded(seconds=2, megabytes=100):
        report = loraguard.check(adapter, base)
    assert "unknown-target-module" in report.categories()


def test_pattern_engine_limits_each_match_and_the_total() -> None:
    engine = ConfigPatterns(timeout_s=0.05, budget_s=0.3)
    slow, name = r"(a|aa)+$", "a" * 40 + "b"
    with bounded(seconds=1, megabytes=50), pytest.raises(ConfigPatternError, match="catastrophic backtracking"):
        engine.fullmatch("target_modules", slow, slow, name)
    with pytest.raises(ConfigPatternError):  # a failed pattern fails at once afterwards
        engine.fullmatch("target_modules", slow, slow, "other")
    assert [p.reason for p in engine.problems] == ["too-slow"]
    nested = "((a{100}){100}){100}"  # `regex` would spend seconds unrolling it
    with bounded(seconds=1, megabytes=50):
        assert engine.validate("rank_pattern", nested).reason == "too-complex"
    assert engine.validate("rank_pattern", "x" * 20_000).reason == "too-long"
    assert engine.validate("rank_pattern", "(" * 3000 + ")" * 3000).reason == "invalid"


def test_matching_agrees_with_python_re_on_ordinary_patterns() -> None:
    import re

    names = ["model.layers.0.self_attn.q_proj", "model.layers.11.mlp.down_proj", "lm_head", "model.embed_tokens"]
    for pattern in [r".*\.(q_proj|down_proj)", r"model\.layers\.\d+\..*", r"lm_head|.*embed.*", r"(?!.*mlp).*proj"]:
        cfg = AdapterConfig(raw={"target_modules": pattern})
        for name in names:
            assert matches_target(cfg, name) == bool(re.fullmatch(pattern, name)), (pattern, name)


@pytest.mark.parametrize("count", [1_000, 3_000, 20_000])
def test_many_target_names_check_in_linear_time(tmp_path: Path, base: Path, count: int) -> None:
    """3 s / 17 s / > 300 s before (quadratic); now milliseconds. Beside targets that match, unknown names
    without tensors are stale (one warning naming 20 and counting the rest); with no target matching at
    all they are errors, one finding per name up to 20 and one for the rest."""
    mystery = [f"layer_{i}.mystery_proj" for i in range(count)]
    adapter = adapter_with_config(tmp_path, f"many{count}", {"target_modules": ["q_proj", "v_proj", *mystery]})
    with bounded(seconds=2, megabytes=100):
        report = loraguard.check(adapter, base)
    [stale] = [f for f in report.findings if f.code == "LG204"]
    assert stale.severity.value == "warning" and f"and {count - 20:,} more" in stale.message
    adapter = adapter_with_config(tmp_path, f"none{count}", {"target_modules": mystery})
    with bounded(seconds=2, megabytes=100):
        report = loraguard.check(adapter, base)
    unknown = [f for f in report.findings if f.code == "LG204"]
    assert len(unknown) == 21 and any(f"{count - 20:,} more target module names" in f.message for f in unknown)
    assert all(f.severity.value == "error" for f in unknown)


def test_huge_config_is_refused_before_reading(tmp_path: Path, base: Path) -> None:
    adapter = adapter_with_config(tmp_path, "huge")
    with open(adapter / "adapter_config.json", "r+b") as handle:  # sparse: 56 MB claimed, nothing written
        handle.truncate(56 << 20)
    with bounded(seconds=2, megabytes=50):
        report = loraguard.check(adapter, base)  # was: > 600 s
    assert any(f"more than the {MAX_CONFIG_BYTES:,} bytes accepted" in f.message for f in report.findings)
    assert report.exit_code() == 1


def test_deeply_nested_config_is_a_finding(tmp_path: Path, base: Path) -> None:
    adapter = adapter_with_config(tmp_path, "deep", raw=nested_json(100_000))
    with bounded(seconds=2, megabytes=100):
        report = loraguard.check(adapter, base)  # was: RecursionError traceback
    assert any("nested more than 64 levels" in f.message for f in report.findings if f.code == "LG101")


@pytest.mark.parametrize("target", ["self", "chain"])
def test_symlink_loop_config_is_a_finding(tmp_path: Path, base: Path, target: str) -> None:
    adapter = adapter_with_config(tmp_path, f"loop-{target}")
    config = adapter / "adapter_config.json"
    config.unlink()
    if target == "self":
        os.symlink(config, config)
    else:
        os.symlink(adapter / "b.json", config)
        os.symlink(config, adapter / "b.json")
    report = loraguard.check(adapter, base)
    assert any("symlink loop" in f.message for f in report.findings if f.code == "LG101")


def test_config_problems_never_raise_on_any_json_value() -> None:
    values = [None, True, 0, -1, 2**70, 1.5, float("nan"), float("inf"), "", "x", "\ud800", [], [1], {}, {"a": []}]
    for key in ["r", "lora_alpha", "target_modules", "rank_pattern", "alpha_pattern", "layers_to_transform",
                "layers_pattern", "modules_to_save", "exclude_modules", "peft_type", "task_type", "bias",
                "lora_dropout", "base_model_name_or_path"]:  # fmt: skip
        for value in values:
            cfg = AdapterConfig(raw={"peft_type": "LORA", key: value})
            list(config_problems(cfg))
            assert cfg.r is None or isinstance(cfg.r, int)
            json.dumps([cfg.target_modules, cfg.modules_to_save, cfg.rank_pattern, cfg.layers_to_transform])
