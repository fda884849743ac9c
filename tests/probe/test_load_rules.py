"""LG8xx: PEFT's load outcomes as findings (torch-free: a `LoadOutcome` is plain data)."""

from __future__ import annotations

from loraguard.checks.rules import select_rules
from loraguard.codes import RULES
from loraguard.findings import Severity
from loraguard.probe.load import LoadOutcome, run_load_rules

KEY = "base_model.model.model.layers.{}.self_attn.q_proj.lora_{}.default.weight"


def found(outcome: LoadOutcome) -> dict[str, tuple[Severity, str]]:
    return {f.code: (f.severity, f.message) for f in run_load_rules(outcome)}


def test_a_clean_load_has_no_findings() -> None:
    assert found(LoadOutcome("/a", "default", targeted=("model.layers.0.self_attn.q_proj",))) == {}


def test_each_outcome_becomes_its_finding() -> None:
    outcome = LoadOutcome(
        "/a",
        "default",
        missing_keys=tuple(KEY.format(i, p) for i in range(7) for p in "AB"),
        unexpected_keys=("base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_A.weight",),
        targeted=("model.layers.0.self_attn.q_proj",),
        unmatched_targets=("qkv_proj",),
        reshaped=("lm_head: (64, 941) -> (64, 7)",),
    )
    got = found(outcome)
    assert set(got) == {"LG802", "LG803", "LG804", "LG805"}
    assert got["LG802"][0] is Severity.ERROR and "language_model.model.layers.0.self_attn.q_proj" in got["LG802"][1]
    severity, message = got["LG803"]
    assert severity is Severity.WARNING and message.startswith("14 adapter weight(s) PEFT created on 7 module(s)")
    assert "model.layers.4.self_attn.q_proj and 2 more" in message and "zero lora_B" in message
    assert got["LG804"] == (
        Severity.WARNING,
        "target_modules name(s) 'qkv_proj' matched none of the 1 module(s) PEFT wrapped on this model",
    )
    assert got["LG805"][0] is Severity.INFO and "lm_head: (64, 941) -> (64, 7)" in got["LG805"][1]


def test_random_init_makes_missing_weights_an_error_and_a_failed_load_is_one_finding() -> None:
    random = found(LoadOutcome("/a", "x", missing_keys=(KEY.format(0, "A"),), random_init=True))
    assert random["LG803"][0] is Severity.ERROR and "noise added to the model" in random["LG803"][1]
    failed = found(LoadOutcome("/a", "x", error="RuntimeError: size mismatch", unmatched_targets=("q_proj",)))
    assert set(failed) == {"LG801"}  # nothing was wrapped: no unmatched-target finding beside it
    assert failed["LG801"][1].endswith("RuntimeError: size mismatch; the model was left as it was")


def test_the_static_check_runs_no_load_rule() -> None:
    assert {"LG801", "LG802", "LG803", "LG804", "LG805"} <= set(RULES)
    from loraguard.checks.context import CheckContext

    rules = select_rules(["LG8"])  # registered in the shared table, so `check --select LG8` sees them...
    assert [r.code for r in rules] == ["LG801", "LG802", "LG803", "LG804", "LG805"]
    for r in rules:  # ...and they return nothing for a static check's context
        assert list(r.func(CheckContext.__new__(CheckContext))) == []
