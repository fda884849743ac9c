"""Catalog-sized cases without catalog-sized weights: config-only bases and numpy-built adapters.

`check` never loads weights, so a base folder holding only a `config.json` with the real numbers
of a Qwen model is enough, and the adapter can be written directly in PEFT's format (rank 2, q/v
only, float16: about 1.5 MB for the Qwen3-4B geometry) by `peft_files.write_lora`: no torch needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fault_cases.peft_files import Geometry, write_lora

QWEN_VOCAB = 151936


def qwen2_config(
    name: str,
    *,
    hidden: int,
    intermediate: int,
    layers: int,
    heads: int,
    kv_heads: int,
    vocab: int = QWEN_VOCAB,
    dtype: str = "bfloat16",
) -> dict[str, Any]:
    """A Qwen2 `config.json` as the Hub ships it (numbers from the real model cards)."""
    return {
        "_name_or_path": name,
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "max_position_embeddings": 32768,
        "max_window_layers": 21,
        "model_type": "qwen2",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "rms_norm_eps": 1e-06,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": True,
        "torch_dtype": dtype,
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": vocab,
    }


def _qwen_small(name: str) -> dict[str, Any]:
    """Qwen2-0.5B and Qwen2.5-0.5B(-Instruct) share every shape."""
    return qwen2_config(name, hidden=896, intermediate=4864, layers=24, heads=14, kv_heads=2)


# Keys of the config-only bases (folder names under the fixture root).
QWEN25_05B_INSTRUCT = "qwen2.5-small-instruct"
QWEN25_05B = "qwen2.5-small-base"
QWEN2_05B = "qwen2-small-base"
QWEN25_15B_INSTRUCT = "qwen2.5-mid-instruct"

CATALOG_CONFIGS: dict[str, dict[str, Any]] = {
    QWEN25_05B_INSTRUCT: _qwen_small("Qwen/Qwen2.5-0.5B-Instruct"),
    QWEN25_05B: _qwen_small("Qwen/Qwen2.5-0.5B"),
    QWEN2_05B: _qwen_small("Qwen/Qwen2-0.5B"),
    QWEN25_15B_INSTRUCT: qwen2_config(
        "Qwen/Qwen2.5-1.5B-Instruct", hidden=1536, intermediate=8960, layers=28, heads=12, kv_heads=2
    ),
}


def write_config_only_base(out: Path, key: str) -> Path:
    """A base folder holding only `config.json` (no weights: `check` never needs them)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(CATALOG_CONFIGS[key], indent=2) + "\n")
    return out


QWEN25_05B_GEOMETRY = Geometry(hidden=896, q_out=896, kv_out=128, layers=24)  # 14 heads × 64, 2 kv heads
QWEN3_4B_GEOMETRY = Geometry(hidden=2560, q_out=4096, kv_out=1024, layers=36)  # 32 heads × 128, 8 kv heads


def write_qv_adapter(out: Path, geometry: Geometry, *, claim: str, r: int = 2, seed: int = 0) -> Path:
    """A q/v LoRA adapter in PEFT's on-disk format, tensors built with numpy (float16, non-zero)."""
    return write_lora(out, geometry, claim=claim, r=r, lora_alpha=2 * r, dtype="float16", seed=seed)
