"""Everything a rule reads, computed once: the adapter, the base, and how each tensor maps onto it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property

from loraguard.adapter.keys import AdapterTensor, generic_layer_relative
from loraguard.adapter.reader import AdapterData
from loraguard.basemodel.spec import BaseSpec, InferredBase, ModuleShape, layer_index, layer_relative
from loraguard.checks.shapes import ShapeProblem, tensor_shape_problems
from loraguard.checks.targets import is_all_linear, is_head, matches_target
from loraguard.engines.base import EngineOptions


@dataclass(frozen=True)
class Placement:
    """Where an adapter module lands on the base."""

    status: str
    """`ok`, `container` (a modules_to_save weight of a non-leaf module), `extra-layer` or `unmapped`."""
    shape: ModuleShape | None = None
    suggestion: str | None = None
    """For `unmapped`: the base module it would be under another prefix."""


class CheckContext:
    """Inputs of the rules. Derived views are computed lazily and cached.

    It is also the `loraguard.engines.base.AdapterView` the serving engines' functions read.
    """

    def __init__(
        self,
        adapter: AdapterData,
        base: BaseSpec | None,
        *,
        base_given: bool,
        base_problem: str | None = None,
        claimed: BaseSpec | None = None,
        inferred: tuple[InferredBase, ...] = (),
        engines: tuple[str, ...] = ("peft",),
        engine_options: EngineOptions | None = None,
    ) -> None:
        self.adapter = adapter
        self.config = adapter.config
        self.base = base
        self.base_given = base_given
        self.base_problem = base_problem
        self.claimed = claimed
        self.inferred = inferred
        self.engines = engines
        """Engines the LG7xx rules check for (`peft` adds nothing to the base rules)."""
        self.engine_options = engine_options if engine_options is not None else EngineOptions()

    @cached_property
    def lora(self) -> tuple[AdapterTensor, ...]:
        return tuple(t for t in self.adapter.tensors if t.is_lora)

    @cached_property
    def full(self) -> tuple[AdapterTensor, ...]:
        return tuple(t for t in self.adapter.tensors if not t.is_lora)

    @cached_property
    def by_module(self) -> dict[str, dict[str, AdapterTensor]]:
        """module -> {part: tensor} for LoRA tensors (bias of lora_B under `lora_B.bias`)."""
        out: dict[str, dict[str, AdapterTensor]] = defaultdict(dict)
        for t in self.lora:
            out[t.module][t.part if t.param == "weight" else f"{t.part}.{t.param}"] = t
        return dict(out)

    @cached_property
    def placements(self) -> dict[str, Placement]:
        """Placement of every module that carries LoRA or full tensors (needs a base)."""
        if self.base is None or (self.config is not None and not self.config.is_lora):
            return {}  # a prompt-tuning or IA3 file has no modules to place (LG104 says so)
        modules = {t.module for t in self.adapter.tensors}
        return {m: self._place(m, self.base) for m in sorted(modules)}

    def _place(self, module: str, base: BaseSpec) -> Placement:
        if module in base.modules:
            return Placement("ok", base.modules[module])
        if module in self._containers:
            return Placement("container")
        index = layer_index(module, base.layer_prefixes)
        relative = layer_relative(module, base.layer_prefixes)
        if index is not None and index >= base.num_layers and relative in self._signature:
            return Placement("extra-layer", self._signature[relative])
        return Placement("unmapped", suggestion=self._suggest(module, base))

    @cached_property
    def _signature(self) -> dict[str, ModuleShape]:
        return self.base.layer_signature() if self.base else {}

    @property
    def _containers(self) -> frozenset[str]:
        return self.base.all_names if self.base else frozenset()

    def _suggest(self, module: str, base: BaseSpec) -> str | None:
        parts = module.split(".")
        for i in range(1, len(parts)):  # strip leading components: language_model.model.layers...
            candidate = ".".join(parts[i:])
            if candidate in base.modules or candidate in self._containers:
                return candidate
        for name in base.modules:  # a missing leading component: layers.0... -> model.layers.0...
            if name.endswith("." + module):
                return name
        return None

    def targeted_modules(self) -> set[str]:
        """Base modules PEFT would wrap with this config (all-linear expanded as PEFT does)."""
        return set(self._targeted)

    @cached_property
    def _targeted(self) -> frozenset[str]:
        if self.base is None or self.config is None:
            return frozenset()
        if is_all_linear(self.config):
            return frozenset(n for n, s in self.base.modules.items() if s.kind != "embedding" and not is_head(n))
        return frozenset(n for n in self.base.modules if matches_target(self.config, n))

    @cached_property
    def signature(self) -> dict[str, tuple[int, int]]:
        """The adapter's observed (in, out) per layer-relative module, whatever its prefix."""
        sig: dict[str, tuple[int, int]] = {}
        for module, parts in self.by_module.items():
            relative, _ = generic_layer_relative(module)
            a = parts.get("lora_A") or parts.get("lora_embedding_A")
            b = parts.get("lora_B") or parts.get("lora_embedding_B")
            if a is not None and b is not None and len(a.shape) == 2 and len(b.shape) == 2:
                sig.setdefault(relative, (a.shape[1], b.shape[0]))
        return sig

    @cached_property
    def max_layer_index(self) -> int | None:
        indices = [i for m in self.by_module if (i := generic_layer_relative(m)[1]) is not None]
        return max(indices) if indices else None

    @cached_property
    def shape_problems(self) -> tuple[ShapeProblem, ...]:
        """Every tensor dimension that disagrees with the base module it maps to (placement `ok`)."""
        problems: list[ShapeProblem] = []
        for t in self.adapter.tensors:
            placement = self.placements.get(t.module)
            if placement is not None and placement.status == "ok" and placement.shape is not None:
                problems.extend(tensor_shape_problems(t, placement.shape))
        return tuple(problems)

    @cached_property
    def structure_errors(self) -> bool:
        """Tensors that do not fit the given base (set by the shape and layer rules' inputs)."""
        extra = any(p.status == "extra-layer" for p in self.placements.values())
        # A vocabulary difference alone usually means added tokens on the same base, not another base.
        return extra or any(p.category == "shape-mismatch" for p in self.shape_problems)
