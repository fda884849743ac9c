"""Tensor dimensions against the base module they map to (the LG301/LG305 inputs, also read by engines)."""

from __future__ import annotations

from dataclasses import dataclass

from loraguard.adapter.keys import AdapterTensor
from loraguard.basemodel.spec import ModuleShape

_VOCAB_MODULES = ("lm_head", "embed_tokens", "wte", "word_embeddings", "embed_in", "embed_out", "shared")


@dataclass(frozen=True)
class ShapeProblem:
    """One tensor dimension that disagrees with the base module the tensor maps to."""

    category: str
    """`shape-mismatch` or `vocab-mismatch`."""
    module: str
    part: str
    dim: str
    expected: int
    actual: int


def tensor_shape_problems(tensor: AdapterTensor, base: ModuleShape) -> list[ShapeProblem]:
    """Every dimension of `tensor` that disagrees with the base module it maps to (zero-sized ones aside)."""
    module, part, param, shape = tensor.module, tensor.part, tensor.param, tensor.shape
    vocab_like = module.rsplit(".", 1)[-1] in _VOCAB_MODULES
    checks: list[tuple[str, int, int, bool]] = []  # (dim name, expected, actual, is_vocab)
    if len(shape) == 0:
        return []
    if part == "lora_A" and len(shape) == 2:
        checks.append(("in_features", base.in_features, shape[1], False))
    elif part == "lora_B" and param == "weight" and len(shape) == 2:
        checks.append(("out_features", base.out_features, shape[0], vocab_like and base.kind != "embedding"))
    elif part in ("lora_magnitude_vector",) or (part == "lora_B" and param == "bias"):
        checks.append(("out_features", base.out_features, shape[-1], False))
    elif part == "lora_embedding_A" and len(shape) == 2:
        checks.append(("num_embeddings", base.in_features, shape[1], True))
    elif part == "lora_embedding_B" and len(shape) == 2:
        checks.append(("embedding_dim", base.out_features, shape[0], False))
    elif part == "full" and param == "weight" and len(shape) == 2:
        checks.extend(_full_weight_dims(module, shape, base, vocab_like))
    return [
        ShapeProblem("vocab-mismatch" if is_vocab else "shape-mismatch", module, part, dim, exp, act)
        for dim, exp, act, is_vocab in checks
        if act != exp and act != 0
    ]


def _full_weight_dims(
    module: str, shape: tuple[int, ...], base: ModuleShape, vocab_like: bool
) -> list[tuple[str, int, int, bool]]:
    if base.kind == "embedding":
        return [
            ("num_embeddings", base.in_features, shape[0], True),
            ("embedding_dim", base.out_features, shape[1], False),
        ]
    out_dim, in_dim = (shape[1], shape[0]) if base.kind == "conv1d" else (shape[0], shape[1])
    dims = [("in_features", base.in_features, in_dim, False)]
    head = module.rsplit(".", 1)[-1] in ("score", "classifier", "out_proj") or module.startswith("classifier")
    if not head:  # a classification head's label count is chosen at load time (num_labels)
        dims.append(("out_features", base.out_features, out_dim, vocab_like))
    return dims
