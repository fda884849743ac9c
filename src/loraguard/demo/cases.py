"""The adapters `loraguard demo` checks: three healthy ones and five broken the ways the case study's were.

Each is built with real PEFT on a tiny Qwen2 base (the case study at scale: Qwen3-4B-shaped tensors
written with numpy, beside a Qwen2.5-1.5B-Instruct base that is only a `config.json`), under
`out/cases/<name>`, bases under `out/bases/<name>`. The test suite's fault corpus (every check
rule, healthy and broken) lives in `tests/fault_cases`, not here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CASES", "BuiltCase", "DemoCase", "build_cases"]

_TINY = "tiny-qwen2"
_SEQ_CLS = "tiny-qwen2-seqcls"
_MID = "qwen2.5-mid-instruct"  # config only: Qwen/Qwen2.5-1.5B-Instruct's numbers
_NAMES = {_TINY: "loraguard/tiny-qwen2", _SEQ_CLS: "loraguard/tiny-qwen2-seqcls"}


@dataclass(frozen=True)
class DemoCase:
    name: str
    description: str
    expected: frozenset[str]
    """Categories `check` must report (empty for a healthy adapter)."""
    build: Callable[[Path, _Bases], Path]
    base: str = _TINY


@dataclass(frozen=True)
class BuiltCase:
    case: DemoCase
    adapter: Path
    base: Path


class _Bases:
    """The demo's base folders and in-memory models, each built on first use."""

    def __init__(self, root: Path) -> None:
        from loraguard.demo.tiny import train_tokenizer

        self.root = root
        self.tokenizer = train_tokenizer()
        self._models: dict[str, Any] = {}

    def path(self, key: str) -> Path:
        from loraguard.demo.tiny import build_tiny_base

        out = self.root / key
        if not (out / "config.json").is_file():
            if key == _MID:
                out.mkdir(parents=True, exist_ok=True)
                (out / "config.json").write_text(json.dumps(_qwen25_15b_instruct(), indent=2) + "\n")
            else:
                task = "SEQ_CLS" if key == _SEQ_CLS else "CAUSAL_LM"
                build_tiny_base(out, tokenizer=self.tokenizer, name=_NAMES[key], task=task)
        return out

    def model(self, key: str) -> Any:
        """A fresh copy of base `key` (PEFT wraps models in place); `wide` is a hidden-96 twin of the tiny base."""
        import copy

        if key not in self._models:
            import torch
            from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

            from loraguard.demo.tiny import tiny_qwen2_config

            if key == "wide":
                torch.manual_seed(3)
                cfg = tiny_qwen2_config(
                    vocab_size=len(self.tokenizer), hidden_size=96, num_heads=6, num_kv_heads=3, intermediate_size=192
                )
                self._models[key] = AutoModelForCausalLM.from_config(cfg)
            else:
                loader = AutoModelForSequenceClassification if key == _SEQ_CLS else AutoModelForCausalLM
                self._models[key] = loader.from_pretrained(self.path(key))
        return copy.deepcopy(self._models[key])


def _lora(d: Path, bases: _Bases, key: str = _TINY, **lora_kwargs: Any) -> Path:
    from loraguard.demo.tiny import save_peft

    return save_peft(bases.model(key), d, claim=_NAMES.get(key, _NAMES[_TINY]), **lora_kwargs)


def _nested_prefix(d: Path, bases: _Bases) -> Path:
    from loraguard.demo.tiny import read_tensors, write_tensors

    _lora(d, bases)
    old, new = "base_model.model.model.layers.", "base_model.model.language_model.model.layers."
    write_tensors(d, {k.replace(old, new): v for k, v in read_tensors(d).items()})
    return d


def _nan_weight(d: Path, bases: _Bases) -> Path:
    from loraguard.demo.tiny import read_tensors, write_tensors

    _lora(d, bases)
    tensors = read_tensors(d)
    tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"][0, 0] = float("nan")
    write_tensors(d, tensors)
    return d


def _case_study(d: Path, bases: _Bases) -> Path:
    """Qwen3-4B-shaped q/v LoRA (rank 2, float16) in a folder named like the case study's, claiming the
    Qwen2.5-1.5B-Instruct it was never trained on."""
    import numpy as np
    from peft import LoraConfig

    from loraguard.demo.tiny import write_tensors

    out = d / "reddit-4b-think"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    tensors = {}
    for layer in range(36):  # Qwen3-4B: hidden 2560, 32 heads × 128, 8 kv heads × 128
        for module, width in (("q_proj", 4096), ("v_proj", 1024)):
            stem = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{stem}.lora_A.weight"] = (rng.standard_normal((2, 2560)) * 0.02).astype(np.float16)
            tensors[f"{stem}.lora_B.weight"] = (rng.standard_normal((width, 2)) * 0.02).astype(np.float16)
    write_tensors(out, tensors)
    config = LoraConfig(
        r=2,
        lora_alpha=4,
        target_modules=["q_proj", "v_proj"],
        task_type="CAUSAL_LM",
        base_model_name_or_path="Qwen/Qwen2.5-1.5B-Instruct",
        inference_mode=True,
    )
    config.save_pretrained(str(out))
    return out


def _qwen25_15b_instruct() -> dict[str, Any]:
    """Qwen/Qwen2.5-1.5B-Instruct's `config.json` (the numbers `check` reads)."""
    return {
        "_name_or_path": "Qwen/Qwen2.5-1.5B-Instruct",
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "hidden_act": "silu",
        "hidden_size": 1536,
        "initializer_range": 0.02,
        "intermediate_size": 8960,
        "max_position_embeddings": 32768,
        "max_window_layers": 21,
        "model_type": "qwen2",
        "num_attention_heads": 12,
        "num_hidden_layers": 28,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": 151936,
    }


def _c(name: str, description: str, expected: set[str], build: Callable[[Path, _Bases], Path], **kw: Any) -> DemoCase:
    return DemoCase(name, description, frozenset(expected), build, **kw)


CASES: tuple[DemoCase, ...] = (
    _c("plain-qv", "LoRA r=8 on q_proj/v_proj, the PEFT defaults", set(), _lora),
    _c("dora", "DoRA (use_dora): lora_magnitude_vector beside A and B", set(), lambda d, b: _lora(d, b, use_dora=True)),
    _c(
        "seq-cls-with-head",
        "SEQ_CLS adapter with its score head saved (modules_to_save)",
        set(),
        lambda d, b: _lora(d, b, _SEQ_CLS, task_type="SEQ_CLS"),
        base=_SEQ_CLS,
    ),
    _c(
        "wider-base-claims-this-base",
        "trained on a Qwen2 with hidden 96, config claims this hidden-64 base",
        {"shape-mismatch", "claimed-base-mismatch"},
        lambda d, b: _lora(d, b, "wide"),
    ),
    _c(
        "zero-init-untrained",
        "PEFT default init never trained: every lora_B is zero",
        {"zero-adapter"},
        lambda d, b: _lora(d, b, init_lora_weights=True),
    ),
    _c(
        "nested-prefix",
        "keys under base_model.model.language_model.model.layers (a VL wrapper's names)",
        {"prefix-mismatch"},
        _nested_prefix,
    ),
    _c("nan-weight", "one lora_A element is NaN", {"non-finite-weights"}, _nan_weight),
    _c(
        "case-study-at-scale",
        'Qwen3-4B-shaped "reddit-4b-think" adapter claiming Qwen2.5-1.5B-Instruct',
        {"shape-mismatch", "layer-mismatch", "claimed-base-mismatch", "name-hint-conflict"},
        _case_study,
        base=_MID,
    ),
)


def build_cases(out: Path) -> dict[str, BuiltCase]:
    """Build every demo case under `out/cases`, their bases under `out/bases`."""
    bases = _Bases(out / "bases")
    built = {}
    for case in CASES:
        folder = out / "cases" / case.name
        folder.mkdir(parents=True, exist_ok=True)
        built[case.name] = BuiltCase(case, case.build(folder, bases), bases.path(case.base))
    return built
