"""Split adapter tensor names into (module path, LoRA part), mirroring PEFT's save format.

PEFT saves `base_model.model.<module>.lora_A.weight` (adapter name removed), DoRA's
`<module>.lora_magnitude_vector`, embedding LoRA's `<module>.lora_embedding_A`, and full weights
of `modules_to_save` as `base_model.model.<module>.weight`. A key still carrying an adapter name
(`lora_A.default.weight`) is accepted too, as PEFT's loader does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loraguard.adapter.tensors import TensorMeta

PEFT_PREFIX = "base_model.model."
LORA_PARTS = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector")
_PART_RE = re.compile(
    r"^(?P<module>.+?)\."
    r"(?P<part>lora_A|lora_B|lora_embedding_A|lora_embedding_B|lora_magnitude_vector)"
    r"(?:\.(?P<adapter>[^.]+?))??(?:\.(?P<param>weight|bias))?$"
)
# Full weights saved from inside a PEFT wrapper: the wrapped layer (`embed_tokens.base_layer`, saved
# with embedding LoRA) or a ModulesToSaveWrapper copy (`score.modules_to_save.default`).
_WRAPPER_RE = re.compile(r"\.(?:base_layer|original_module|modules_to_save\.[^.]+)$")
_LAYER_RE = re.compile(
    r"^(?:(?P<stack>.*?)\.)?(?P<container>layers|layer|h|block|blocks)\.(?P<index>\d+)\.(?P<rest>.+)$"
)


@dataclass(frozen=True)
class AdapterTensor:
    """One tensor with its module path (as in the PEFT-wrapped model, prefix removed)."""

    key: str
    module: str
    """Module path below `base_model.model.`, e.g. `model.layers.0.self_attn.q_proj`."""
    part: str
    """One of LORA_PARTS, or `full` for a `modules_to_save` weight."""
    param: str
    """`weight` or `bias` (LoRA parts saved as bare Parameters report `weight`)."""
    shape: tuple[int, ...]
    dtype: str
    prefixed: bool
    """The key started with `base_model.model.`."""

    @property
    def is_lora(self) -> bool:
        return self.part != "full"


def parse_key(meta: TensorMeta) -> AdapterTensor:
    """Parse one tensor name; keys that are not LoRA parts are `full` weights of their module."""
    key = meta.name
    prefixed = key.startswith(PEFT_PREFIX)
    body = key[len(PEFT_PREFIX) :] if prefixed else key
    match = _PART_RE.match(body)
    if match:
        return AdapterTensor(
            key, match["module"], match["part"], match["param"] or "weight", meta.shape, meta.dtype, prefixed
        )
    module, _, param = body.rpartition(".")
    if not module:
        module, param = body, "weight"
    module = _WRAPPER_RE.sub("", module)
    return AdapterTensor(key, module, "full", param, meta.shape, meta.dtype, prefixed)


def generic_layer_relative(module: str) -> tuple[str, int | None]:
    """`model.layers.3.self_attn.q_proj` -> (`self_attn.q_proj`, 3) for any model class.

    Used where the base's own layer prefix is unknown (inferring which base fits).
    """
    match = _LAYER_RE.match(module)
    if not match:
        return module, None
    return match["rest"], int(match["index"])
