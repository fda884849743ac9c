"""families.py: module names and shapes from config.json, checked against real transformers models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loraguard.basemodel.families import SUPPORTED_MODEL_TYPES, param_count, spec_from_config
from loraguard.basemodel.spec import ModuleShape, layer_relative
from loraguard.errors import BaseModelResolutionError

SMALL = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "vocab_size": 300,
}
GPT2_SMALL = {"n_embd": 64, "n_head": 4, "n_layer": 2, "vocab_size": 300}

# (model_type, constructor kwargs): every family, with head_dim / GQA / bias / tying variations.
TINY_CASES: list[tuple[str, dict[str, Any]]] = [
    ("llama", SMALL),
    ("llama", {**SMALL, "head_dim": 32, "attention_bias": True, "mlp_bias": True, "tie_word_embeddings": True}),
    ("mistral", {**SMALL, "head_dim": 8, "attention_bias": True}),  # Mistral ignores attention_bias
    ("qwen2", SMALL),
    ("qwen2", {**SMALL, "num_key_value_heads": 4, "tie_word_embeddings": True}),
    ("qwen3", {**SMALL, "head_dim": 32}),
    ("qwen3", {**SMALL, "attention_bias": True}),
    ("gemma", {**SMALL, "num_key_value_heads": 1, "attention_bias": True}),
    ("phi3", {**SMALL, "pad_token_id": 0, "attention_bias": True}),  # Phi-3 ignores it
    ("gemma2", {**SMALL, "head_dim": 16}),
    ("gemma3_text", SMALL),
    ("phi3", {**SMALL, "pad_token_id": 0}),
    ("phi3", {**SMALL, "pad_token_id": 0, "num_key_value_heads": 4}),
    ("phi", SMALL),
    ("phi", {**SMALL, "qk_layernorm": True, "tie_word_embeddings": True}),
    ("gpt2", GPT2_SMALL),
    ("gpt2", {**GPT2_SMALL, "n_inner": 100, "n_positions": 50}),
]


def _case_id(case: tuple[str, dict[str, Any]]) -> str:
    model_type, kwargs = case
    return model_type + "-" + "-".join(f"{k}{v}" for k, v in kwargs.items() if k not in SMALL and k not in GPT2_SMALL)


def _assert_same_as_transformers(config_dict: dict[str, Any], config_obj: Any, task: str) -> None:
    from basemodel_helpers import build_meta_model, leaf_shapes, real_param_count

    model = build_meta_model(config_obj, task)
    spec = spec_from_config(config_dict, name="tiny", task=task)
    assert spec is not None
    assert spec.architecture == type(model).__name__
    real = leaf_shapes(model)
    assert set(spec.modules) == set(real), set(real) ^ set(spec.modules)
    assert dict(spec.modules) == real
    assert spec.param_count == real_param_count(model)  # exact, not just within the 2% budget
    # Layer prefixes are real containers of numbered blocks.
    (prefix,) = spec.layer_prefixes
    assert any(name.startswith(prefix + ".0.") for name in real)
    assert spec.num_layers == len(model.get_submodule(prefix))


@pytest.mark.slow
@pytest.mark.parametrize("case", TINY_CASES, ids=_case_id)
@pytest.mark.parametrize("task", ["CAUSAL_LM", "SEQ_CLS", "FEATURE_EXTRACTION"])
def test_tiny_config_matches_transformers_modules(case: tuple[str, dict[str, Any]], task: str) -> None:
    from transformers import AutoConfig

    model_type, kwargs = case
    config = AutoConfig.for_model(model_type, **kwargs, num_labels=3)
    _assert_same_as_transformers(config.to_dict(), config, task)


@pytest.mark.slow
@pytest.mark.parametrize(
    "model_type",
    ["llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3", "phi"],
)
def test_minimal_config_uses_the_config_class_defaults(model_type: str) -> None:
    """A config.json without head_dim / num_key_value_heads / tie_word_embeddings: transformers' defaults."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    minimal = {
        "model_type": model_type,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_attention_heads": 4,
        "num_hidden_layers": 3,
        "vocab_size": 320,
        "pad_token_id": 0,
    }
    config = CONFIG_MAPPING[model_type].from_dict(minimal)
    _assert_same_as_transformers(minimal, config, "CAUSAL_LM")


@pytest.mark.slow
@pytest.mark.shared
def test_every_supported_real_base_config_matches_transformers_exactly(shared_dir: Path) -> None:
    from basemodel_helpers import build_meta_model, leaf_shapes, real_param_count
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    checked = 0
    for path in sorted((shared_dir / "corpus" / "base-configs").glob("*/config.json")):
        config = json.loads(path.read_text())
        spec = spec_from_config(config, name=path.parent.name, task="CAUSAL_LM")
        if spec is None:
            continue
        model = build_meta_model(CONFIG_MAPPING[config["model_type"]].from_dict(config), "CAUSAL_LM")
        assert dict(spec.modules) == leaf_shapes(model), path
        assert spec.param_count == real_param_count(model), path
        checked += 1
    assert checked >= 12


def test_qwen3_head_dim_is_independent_of_hidden_size() -> None:
    config = {
        "model_type": "qwen3",
        "hidden_size": 2560,
        "intermediate_size": 9728,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    }
    spec = spec_from_config(config, name="Qwen/Qwen3-4B")
    assert spec is not None
    assert spec.modules["model.layers.0.self_attn.q_proj"] == ModuleShape(2560, 4096)
    assert spec.modules["model.layers.35.self_attn.v_proj"] == ModuleShape(2560, 1024)
    assert spec.modules["model.layers.0.self_attn.o_proj"] == ModuleShape(4096, 2560)
    assert spec.modules["model.embed_tokens"] == ModuleShape(151936, 2560, "embedding")
    assert spec.modules["lm_head"] == ModuleShape(2560, 151936)  # a module even when tied
    assert "model.layers.36.self_attn.q_proj" not in spec.modules
    assert not any("norm" in name for name in spec.modules)
    assert spec.param_count == pytest.approx(4.02e9, rel=0.01)
    assert spec.layer_prefixes == ("model.layers",)
    assert spec.task == "CAUSAL_LM" and spec.source == "config"


def test_gemma_without_head_dim_uses_256_and_ties_embeddings() -> None:
    base = {
        "model_type": "gemma",
        "hidden_size": 2048,
        "intermediate_size": 16384,
        "num_hidden_layers": 18,
        "num_attention_heads": 8,
        "num_key_value_heads": 1,
        "vocab_size": 256000,
    }
    spec = spec_from_config(base, name="gemma")
    assert spec is not None
    assert spec.modules["model.layers.0.self_attn.q_proj"] == ModuleShape(2048, 2048)
    assert spec.modules["model.layers.0.self_attn.k_proj"] == ModuleShape(2048, 256)
    untied = param_count({**base, "tie_word_embeddings": False})
    assert untied is not None
    assert untied - spec.param_count == 256000 * 2048


def test_phi3_fused_projections() -> None:
    config = {
        "model_type": "phi3",
        "hidden_size": 5120,
        "intermediate_size": 17920,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
        "num_key_value_heads": 10,
        "vocab_size": 100352,
    }
    spec = spec_from_config(config, name="microsoft/phi-4")
    assert spec is not None
    sig = spec.layer_signature()
    assert sig["self_attn.qkv_proj"] == ModuleShape(5120, (40 + 2 * 10) * 128)
    assert sig["mlp.gate_up_proj"] == ModuleShape(5120, 2 * 17920)
    assert sig["mlp.down_proj"] == ModuleShape(17920, 5120)
    assert "self_attn.q_proj" not in sig
    assert spec.param_count == pytest.approx(14.66e9, rel=0.01)


def test_gpt2_conv1d_shapes_and_names() -> None:
    spec = spec_from_config({"model_type": "gpt2", "n_embd": 1024, "n_layer": 24, "n_head": 16}, name="gpt2-medium")
    assert spec is not None
    assert spec.architecture == "GPT2LMHeadModel"
    assert spec.layer_prefixes == ("transformer.h",)
    assert spec.modules["transformer.h.23.attn.c_attn"] == ModuleShape(1024, 3072, "conv1d")
    assert spec.modules["transformer.h.0.mlp.c_proj"] == ModuleShape(4096, 1024, "conv1d")
    assert spec.modules["transformer.wpe"] == ModuleShape(1024, 1024, "embedding")
    assert spec.vocab_size == 50257
    assert spec.param_count == pytest.approx(354.8e6, rel=0.01)
    assert layer_relative("transformer.h.7.attn.c_attn", spec.layer_prefixes) == "attn.c_attn"


def test_seq_cls_has_a_score_head_sized_by_id2label_and_no_lm_head() -> None:
    config = {**SMALL, "model_type": "llama", "id2label": {"0": "a", "1": "b", "2": "c", "3": "d"}}
    spec = spec_from_config(config, name="x", task="SEQ_CLS")
    assert spec is not None
    assert spec.architecture == "LlamaForSequenceClassification"
    assert spec.modules["score"] == ModuleShape(64, 4)
    assert "lm_head" not in spec.modules
    no_labels = spec_from_config({**SMALL, "model_type": "gpt2", **GPT2_SMALL}, name="x", task="SEQ_CLS")
    assert no_labels is not None and no_labels.modules["score"] == ModuleShape(64, 2)


def test_task_none_follows_architectures() -> None:
    seq = spec_from_config(
        {**SMALL, "model_type": "qwen2", "architectures": ["Qwen2ForSequenceClassification"]}, name="x", task=None
    )
    assert seq is not None and "score" in seq.modules and seq.task == ""
    causal = spec_from_config({**SMALL, "model_type": "qwen2"}, name="x", task=None)
    assert causal is not None and "lm_head" in causal.modules
    # An architecture this module does not model: the skeleton decides.
    assert (
        spec_from_config(
            {**SMALL, "model_type": "qwen2", "architectures": ["Qwen2ForTokenClassification"]}, name="x", task=None
        )
        is None
    )


def test_unsupported_model_types_and_tasks_return_none() -> None:
    assert spec_from_config({"model_type": "bert", "hidden_size": 768}, name="bert") is None
    assert spec_from_config({"model_type": "gemma3", "text_config": {}}, name="gemma3") is None
    assert spec_from_config({**SMALL}, name="no model_type") is None
    assert spec_from_config({**SMALL, "model_type": "llama"}, name="x", task="SEQ_2_SEQ_LM") is None
    assert param_count({"model_type": "t5"}) is None
    assert {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3", "phi", "gpt2"} <= (
        SUPPORTED_MODEL_TYPES
    )


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"hidden_size": None}, "'hidden_size'"),
        ({"num_hidden_layers": "32"}, "'num_hidden_layers' is '32'"),
        ({"num_attention_heads": 0}, "0 attention heads"),
    ],
)
def test_broken_supported_config_raises_a_clear_error(patch: dict[str, Any], fragment: str) -> None:
    config = {**SMALL, "model_type": "mistral", **patch}
    with pytest.raises(BaseModelResolutionError, match=r"config\.json of /x/config\.json") as info:
        spec_from_config(config, name="x", path="/x/config.json")
    assert fragment in str(info.value)


def test_explicit_null_kv_heads_means_multi_head_attention() -> None:
    """Phi-2's config.json has `"num_key_value_heads": null`."""
    config = {
        "model_type": "phi",
        "hidden_size": 2560,
        "intermediate_size": 10240,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": None,
        "vocab_size": 51200,
    }
    spec = spec_from_config(config, name="microsoft/phi-2")
    assert spec is not None
    assert spec.modules["model.layers.0.self_attn.k_proj"] == ModuleShape(2560, 2560)
    assert spec.modules["model.layers.0.self_attn.dense"] == ModuleShape(2560, 2560)
    assert spec.param_count == pytest.approx(2.78e9, rel=0.01)
