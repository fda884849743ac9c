"""PEFT's on-disk LoRA format written with numpy alone: what the torch-free fault cases are made of.

`write_lora` writes `adapter_config.json` (every field PEFT 0.21's `LoraConfig.save_pretrained`
writes, from `LORA_CONFIG`) and `adapter_model.safetensors` with PEFT's key names, shapes and
`format: pt` metadata, for a Qwen2-style decoder of a given `Geometry`. `test_fault_factory.py`
builds the same cases with real PEFT and asserts the files agree (keys, shapes, dtypes, config),
so these stay what PEFT writes. The safetensors reader and writer here need no `safetensors`
package either (F32, F16 and BF16; other dtypes pass through as raw bytes).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"

LORA_CONFIG: dict[str, Any] = {
    "alora_invocation_tokens": None,
    "alpha_pattern": {},
    "arrow_config": None,
    "auto_mapping": None,
    "base_model_name_or_path": None,
    "bias": "none",
    "corda_config": None,
    "ensure_weight_tying": False,
    "eva_config": None,
    "exclude_modules": None,
    "fan_in_fan_out": False,
    "inference_mode": True,
    "init_lora_weights": True,
    "kasa_config": None,
    "layer_replication": None,
    "layers_pattern": None,
    "layers_to_transform": None,
    "loftq_config": {},
    "lora_alpha": 16,
    "lora_bias": False,
    "lora_dropout": 0.0,
    "lora_ga_config": None,
    "megatron_config": None,
    "megatron_core": "megatron.core",
    "modules_to_save": None,
    "monteclora_config": None,
    "peft_type": "LORA",
    "peft_version": "0.21.2",
    "qalora_group_size": 16,
    "r": 8,
    "rank_pattern": {},
    "revision": None,
    "target_modules": ["q_proj", "v_proj"],
    "target_parameters": None,
    "task_type": "CAUSAL_LM",
    "trainable_token_indices": None,
    "use_bdlora": None,
    "use_dora": False,
    "use_qalora": False,
    "use_rslora": False,
    "velora_config": None,
}
"""`adapter_config.json` as PEFT 0.21.2 writes it for `LoraConfig(task_type="CAUSAL_LM")` (trained: init true)."""

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
ALL_LINEAR = ATTENTION + MLP


@dataclass(frozen=True)
class Geometry:
    """What the LoRA tensors of a Qwen-style decoder depend on."""

    hidden: int
    q_out: int
    """Attention heads × head dim."""
    kv_out: int
    """Key/value heads × head dim."""
    layers: int
    intermediate: int = 0
    """MLP width (only needed for MLP targets)."""

    def features(self, module: str) -> tuple[int, int]:
        """(in_features, out_features) of `module`."""
        return {
            "q_proj": (self.hidden, self.q_out),
            "k_proj": (self.hidden, self.kv_out),
            "v_proj": (self.hidden, self.kv_out),
            "o_proj": (self.q_out, self.hidden),
            "gate_proj": (self.hidden, self.intermediate),
            "up_proj": (self.hidden, self.intermediate),
            "down_proj": (self.intermediate, self.hidden),
        }[module]


def lora_config(**changes: Any) -> dict[str, Any]:
    """`LORA_CONFIG` with `changes` (every key must be a real field)."""
    unknown = set(changes) - set(LORA_CONFIG)
    if unknown:
        raise KeyError(f"not LoraConfig fields: {sorted(unknown)}")
    return {**LORA_CONFIG, **changes}


def write_lora(
    out: Path,
    geometry: Geometry,
    *,
    claim: str,
    r: int = 8,
    lora_alpha: int = 16,
    target_modules: str | Sequence[str] = ("q_proj", "v_proj"),
    rank_pattern: Mapping[str, int] | None = None,
    alpha_pattern: Mapping[str, int] | None = None,
    layers_to_transform: Sequence[int] | None = None,
    use_rslora: bool = False,
    init_lora_weights: bool = False,
    dtype: str = "float32",
    seed: int = 1,
) -> Path:
    """A LoRA adapter folder as `get_peft_model(model, LoraConfig(...)).save_pretrained(out)` writes it.

    `init_lora_weights=False` (the default): random non-zero A and B, as after training; True:
    PEFT's untrained init (B all zero). The config always records `init_lora_weights: true`, as a
    trained adapter's does. `target_modules="all-linear"` means every attention and MLP projection.
    """
    modules = ALL_LINEAR if target_modules == "all-linear" else tuple(target_modules)
    layers = list(layers_to_transform) if layers_to_transform is not None else list(range(geometry.layers))
    rng = np.random.default_rng(seed)
    ranks = dict(rank_pattern or {})
    tensors: dict[str, np.ndarray] = {}
    paths: list[str] = []  # PEFT records "all-linear" as the full path of every module it matched
    for layer in layers:
        for module in ALL_LINEAR:
            if module not in modules:
                continue
            rank = ranks.get(module, r)
            fan_in, fan_out = geometry.features(module)
            paths.append(f"model.layers.{layer}.{'self_attn' if module in ATTENTION else 'mlp'}.{module}")
            stem = f"base_model.model.{paths[-1]}"
            a = rng.uniform(-1, 1, (rank, fan_in)) / np.sqrt(fan_in)
            b = np.zeros((fan_out, rank)) if init_lora_weights else rng.normal(0, 0.02, (fan_out, rank))
            tensors[f"{stem}.lora_A.weight"] = a.astype(dtype)
            tensors[f"{stem}.lora_B.weight"] = b.astype(dtype)
    out.mkdir(parents=True, exist_ok=True)
    write_tensors(out, tensors)
    config = lora_config(
        base_model_name_or_path=claim,
        r=r,
        lora_alpha=lora_alpha,
        target_modules=sorted(paths if target_modules == "all-linear" else modules),
        rank_pattern=dict(ranks),
        alpha_pattern=dict(alpha_pattern or {}),
        layers_to_transform=layers if layers_to_transform is not None else None,
        use_rslora=use_rslora,
    )
    write_json(out / CONFIG_FILE, config)
    return out


# --- safetensors without the safetensors package --------------------------------------------------

_NUMPY = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8")}
_CODE = {dtype: code for code, dtype in _NUMPY.items()}


@dataclass(frozen=True)
class Raw:
    """A tensor this module cannot hold as numpy (e.g. BF16): its dtype code, shape and bytes."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes


def read_tensors(adapter_dir: Path, name: str = WEIGHTS_FILE) -> dict[str, Any]:
    """Tensors of a safetensors file in file order: numpy arrays (F32/F16/F64/I64), else `Raw`."""
    raw = (Path(adapter_dir) / name).read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    header.pop("__metadata__", None)
    body = raw[8 + size :]
    out: dict[str, Any] = {}
    for key, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if info["dtype"] in _NUMPY:
            out[key] = np.frombuffer(body[start:end], dtype=_NUMPY[info["dtype"]]).reshape(shape).copy()
        else:
            out[key] = Raw(info["dtype"], shape, body[start:end])
    return out


def write_tensors(adapter_dir: Path, tensors: Mapping[str, Any], name: str = WEIGHTS_FILE) -> Path:
    """A safetensors file (PEFT's `{"format": "pt"}` metadata) of numpy arrays and `Raw` tensors."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    blobs: list[bytes] = []
    offset = 0
    for key, value in tensors.items():
        if isinstance(value, Raw):
            code, shape, data = value.dtype, list(value.shape), value.data
        else:
            array = np.ascontiguousarray(value)
            dtype = array.dtype.newbyteorder("<")
            code, shape, data = _CODE[dtype], list(array.shape), array.astype(dtype).tobytes()
        header[key] = {"dtype": code, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    path = Path(adapter_dir) / name
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return path


def to_bf16(array: np.ndarray) -> Raw:
    """`array` as bfloat16 (round to nearest even, as `torch.Tensor.to(torch.bfloat16)`)."""
    bits = np.ascontiguousarray(array, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2")
    special = ~np.isfinite(array.astype(np.float32))
    rounded[special] = (bits[special] >> 16).astype("<u2")  # Inf and NaN keep their pattern
    return Raw("BF16", tuple(array.shape), rounded.tobytes())


def from_bf16(tensor: Raw) -> np.ndarray:
    """A `Raw` BF16 tensor as float32."""
    halves = np.frombuffer(tensor.data, dtype="<u2").astype("<u4") << 16
    return halves.view("<f4").reshape(tensor.shape)


def rename_keys(adapter_dir: Path, old: str, new: str) -> None:
    tensors = read_tensors(adapter_dir)
    write_tensors(adapter_dir, {k.replace(old, new): v for k, v in tensors.items()})


def drop_keys(adapter_dir: Path, needle: str) -> None:
    tensors = read_tensors(adapter_dir)
    write_tensors(adapter_dir, {k: v for k, v in tensors.items() if needle not in k})


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(dict(data), indent=2, sort_keys=True) + "\n")


def stamp_json(path: Path, changes: Mapping[str, Any], drop: Iterable[str] = ()) -> None:
    """Rewrite keys of a JSON file (a config edited after training)."""
    data = json.loads(path.read_text())
    data.update(changes)
    for key in drop:
        data.pop(key, None)
    path.write_text(json.dumps(data, indent=2) + "\n")
