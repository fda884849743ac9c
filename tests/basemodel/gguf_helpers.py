"""GGUF files and LoRA adapters for the GGUF-base tests, written with `gguf.GGUFWriter` and numpy (no torch).

`gguf_from_config` converts a Hugging Face config.json dict into the GGUF header llama.cpp's
`convert_hf_to_gguf.py` writes for it: the same metadata keys and tensor names, spelled out here
independently of `loraguard.basemodel.gguf`. Tensor data is never written: the file is extended to
its full size as a sparse file, so catalog-sized models cost no disk and no time.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter

# HF model_type -> llama.cpp `general.architecture` (Mistral 7B is converted as llama).
GGUF_ARCH = {
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "gemma3_text": "gemma3",
    "phi3": "phi3",
    "phi": "phi2",
    "gpt2": "gpt2",
}
_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3_text", "gpt2"}
ALIGNMENT = 32


def write_gguf(
    path: Path,
    arch: str,
    *,
    kv: Mapping[str, Any],
    tensors: Mapping[str, Sequence[int]],
    tokens: int | None = None,
    quant: GGMLQuantizationType = GGMLQuantizationType.F16,
) -> Path:
    """A GGUF file: `kv` metadata (ints as uint32), `tensors` by name with ggml shapes (`ne0` first).

    Matrices are declared `quant`, vectors F32; the data region is a sparse hole of the right size.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = GGUFWriter(path, arch)
    for key, value in kv.items():
        if isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        elif isinstance(value, float):
            writer.add_float32(key, value)
        elif isinstance(value, str):
            writer.add_string(key, value)
        else:
            writer.add_array(key, list(value))
    if tokens:
        writer.add_token_list([f"<t{i}>" for i in range(tokens)])
    data = 0
    for name, ne in tensors.items():
        kind = GGMLQuantizationType.F32 if len(ne) == 1 else quant
        block, size = GGML_QUANT_SIZES[kind]
        nbytes = math.prod(ne) * size // block
        writer.add_tensor_info(name, tuple(reversed(ne)), np.dtype(np.float16), nbytes, raw_dtype=kind)
        data += -(-nbytes // ALIGNMENT) * ALIGNMENT
    writer.write_header_to_file(path=path)
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    header = path.stat().st_size
    os.truncate(path, -(-header // ALIGNMENT) * ALIGNMENT + data)
    return path


def _dims(config: Mapping[str, Any]) -> dict[str, int]:
    if config["model_type"] == "gpt2":
        hidden = config["n_embd"]
        return {
            "hidden": hidden,
            "layers": config["n_layer"],
            "heads": config["n_head"],
            "kv": config["n_head"],
            "head_dim": hidden // config["n_head"],
            "inter": config.get("n_inner") or 4 * hidden,
            "vocab": config["vocab_size"],
            "positions": config["n_positions"],
        }
    heads = config["num_attention_heads"]
    return {
        "hidden": config["hidden_size"],
        "layers": config["num_hidden_layers"],
        "heads": heads,
        "kv": config.get("num_key_value_heads") or heads,
        "head_dim": config.get("head_dim") or config["hidden_size"] // heads,
        "inter": config["intermediate_size"],
        "vocab": config["vocab_size"],
        "positions": config.get("max_position_embeddings", 4096),
    }


def gguf_tensors(config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """The tensor table llama.cpp writes for `config` (ggml shapes: a weight is (in, out))."""
    mt = config["model_type"]
    d = _dims(config)
    h, q, kv, inter = d["hidden"], d["heads"] * d["head_dim"], d["kv"] * d["head_dim"], d["inter"]
    tied = config.get("tie_word_embeddings", mt in _TIED_BY_DEFAULT)
    out: dict[str, tuple[int, ...]] = {"token_embd.weight": (h, d["vocab"])}
    if mt == "gpt2":
        out["position_embd.weight"] = (h, d["positions"])
    for i in range(d["layers"]):
        b = f"blk.{i}."
        out[b + "attn_norm.weight"] = (h,)
        if mt == "gpt2":
            out |= {
                b + "attn_qkv.weight": (h, 3 * h),
                b + "attn_qkv.bias": (3 * h,),
                b + "attn_output.weight": (h, h),
                b + "ffn_up.weight": (h, inter),
                b + "ffn_down.weight": (inter, h),
            }
            continue
        if mt == "phi3":
            out |= {
                b + "attn_qkv.weight": (h, q + 2 * kv),
                b + "attn_output.weight": (q, h),
                b + "ffn_up.weight": (h, 2 * inter),
                b + "ffn_down.weight": (inter, h),
            }
            continue
        out |= {
            b + "attn_q.weight": (h, q),
            b + "attn_k.weight": (h, kv),
            b + "attn_v.weight": (h, kv),
            b + "attn_output.weight": (q, h),
            b + "ffn_up.weight": (h, inter),
            b + "ffn_down.weight": (inter, h),
        }
        if mt != "phi":
            out[b + "ffn_gate.weight"] = (h, inter)
            out[b + "ffn_norm.weight"] = (h,)
        if mt in {"qwen2", "phi"} or config.get("attention_bias"):
            out |= {b + "attn_q.bias": (q,), b + "attn_k.bias": (kv,), b + "attn_v.bias": (kv,)}
        if mt in {"qwen3", "gemma3_text"}:
            out |= {b + "attn_q_norm.weight": (d["head_dim"],), b + "attn_k_norm.weight": (d["head_dim"],)}
        if mt in {"gemma2", "gemma3_text"}:
            out |= {b + "post_attention_norm.weight": (h,), b + "post_ffw_norm.weight": (h,)}
    out["output_norm.weight"] = (h,)
    if mt == "gpt2" or not tied:  # llama.cpp duplicates GPT-2's tied wte as output.weight
        out["output.weight"] = (h, d["vocab"])
    return out


def gguf_metadata(config: Mapping[str, Any], arch: str) -> dict[str, Any]:
    """The `<arch>.*` keys convert_hf_to_gguf.py writes for `config`."""
    d = _dims(config)
    kv: dict[str, Any] = {
        f"{arch}.context_length": d["positions"],
        f"{arch}.embedding_length": d["hidden"],
        f"{arch}.block_count": d["layers"],
        f"{arch}.feed_forward_length": d["inter"],
        f"{arch}.attention.head_count": d["heads"],
    }
    if arch == "gpt2":
        kv[f"{arch}.attention.layer_norm_epsilon"] = 1e-5
        return kv
    kv[f"{arch}.attention.head_count_kv"] = d["kv"]
    kv[f"{arch}.attention.layer_norm_rms_epsilon"] = 1e-6
    if "head_dim" in config:  # TextModel.set_gguf_parameters writes key/value length only then
        kv[f"{arch}.attention.key_length"] = config["head_dim"]
        kv[f"{arch}.attention.value_length"] = config["head_dim"]
    if arch == "llama":
        kv[f"{arch}.rope.dimension_count"] = d["head_dim"]
        kv[f"{arch}.vocab_size"] = d["vocab"]
    if arch == "phi2":
        kv[f"{arch}.rope.dimension_count"] = d["head_dim"] // 2  # partial rotary
    return kv


def gguf_from_config(
    config: Mapping[str, Any],
    path: Path,
    *,
    general: Mapping[str, Any] | None = None,
    tokens: bool = False,
) -> Path:
    """The GGUF (header + sparse data) llama.cpp would write for a model with this config.json."""
    arch = GGUF_ARCH[config["model_type"]]
    kv = {**(general or {}), **gguf_metadata(config, arch)}
    vocab = _dims(config)["vocab"] if tokens else None
    return write_gguf(path, arch, kv=kv, tensors=gguf_tensors(config), tokens=vocab)


def write_config(folder: Path, config: Mapping[str, Any]) -> Path:
    """A base folder holding only `config.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(dict(config), indent=2))
    return folder


# ----------------------------------------------------------------------------------------- adapters


def _write_safetensors(path: Path, tensors: Mapping[str, np.ndarray]) -> None:
    header: dict[str, Any] = {}
    blobs, offset = [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f2").tobytes()
        header[name] = {"dtype": "F16", "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def write_lora(
    folder: Path,
    shapes: Mapping[str, tuple[int, int]],
    *,
    claim: str,
    r: int = 4,
    task_type: str = "CAUSAL_LM",
    seed: int = 0,
) -> Path:
    """A PEFT LoRA adapter on `shapes` (module name -> (in, out)), non-zero A and B, claiming `claim`."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for module, (fan_in, fan_out) in shapes.items():
        tensors[f"base_model.model.{module}.lora_A.weight"] = rng.standard_normal((r, fan_in)) * 0.02
        tensors[f"base_model.model.{module}.lora_B.weight"] = rng.standard_normal((fan_out, r)) * 0.02
    folder.mkdir(parents=True, exist_ok=True)
    _write_safetensors(folder / "adapter_model.safetensors", tensors)
    targets = sorted({m.rsplit(".", 1)[-1] for m in shapes})
    config = {
        "peft_type": "LORA",
        "task_type": task_type,
        "r": r,
        "lora_alpha": 2 * r,
        "lora_dropout": 0.0,
        "target_modules": targets,
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "base_model_name_or_path": claim,
        "modules_to_save": None,
        "use_dora": False,
        "use_rslora": False,
    }
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return folder


def qv_shapes(
    hidden: int, q_out: int, kv_out: int, layers: int, prefix: str = "model.layers"
) -> dict[str, tuple[int, int]]:
    """q_proj/v_proj of every layer of a Llama-style decoder."""
    shapes: dict[str, tuple[int, int]] = {}
    for i in range(layers):
        shapes[f"{prefix}.{i}.self_attn.q_proj"] = (hidden, q_out)
        shapes[f"{prefix}.{i}.self_attn.v_proj"] = (hidden, kv_out)
    return shapes
