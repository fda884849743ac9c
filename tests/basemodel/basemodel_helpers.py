"""Instantiate real (tiny) transformers models on the meta device and list their targetable leaves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loraguard.basemodel.spec import ModuleShape

TASK_AUTO = {
    "CAUSAL_LM": "AutoModelForCausalLM",
    "SEQ_CLS": "AutoModelForSequenceClassification",
    "FEATURE_EXTRACTION": "AutoModel",
}


def build_meta_model(config: Any, task: str) -> Any:
    import torch
    import transformers

    auto = getattr(transformers, TASK_AUTO[task])
    with torch.device("meta"):
        return auto.from_config(config)


def leaf_shapes(model: Any) -> dict[str, ModuleShape]:
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    out: dict[str, ModuleShape] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Embedding):
            out[name] = ModuleShape(module.num_embeddings, module.embedding_dim, "embedding")
        elif isinstance(module, Conv1D):
            rows, cols = module.weight.shape
            out[name] = ModuleShape(int(rows), int(cols), "conv1d")
        elif isinstance(module, nn.Linear):
            out[name] = ModuleShape(module.in_features, module.out_features, "linear")
    return out


def real_param_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())  # parameters() yields tied tensors once


def read_safetensors_header(path: Any) -> dict[str, list[int]]:
    """Tensor name -> shape, from a safetensors header (no weights read)."""
    import json
    import struct

    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
    return {name: info["shape"] for name, info in header.items() if name != "__metadata__"}


def adapter_signature(path: Any) -> tuple[dict[str, tuple[int, int]], int]:
    """Layer-relative `(in, out)` per LoRA module of a decoder adapter, and its highest layer index.

    A minimal stand-in for the adapter package: strips every `base_model.model.` prefix and the
    `<stack>.<n>.` of `model.layers` / `transformer.h`.
    """
    import re

    shapes: dict[str, dict[str, list[int]]] = {}
    for name, shape in read_safetensors_header(path).items():
        match = re.match(r"^(?:base_model\.model\.)*(?P<module>.+)\.lora_(?P<ab>[AB])\.weight$", name)
        if match:
            shapes.setdefault(match["module"], {})[match["ab"]] = shape
    signature: dict[str, tuple[int, int]] = {}
    top = -1
    for module, ab in shapes.items():
        layer = re.match(r"^(?:model\.layers|transformer\.h)\.(\d+)\.(.+)$", module)
        key = module
        if layer:
            top = max(top, int(layer[1]))
            key = layer[2]
        signature.setdefault(key, (ab["A"][1], ab["B"][0]))
    return signature, top


REPO = Path(__file__).resolve().parents[2]


def load_build_script() -> Any:
    """`scripts/build_catalog.py` as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_catalog", REPO / "scripts" / "build_catalog.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
