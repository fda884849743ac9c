"""`loraguard.load_adapter` on real tiny models and real PEFT adapters (the demo's and the probe's)."""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from guard_helpers import assert_same_state, model_state

import loraguard
from loraguard.errors import AdapterLoadError, AdapterLoadWarning, InputError, LoraguardError
from loraguard.findings import Severity, Verdict
from loraguard.guard import LoadReport, guarded_load

pytestmark = pytest.mark.slow

Loader = Callable[[Path], Any]


def codes(findings: Any, severity: Severity | None = None) -> set[str]:
    return {f.code for f in findings if severity is None or f.severity is severity}


def logits(model: Any, tokens: int = 12) -> Any:
    import torch

    with torch.inference_mode():
        return model(input_ids=torch.arange(1, tokens + 1).unsqueeze(0)).logits


def quiet_peft(model: Any, folder: Path, **kwargs: Any) -> Any:
    from peft import PeftModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PeftModel.from_pretrained(model, str(folder), **kwargs)


# ------------------------------------------------------------------ healthy adapters: the same as PEFT's


@pytest.mark.parametrize(
    ("case", "peft_class"),
    [
        ("plain-qv", "PeftModelForCausalLM"),
        ("dora", "PeftModelForCausalLM"),
        ("seq-cls-with-head", "PeftModelForSequenceClassification"),
    ],
)
def test_a_healthy_adapter_loads_as_peft_would(
    demo: dict[str, Any], load_base: Loader, case: str, peft_class: str
) -> None:
    import torch

    adapter, base = demo[case]
    guarded = loraguard.load_adapter(load_base(base), adapter)
    plain = quiet_peft(load_base(base), adapter)
    assert type(guarded) is type(plain) and type(guarded).__name__ == peft_class
    assert list(guarded.peft_config) == ["default"] and guarded.active_adapter == "default"
    assert not guarded.training
    flags = {n: p.requires_grad for n, p in guarded.named_parameters()}
    assert flags == {n: p.requires_grad for n, p in plain.named_parameters()} and not any(flags.values())
    assert torch.allclose(logits(guarded), logits(plain))
    with guarded.disable_adapter():
        assert not torch.allclose(logits(guarded), logits(plain), atol=1e-4)  # the adapter does something


def test_guarded_load_reports_every_step(demo: dict[str, Any], load_base: Loader) -> None:
    adapter, base = demo["plain-qv"]
    report = guarded_load(load_base(base), adapter, adapter_name="qv")
    assert isinstance(report, LoadReport) and report.loaded and report.verdict is Verdict.PASS
    assert report.base == "loraguard/tiny-qwen2"  # the folder's identity, as `check --base folder` says
    assert report.check.base is not None and report.check.base["source"] == "live"
    assert report.outcome is not None and report.outcome.error is None
    assert report.outcome.missing_keys == () and report.outcome.unexpected_keys == ()
    assert len(report.outcome.targeted) == 4 and report.outcome.unmatched_targets == ()
    assert list(report.model.peft_config) == ["qv"]
    doc = report.to_dict()
    assert doc["schema"] == "loraguard.load/1" and doc["loaded"] and doc["peft"]["targeted_modules"] == 4
    json.dumps(doc, allow_nan=False)


# ------------------------------------------------------------------ refused before PEFT is called


def test_the_case_study_adapter_is_refused_with_a_clear_reason(demo: dict[str, Any], load_base: Loader) -> None:
    adapter, _ = demo["case-study-at-scale"]
    base = demo["plain-qv"][1]
    model = load_base(base)
    before = model_state(model)
    with pytest.raises(AdapterLoadError) as info:
        loraguard.load_adapter(model, adapter)
    err = info.value
    assert isinstance(err, LoraguardError)
    message = str(err)
    assert message.startswith(f"loraguard refused adapter {adapter} for loraguard/tiny-qwen2:")
    assert "the model was not touched" in message
    assert "LG301 shape-mismatch" in message and "in_features 2560 in the adapter, 64 in" in message
    assert "Qwen/Qwen3-4B" in message  # the base the tensors fit
    assert "LG501" in codes(err.findings) and all(f.severity is Severity.ERROR for f in err.findings)
    assert isinstance(err.report, LoadReport) and err.report.outcome is None and not err.report.loaded
    assert_same_state(before, model_state(model))


def test_a_wider_base_adapter_is_refused(demo: dict[str, Any], load_base: Loader) -> None:
    adapter, base = demo["wider-base-claims-this-base"]
    model = load_base(base)
    with pytest.raises(AdapterLoadError, match=r"LG301 shape-mismatch: self_attn.q_proj.lora_A: in_features 96"):
        loraguard.load_adapter(model, adapter)
    assert not hasattr(model, "peft_config")


# ------------------------------------------------------------------ PEFT itself fails: the model is put back


def test_a_failed_peft_load_leaves_the_model_untouched(demo: dict[str, Any], load_base: Loader) -> None:
    adapter, base = demo["wider-base-claims-this-base"]
    model = load_base(base)
    before, out_before = model_state(model), logits(model)
    # on_error="warn" lets it reach PEFT, which raises a size mismatch half-way through the load
    with pytest.raises(AdapterLoadError) as info:
        loraguard.load_adapter(model, adapter, on_error="warn")
    report = info.value.report
    assert report.outcome is not None and report.outcome.error is not None
    assert report.outcome.error.startswith("RuntimeError: Error(s) in loading state_dict")
    assert "LG801" in codes(info.value.findings)
    assert "the model was put back as it was" in str(info.value)
    assert_same_state(before, model_state(model))
    import torch

    assert torch.equal(logits(model), out_before)


def test_without_the_guard_the_same_failure_corrupts_the_model(demo: dict[str, Any], load_base: Loader) -> None:
    """What the snapshot is for: PEFT's own failed load leaves its layers and frozen parameters behind."""
    adapter, base = demo["wider-base-claims-this-base"]
    model = load_base(base)
    before = model_state(model)
    with pytest.raises(RuntimeError, match="size mismatch"):
        quiet_peft(model, adapter)
    after = model_state(model)
    assert after["modules"] != before["modules"] and after["peft_config"]
    assert any(grad != after["params"][n][3] for n, (_, _, _, grad) in before["params"].items() if n in after["params"])


def test_a_loaded_adapter_with_errors_is_taken_off_again(demo: dict[str, Any], load_base: Loader) -> None:
    """The static rules ignored, PEFT loads the nested-prefix adapter and reports what it dropped."""
    adapter, base = demo["nested-prefix"]
    model = load_base(base)
    before = model_state(model)
    with pytest.raises(AdapterLoadError) as info:
        loraguard.load_adapter(model, adapter, ignore=["LG3", "LG5"])
    found = {f.code: f for f in info.value.report.findings}
    assert found["LG802"].severity is Severity.ERROR and found["LG802"].category == "prefix-mismatch"
    assert "8 tensor(s) of the adapter file reached no parameter" in found["LG802"].message
    assert "language_model.model.layers.0.self_attn.q_proj" in found["LG802"].message
    assert found["LG803"].severity is Severity.WARNING  # init_lora_weights true: the empty layers do nothing
    assert "zero lora_B" in found["LG803"].message
    assert not codes(info.value.report.findings) & {"LG304"}  # LG3 was ignored: these came from PEFT
    assert_same_state(before, model_state(model))


def test_on_error_warn_returns_the_model_and_warns(demo: dict[str, Any], load_base: Loader) -> None:
    adapter, base = demo["nested-prefix"]
    with pytest.warns(AdapterLoadWarning) as caught:
        peft_model = loraguard.load_adapter(load_base(base), adapter, on_error="warn")
    message = str(next(w.message for w in caught if isinstance(w.message, AdapterLoadWarning)))
    assert message.startswith(f"loraguard loaded adapter {adapter} onto loraguard/tiny-qwen2 despite")
    assert "LG304" in message and "LG802" in message
    assert list(peft_model.peft_config) == ["default"]


def test_missing_keys_with_random_init_are_errors(demo: dict[str, Any], load_base: Loader, tmp_path: Path) -> None:
    adapter, base = demo["nested-prefix"]
    copied = shutil.copytree(adapter, tmp_path / "nested-random")
    config = json.loads((copied / "adapter_config.json").read_text())
    config["init_lora_weights"] = False
    (copied / "adapter_config.json").write_text(json.dumps(config))
    report = guarded_load(load_base(base), copied, on_error="warn")
    lg803 = next(f for f in report.findings if f.code == "LG803")
    assert lg803.severity is Severity.ERROR and "random weights" in lg803.message


def test_strict_counts_warnings(demo: dict[str, Any], load_base: Loader, tmp_path: Path) -> None:
    adapter, base = demo["plain-qv"]
    named = shutil.copytree(adapter, tmp_path / "moderator-7b")  # a size hint the tiny base contradicts
    relaxed = guarded_load(load_base(base), named)
    assert relaxed.loaded and relaxed.verdict is Verdict.WARN and "LG505" in codes(relaxed.findings)
    model = load_base(base)
    before = model_state(model)
    with pytest.raises(AdapterLoadError, match=r"1 error\(s\) or warning\(s\) \(strict\)"):
        loraguard.load_adapter(model, named, strict=True)
    assert_same_state(before, model_state(model))


# ------------------------------------------------------------------ the canary


def test_the_canary_passes_a_healthy_adapter(probe_models: Any, load_base: Loader) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(probe_models.base)
    report = guarded_load(load_base(probe_models.base), probe_models.healthy, tokenizer=tok, canary=True)
    assert report.loaded and report.verdict is Verdict.PASS, report.findings
    c = report.canary
    assert c is not None and len(c.row_ids) == 8 and c.batch is None
    assert c.effect.mean_kl is not None and c.effect.mean_kl > 0.01
    assert c.adapted_stats.distinct == 8
    # the measurement switched adapters; the model is left as PEFT's load leaves it
    assert report.model.active_adapter == "default"
    assert not any(p.requires_grad for p in report.model.parameters())


def test_the_canary_refuses_a_degenerate_adapter(probe_models: Any, load_base: Loader) -> None:
    """The static check cannot see it; one prompt over the built-in rows gives every row the same answer."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(probe_models.base)
    model = load_base(probe_models.base)
    before = model_state(model)
    with pytest.raises(AdapterLoadError) as info:
        loraguard.load_adapter(model, probe_models.degenerate, tokenizer=tok, canary=True)
    report = info.value.report
    assert report.check.verdict is Verdict.PASS  # statically fine
    assert codes(info.value.findings) == {"LG602"}
    assert "predictions with the adapter are degenerate" in str(info.value)
    assert report.canary is not None and report.canary.adapted_stats.distinct == 1
    assert_same_state(before, model_state(model))


def test_the_canary_sees_an_adapter_without_effect(probe_models: Any, load_base: Loader) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(probe_models.base)
    report = guarded_load(
        load_base(probe_models.base), probe_models.noop, tokenizer=tok, canary=True, canary_samples=2, ignore=["LG4"]
    )
    assert not report.loaded and "LG601" in codes(report.findings, Severity.ERROR)
    assert report.canary is not None and len(report.canary.row_ids) == 2


# ------------------------------------------------------------------ a PeftModel gets a second adapter


def test_a_second_adapter_on_a_peft_model(demo: dict[str, Any], load_base: Loader) -> None:
    import torch

    healthy, base = demo["plain-qv"]
    peft_model = loraguard.load_adapter(load_base(base), healthy)
    reference = logits(peft_model)
    before = model_state(peft_model)
    # a failing second adapter: PEFT raises, the PeftModel and its first adapter are as they were
    wider = demo["wider-base-claims-this-base"][0]
    with pytest.raises(AdapterLoadError):
        loraguard.load_adapter(peft_model, wider, adapter_name="wide", on_error="warn")
    assert list(peft_model.peft_config) == ["default"]
    assert_same_state(before, model_state(peft_model))
    assert torch.equal(logits(peft_model), reference)
    # a healthy second one is added, not activated (as PEFT's load_adapter)
    same = loraguard.load_adapter(peft_model, demo["dora"][0], adapter_name="dora")
    assert same is peft_model and list(peft_model.peft_config) == ["default", "dora"]
    assert peft_model.active_adapter == "default"
    with pytest.raises(InputError, match="'dora' is already on this model"):
        loraguard.load_adapter(peft_model, healthy, adapter_name="dora")


# ------------------------------------------------------------------ arguments that cannot work


def test_bad_arguments_are_input_errors(demo: dict[str, Any], load_base: Loader) -> None:
    adapter, base = demo["plain-qv"]
    model = load_base(base)
    with pytest.raises(InputError, match="pass the model itself"):
        loraguard.load_adapter(str(base), adapter)
    with pytest.raises(InputError, match="canary=True needs the model's tokenizer"):
        loraguard.load_adapter(model, adapter, canary=True)
    with pytest.raises(InputError, match="a file, not a folder"):
        loraguard.load_adapter(model, adapter / "adapter_model.safetensors")
    with pytest.raises(InputError, match="on_error='ignore'"):
        loraguard.load_adapter(model, adapter, on_error="ignore")  # type: ignore[arg-type]
    assert not hasattr(model, "peft_config")


def test_a_deep_copy_is_not_needed(demo: dict[str, Any], load_base: Loader) -> None:
    """Refusing works on the user's own object: nothing is copied, the same parameter objects stay."""
    adapter, _ = demo["case-study-at-scale"]
    model = load_base(demo["plain-qv"][1])
    params = {n: id(p) for n, p in model.named_parameters()}
    shadow = copy.copy(params)
    with pytest.raises(AdapterLoadError):
        loraguard.load_adapter(model, adapter, on_error="warn")
    assert {n: id(p) for n, p in model.named_parameters()} == shadow
