"""What loraguard knows about a base model: every module an adapter could target, with its shape.

A `BaseSpec` is built from `config.json` alone (for the common decoder families, see
`families.py`), from a GGUF file's header (`gguf.py`) or from a transformers skeleton on the
`meta` device (`skeleton.py`), never from weights. Module names are exactly those of
`model.named_modules()` of the task class (`Qwen2ForCausalLM`: `model.layers.0.self_attn.q_proj`,
`lm_head`...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

ModuleKind = Literal["linear", "conv1d", "embedding"]


@dataclass(frozen=True)
class ModuleShape:
    """A targetable leaf module.

    For `linear`: `nn.Linear(in_features, out_features)`. For `conv1d` (GPT-2's `Conv1D`): weight
    shape `(in_features, out_features)`. For `embedding`: `nn.Embedding(in_features=num_embeddings,
    out_features=embedding_dim)`. LoRA tensors then have `lora_A: (r, in)`, `lora_B: (out, r)`;
    embedding LoRA has `lora_embedding_A: (r, num_embeddings)`, `lora_embedding_B: (dim, r)`.
    """

    in_features: int
    out_features: int
    kind: ModuleKind = "linear"


@dataclass(frozen=True)
class BaseSpec:
    """Module names and shapes of one base model for one task class."""

    name: str
    """Identity: the config's `_name_or_path`, else the folder name, else the catalog id."""
    model_type: str
    architecture: str
    """The class whose modules are listed, e.g. `Qwen2ForCausalLM`."""
    task: str
    """PEFT task type the module list is for: `CAUSAL_LM`, `SEQ_CLS`, ..."""
    modules: Mapping[str, ModuleShape]
    num_layers: int
    hidden_size: int
    vocab_size: int
    layer_prefixes: tuple[str, ...]
    """Containers of numbered layers, e.g. `("model.layers",)` or `("encoder.block", "decoder.block")`."""
    param_count: int
    """Parameters of the whole model (embeddings counted once when tied)."""
    source: Literal["config", "skeleton", "catalog", "gguf", "live"] = "config"
    """Where the modules came from; `live`: a model in memory (`loraguard.load_adapter`)."""
    config: Mapping[str, Any] = field(default_factory=dict, repr=False)
    path: str | None = None
    """Where config.json (or the GGUF file) was read from, if a file."""
    name_from_folder: bool = False
    """`name` is only the folder's name (config.json has no `_name_or_path`): weak evidence of identity."""

    @cached_property
    def all_names(self) -> frozenset[str]:
        """Every module name and every container above it (PEFT matches targets against all of them);
        computed once per spec (a resolved base is reused across checks)."""
        names: set[str] = set()
        for module in self.modules:
            parts = module.split(".")
            names.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        return frozenset(names)

    @cached_property
    def name_suffixes(self) -> frozenset[str]:
        """Every name of `all_names` and every part of it after a dot: a target `t` matches some module
        or container iff `t` is in it (PEFT's exact-name-or-`.t`-suffix rule)."""
        out: set[str] = set()
        for name in self.all_names:
            out.add(name)
            start = name.find(".")
            while start != -1:
                out.add(name[start + 1 :])
                start = name.find(".", start + 1)
        return frozenset(out)

    def layer_signature(self) -> dict[str, ModuleShape]:
        """Shapes by layer-relative name (`self_attn.q_proj`), plus non-layer modules by full name.

        Layers of one stack are assumed uniform; where they are not, the first layer's shape wins.
        """
        return dict(self._signature)

    @cached_property
    def _signature(self) -> dict[str, ModuleShape]:
        out: dict[str, ModuleShape] = {}
        for name, shape in self.modules.items():
            out.setdefault(layer_relative(name, self.layer_prefixes), shape)
        return out


_LAYER_RE = re.compile(r"^(?P<prefix>.*?)\.(?P<index>\d+)\.(?P<rest>.+)$")


def layer_relative(module: str, layer_prefixes: tuple[str, ...]) -> str:
    """`model.layers.3.self_attn.q_proj` -> `self_attn.q_proj`; other names unchanged.

    With several stacks (T5) the stack is kept: `encoder.block.1.layer.0.SelfAttention.q` ->
    `encoder.block/layer.0.SelfAttention.q`.
    """
    for prefix in layer_prefixes:
        if module.startswith(prefix + "."):
            rest = module[len(prefix) + 1 :]
            index, _, tail = rest.partition(".")
            if index.isdigit() and tail:
                return tail if len(layer_prefixes) == 1 else f"{prefix}/{tail}"
    return module


def layer_index(module: str, layer_prefixes: tuple[str, ...]) -> int | None:
    """The layer number of a module inside one of `layer_prefixes`, else None."""
    for prefix in layer_prefixes:
        if module.startswith(prefix + "."):
            index = module[len(prefix) + 1 :].partition(".")[0]
            if index.isdigit():
                return int(index)
    return None


@dataclass(frozen=True)
class InferredBase:
    """A catalog model whose shapes fit the adapter's tensors."""

    name: str
    model_type: str
    param_count: int
    matched_modules: int
    """How many of the adapter's modules have exactly this base's shape."""
    num_layers: int
    exact_layers: bool
    """The adapter's highest layer index is this base's last layer."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_type": self.model_type,
            "params_b": round(self.param_count / 1e9, 2),
            "matched_modules": self.matched_modules,
            "num_layers": self.num_layers,
            "exact_layers": self.exact_layers,
        }
