"""infer.py: which catalog bases an adapter's shapes fit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loraguard.basemodel.infer import describe_dims, infer_bases

QWEN3_4B = {"self_attn.q_proj": (2560, 4096), "self_attn.v_proj": (2560, 1024)}
QWEN25_1_5B = {"self_attn.q_proj": (1536, 1536), "self_attn.v_proj": (1536, 256)}


def _names(results: list) -> list[str]:
    return [r.name for r in results]


def test_qwen3_4b_signature() -> None:
    results = infer_bases(QWEN3_4B, max_layer_index=35)
    assert set(_names(results)) == {"Qwen/Qwen3-4B", "Qwen/Qwen3-4B-Base", "Qwen/Qwen3-4B-Instruct-2507"}
    assert all(r.exact_layers and r.num_layers == 36 and r.model_type == "qwen3" for r in results)
    assert all(r.matched_modules == 2 for r in results)
    assert results[0].to_dict()["params_b"] == 4.02


def test_qwen25_1_5b_signature() -> None:
    names = _names(infer_bases(QWEN25_1_5B, max_layer_index=27))
    assert {"Qwen/Qwen2.5-1.5B", "Qwen/Qwen2.5-1.5B-Instruct", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"} <= set(
        names
    )
    assert not any("Qwen3" in name or "0.5B" in name for name in names)
    # q/v do not tell tied from untied models; the embedding's presence does not either: both have one.
    with_head = infer_bases({**QWEN25_1_5B, "lm_head": (1536, 151936)}, max_layer_index=27)
    assert "Qwen/Qwen2.5-1.5B-Instruct" in _names(with_head)


def test_layer_count_filters_and_ranks() -> None:
    gpt2 = {"attn.c_attn": (768, 2304)}
    deep = infer_bases(gpt2, max_layer_index=11)
    assert _names(deep) == ["microsoft/DialoGPT-small", "openai-community/gpt2"]  # DialoGPT is GPT-2 shaped
    shallow = infer_bases(gpt2, max_layer_index=5)
    # exact layer count first
    assert _names(shallow) == ["distilbert/distilgpt2", "microsoft/DialoGPT-small", "openai-community/gpt2"]
    assert [r.exact_layers for r in shallow] == [True, False, False]
    unknown_depth = infer_bases(gpt2, max_layer_index=None)
    assert set(_names(unknown_depth)) == {"distilbert/distilgpt2", "microsoft/DialoGPT-small", "openai-community/gpt2"}
    assert not any(r.exact_layers for r in unknown_depth)
    assert infer_bases(gpt2, max_layer_index=12) == []  # 13 layers: no catalog gpt2 is that deep


def test_vocab_and_every_module_must_fit() -> None:
    llama_8b = {"self_attn.q_proj": (4096, 4096), "self_attn.k_proj": (4096, 1024), "mlp.up_proj": (4096, 14336)}
    names = set(_names(infer_bases(llama_8b, max_layer_index=31)))
    assert {"meta-llama/Llama-3.1-8B", "mistralai/Mistral-7B-v0.1", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"} <= names
    only_llama3 = set(_names(infer_bases(llama_8b, max_layer_index=31, vocab_size=128256)))
    assert "mistralai/Mistral-7B-v0.1" not in only_llama3 and "meta-llama/Llama-3.1-8B-Instruct" in only_llama3
    assert infer_bases({**llama_8b, "mlp.down_proj": (11008, 4096)}, max_layer_index=31) == []
    assert infer_bases({**llama_8b, "self_attn.nonexistent": (4096, 4096)}, max_layer_index=31) == []
    assert infer_bases({}, max_layer_index=3) == []


def test_seq_cls_head_matches_on_hidden_size_only() -> None:
    sig = {**QWEN3_4B, "score": (2560, 7)}
    assert "Qwen/Qwen3-4B" in _names(infer_bases(sig, max_layer_index=35, task="SEQ_CLS"))
    assert infer_bases({**QWEN3_4B, "score": (2048, 7)}, max_layer_index=35, task="SEQ_CLS") == []


def test_fused_phi3_modules() -> None:
    sig = {"self_attn.qkv_proj": (3072, 9216), "mlp.gate_up_proj": (3072, 16384)}
    names = _names(infer_bases(sig, max_layer_index=31))
    assert names == [
        "microsoft/Phi-3-mini-128k-instruct",
        "microsoft/Phi-3-mini-4k-instruct",
        "microsoft/Phi-3.5-mini-instruct",
    ]


def test_inference_is_fast() -> None:
    infer_bases(QWEN3_4B, max_layer_index=35)  # warm the per-entry signatures
    calls = 2000
    start = time.perf_counter()
    for i in range(calls):
        infer_bases(QWEN25_1_5B if i % 2 else QWEN3_4B, max_layer_index=27 + i % 9)
    assert calls / (time.perf_counter() - start) >= 1000


def test_describe_dims() -> None:
    dims = describe_dims({**QWEN3_4B, "self_attn.o_proj": (4096, 2560), "mlp.down_proj": (9728, 2560)})
    assert dims == {"hidden_size": 2560, "q_width": 4096, "kv_width": 1024, "mlp_width": 9728}
    bert = describe_dims(
        {
            "attention.self.query": (768, 768),
            "attention.output.dense": (768, 768),
            "intermediate.dense": (768, 3072),
            "output.dense": (3072, 768),
        }
    )
    assert bert == {"hidden_size": 768, "q_width": 768, "mlp_width": 3072}
    fused = describe_dims({"attn.c_attn": (768, 2304), "mlp.gate_up_proj": (768, 6144), "lm_head": (768, 50257)})
    assert fused == {"hidden_size": 768, "fused_qkv_width": 2304, "mlp_width": 3072, "vocab_size": 50257}
    mixed = describe_dims({"self_attn.k_proj": (896, 128), "self_attn.v_proj": (896, 256)})
    assert mixed["kv_width"] == [128, 256]
    assert describe_dims({}) == {}


@pytest.mark.shared
@pytest.mark.parametrize(
    ("adapter", "expected_first", "also"),
    [
        ("qwen2.5-0.5b-instruct-qv", "Qwen/Qwen2-0.5B", {"Qwen/Qwen2.5-0.5B-Instruct"}),
        ("llama3.2-1b-qv-r8", "meta-llama/Llama-3.2-1B", {"meta-llama/Llama-3.2-1B-Instruct"}),
        # SmolLM-360M-Instruct (SmolLM 1) has SmolLM2-360M's shapes and sorts first by name
        ("smollm2-360m-qv-r8", "HuggingFaceTB/SmolLM-360M-Instruct", {"HuggingFaceTB/SmolLM2-360M-Instruct"}),
        ("smollm2-360m-nested-prefix-nullbase", "HuggingFaceTB/SmolLM-360M-Instruct", {"HuggingFaceTB/SmolLM2-360M"}),
        ("gemma-2b-it-nested-prefix-bf16", "google/gemma-2b", {"google/gemma-2b-it"}),
        ("gemma3-270m-it-qkvo-r4", "google/gemma-3-270m", {"google/gemma-3-270m-it"}),
        ("gpt2-medium-cattn", "microsoft/DialoGPT-medium", {"openai-community/gpt2-medium"}),
        ("distilgpt2-cattn", "distilbert/distilgpt2", {"openai-community/gpt2"}),
        ("gpt2-tigrinya", "microsoft/DialoGPT-small", {"openai-community/gpt2"}),
        # q/v of phi-1.5 (2048 wide, MHA, 24 layers) are shaped like SmolLM(2)-1.7B's: all fit.
        ("phi1_5-fin-qv", "HuggingFaceTB/SmolLM-1.7B-Instruct", {"HuggingFaceTB/SmolLM2-1.7B", "microsoft/phi-1_5"}),
    ],
)
def test_real_adapters(shared_dir: Path, adapter: str, expected_first: str, also: set[str]) -> None:
    from basemodel_helpers import adapter_signature

    signature, top = adapter_signature(shared_dir / "corpus" / "adapters" / adapter / "adapter_model.safetensors")
    results = infer_bases(signature, max_layer_index=top)
    assert results, signature
    assert results[0].name == expected_first and results[0].exact_layers
    assert also <= set(_names(results))
