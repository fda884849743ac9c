"""Synthetic PEFT adapters and bases written with numpy alone (imported as `report_helpers`).

They let the report and matrix tests run in milliseconds without torch: a tiny Llama-shaped base
(`config.json` only) and LoRA adapters in real safetensors files, with optional zero, NaN, scaled
or missing layers.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

HIDDEN, LAYERS, HEADS, KV_HEADS, HEAD_DIM = 64, 4, 4, 2, 16
BASE_NAME = "test/tiny-llama"
BASE_CONFIG = {
    "_name_or_path": BASE_NAME,
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": HIDDEN,
    "intermediate_size": 128,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS,
    "num_key_value_heads": KV_HEADS,
    "head_dim": HEAD_DIM,
    "vocab_size": 128,
    "tie_word_embeddings": False,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-5,
}
OUT_FEATURES = {
    "q_proj": HEADS * HEAD_DIM,
    "k_proj": KV_HEADS * HEAD_DIM,
    "v_proj": KV_HEADS * HEAD_DIM,
    "o_proj": HIDDEN,
}


def write_safetensors(path: Path, tensors: Mapping[str, np.ndarray]) -> Path:
    """A valid F32 safetensors file (header + data) written without the safetensors package."""
    header: dict[str, object] = {}
    blobs, offset = [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))
    return path


def make_base(folder: Path, **overrides: object) -> Path:
    """A base folder holding only config.json (a tiny Llama unless overridden)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({**BASE_CONFIG, **overrides}))
    return folder


def make_adapter(
    folder: Path,
    *,
    layers: Iterable[int] = range(LAYERS),
    modules: Iterable[str] = ("q_proj", "v_proj"),
    r: int = 4,
    zero: Iterable[int] = (),
    nan: Iterable[int] = (),
    scale: Mapping[int, float] | None = None,
    hidden: int = HIDDEN,
    base: str = BASE_NAME,
    weights_name: str = "adapter_model.safetensors",
    seed: int = 0,
) -> Path:
    """A LoRA adapter on `modules` of `layers`; layers in `zero` get lora_B = 0, in `nan` one NaN,
    in `scale` their B multiplied (an outlier)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    modules = tuple(modules)
    tensors: dict[str, np.ndarray] = {}
    zero_s, nan_s, scale_m = set(zero), set(nan), dict(scale or {})
    for layer in layers:
        for module in modules:
            key = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            a = rng.normal(0, 0.02, (r, hidden)).astype(np.float32)
            out = hidden if module == "o_proj" else OUT_FEATURES[module]
            b = rng.normal(0, 0.02, (out, r)).astype(np.float32)
            b *= scale_m.get(layer, 1.0)
            if layer in zero_s:
                b[:] = 0
            if layer in nan_s:
                a[0, 0] = np.nan
            tensors[f"{key}.lora_A.weight"], tensors[f"{key}.lora_B.weight"] = a, b
    write_safetensors(folder / weights_name, tensors)
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": r,
        "lora_alpha": 2 * r,
        "lora_dropout": 0.0,
        "target_modules": list(modules),
        "base_model_name_or_path": base,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
    }
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder
