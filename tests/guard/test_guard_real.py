"""The guarded load on a real model: SmolLM2-135M-Instruct from loraguard's model cache.

The model is a local conversion (`~/.cache/loraguard/models/smollm2-135m-instruct/hf/`, or under
`$LORAGUARD_CACHE`); without it these tests skip. Adapters are written with numpy in PEFT's format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loraguard
from loraguard.basemodel.skeleton import cache_dir
from loraguard.errors import AdapterLoadError
from loraguard.findings import Severity
from loraguard.guard import guarded_load

pytestmark = pytest.mark.slow

CLAIM = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def smollm(one_torch_thread: None) -> tuple[Any, Any]:
    folder = cache_dir() / "models" / "smollm2-135m-instruct" / "hf"
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        pytest.skip(
            f"the real SmolLM2-135M-Instruct is not in loraguard's model cache ({folder} has no config.json and "
            "model.safetensors); it is converted there from a local GGUF, never downloaded from the Hub"
        )
    pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from loraguard.demo.tiny import quiet

    with quiet():
        return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def write_adapter(out: Path, *, hidden: int, kv: int, layers: int, scale: float, claim: str = CLAIM) -> Path:
    """A rank-4 q/v LoRA for a Llama-shaped model of `hidden` width (kv = its v_proj width)."""
    from peft import LoraConfig

    from loraguard.demo.tiny import write_tensors

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    tensors = {}
    for layer in range(layers):
        for module, width in (("q_proj", hidden), ("v_proj", kv)):
            stem = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{stem}.lora_A.weight"] = (rng.standard_normal((4, hidden)) * scale).astype(np.float32)
            tensors[f"{stem}.lora_B.weight"] = (rng.standard_normal((width, 4)) * scale).astype(np.float32)
    write_tensors(out, tensors)
    LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", base_model_name_or_path=claim
    ).save_pretrained(str(out))
    return out


def fingerprint(model: Any) -> list[tuple[Any, ...]]:
    """Module classes, and every parameter's storage, in-place version counter and requires_grad (no copies)."""
    modules = [(name, type(m).__name__) for name, m in model.named_modules()]
    params = [(n, p.data_ptr(), p._version, p.requires_grad) for n, p in model.named_parameters()]
    return [*modules, *params, ("peft_config", hasattr(model, "peft_config"))]


def test_an_adapter_for_a_wider_base_claiming_this_one_is_refused(smollm: tuple[Any, Any], tmp_path: Path) -> None:
    """The case study on a real model: SmolLM2-360M-shaped tensors, a config claiming SmolLM2-135M-Instruct."""
    model, _ = smollm
    adapter = write_adapter(tmp_path / "smol-360m-ft", hidden=960, kv=320, layers=32, scale=0.05)
    before = fingerprint(model)
    with pytest.raises(AdapterLoadError) as info:
        loraguard.load_adapter(model, adapter)
    message = str(info.value)
    assert "in_features 960 in the adapter, 576 in" in message
    assert "HuggingFaceTB/SmolLM2-360M" in message and "LG501 claimed-base-mismatch" in message
    assert {"LG301", "LG302", "LG501"} <= {f.code for f in info.value.findings}
    assert fingerprint(model) == before
    # and when PEFT is let through (on_error="warn"), its size-mismatch failure is undone as well
    with pytest.raises(AdapterLoadError, match="the model was put back as it was"):
        loraguard.load_adapter(model, adapter, on_error="warn")
    assert fingerprint(model) == before


def test_the_case_study_adapter_is_refused(smollm: tuple[Any, Any], demo: dict[str, Any]) -> None:
    model, _ = smollm
    with pytest.raises(AdapterLoadError, match=r"in_features 2560 in the adapter, 576 in .* Qwen/Qwen3-4B"):
        loraguard.load_adapter(model, demo["case-study-at-scale"][0])


def test_a_fitting_adapter_loads_and_the_canary_sees_its_effect(smollm: tuple[Any, Any], tmp_path: Path) -> None:
    import copy

    model, tok = smollm
    adapter = write_adapter(tmp_path / "fits", hidden=576, kv=192, layers=30, scale=0.1)
    report = guarded_load(copy.deepcopy(model), adapter, tokenizer=tok, canary=True, canary_samples=2)
    assert report.loaded and not report.errors, report.findings
    assert report.outcome is not None and len(report.outcome.targeted) == 60
    assert report.canary is not None and report.canary.effect.mean_kl is not None
    assert report.canary.effect.mean_kl > 1e-3
    assert not [f for f in report.findings if f.severity is Severity.ERROR]
