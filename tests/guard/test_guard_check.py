"""`loraguard.check(adapter, base=...)` with a model in memory or a config, and the live model's spec."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import loraguard
from loraguard.errors import InputError

Loader = Callable[[Path], Any]


def codes(report: Any) -> list[tuple[str, str]]:
    return sorted((f.code, f.severity.value) for f in report.findings)


@pytest.fixture(scope="module")
def config_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from fault_cases import build_all, case_named

    built = build_all(
        tmp_path_factory.mktemp("guard-check"),
        [case_named(n) for n in ("plain-qv", "wider-base-claims-this-base", "extra-layers")],
        torch=False,
    )
    return {name: (b.adapter, b.base) for name, b in built.items()}


def test_a_config_dict_checks_like_its_folder(config_cases: dict[str, Any]) -> None:
    for adapter, base in config_cases.values():
        config = json.loads((base / "config.json").read_text())
        by_dict = loraguard.check(adapter, base=config)
        by_folder = loraguard.check(adapter, base)
        assert codes(by_dict) == codes(by_folder)
        assert by_dict.base is not None and by_dict.base["name"] == by_folder.base["name"]  # type: ignore[index]
    wider = loraguard.check(config_cases["wider-base-claims-this-base"][0], base=config)
    assert wider.verdict.value == "fail" and {"LG301"} <= {f.code for f in wider.findings}


def test_a_transformers_config_object_checks_like_its_folder(config_cases: dict[str, Any]) -> None:
    transformers = pytest.importorskip("transformers")
    adapter, base = config_cases["extra-layers"]
    config = transformers.AutoConfig.from_pretrained(base)
    assert codes(loraguard.check(adapter, base=config)) == codes(loraguard.check(adapter, base))


def test_a_base_of_another_kind_is_an_input_error(config_cases: dict[str, Any]) -> None:
    adapter, _ = config_cases["plain-qv"]
    with pytest.raises(InputError, match="base of type int: pass a model, a transformers config"):
        loraguard.check(adapter, base=42)


def test_the_static_path_stays_torch_free(config_cases: dict[str, Any]) -> None:
    adapter, base = config_cases["wider-base-claims-this-base"]
    code = (
        "import json, sys, loraguard\n"
        f"config = json.load(open({str(base / 'config.json')!r}))\n"
        f"r = loraguard.check({str(adapter)!r}, base=config); s = loraguard.check({str(adapter)!r}, {str(base)!r})\n"
        "print(r.verdict.value, s.verdict.value, [m for m in ('torch', 'transformers', 'peft') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["fail", "fail", "[]"]


# ------------------------------------------------------------------ live models (torch)


@pytest.mark.slow
def test_a_live_model_checks_like_its_folder(demo: dict[str, Any], load_base: Loader) -> None:
    models: dict[Path, Any] = {}
    for name, (adapter, base) in demo.items():
        model = models.setdefault(base, load_base(base)) if (base / "model.safetensors").exists() else None
        if model is None:
            continue  # a config-only base (the case study's Qwen2.5-1.5B): nothing to load
        by_model = loraguard.check(adapter, base=model)
        assert codes(by_model) == codes(loraguard.check(adapter, base)), name
        assert by_model.base is not None and by_model.base["source"] == "live"


@pytest.mark.slow
def test_the_live_spec_is_what_the_model_holds(demo: dict[str, Any], load_base: Loader) -> None:
    import torch

    from loraguard.guard.live import live_base

    adapter, base = demo["plain-qv"]
    model = load_base(base)
    plain = live_base(model)
    assert plain.differences() == ((), (), ())
    assert dict(plain.spec.modules) == dict(plain.from_config.modules)  # type: ignore[union-attr]
    assert plain.spec.param_count == plain.from_config.param_count  # type: ignore[union-attr]
    # a PeftModel lists the modules it wraps, not the adapters' own layers
    wrapped = loraguard.load_adapter(load_base(base), adapter)
    assert dict(live_base(wrapped).spec.modules) == dict(plain.spec.modules)
    # a model edited after loading: the live modules win, and the difference is reported
    model.lm_head = torch.nn.Linear(64, 7, bias=False)
    edited = live_base(model)
    assert edited.differences()[2] == ("lm_head: (64, 941) -> (64, 7)",)
    assert edited.spec.modules["lm_head"].out_features == 7
    from loraguard.guard import guarded_load

    report = guarded_load(model, adapter)
    lg805 = next(f for f in report.findings if f.code == "LG805")
    assert lg805.severity.value == "info" and "lm_head: (64, 941) -> (64, 7)" in lg805.message
    assert report.loaded


@pytest.mark.slow
def test_a_quantized_style_linear_counts_as_linear(demo: dict[str, Any], load_base: Loader) -> None:
    """GPTQ/AWQ layers are no nn.Linear but have in/out_features; PEFT adapts them, so the check lists them."""
    import torch

    from loraguard.guard.live import live_base

    class PackedLinear(torch.nn.Module):
        def __init__(self, inner: torch.nn.Linear) -> None:
            super().__init__()
            self.in_features, self.out_features = inner.in_features, inner.out_features
            self.register_buffer("qweight", torch.zeros(inner.out_features, inner.in_features // 8, dtype=torch.int32))

    adapter, base = demo["plain-qv"]
    model = load_base(base)
    layer = model.model.layers[0].self_attn
    layer.q_proj = PackedLinear(layer.q_proj)
    spec = live_base(model).spec
    assert spec.modules["model.layers.0.self_attn.q_proj"].in_features == 64
    assert loraguard.check(adapter, base=model).verdict.value == "pass"
