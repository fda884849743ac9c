"""What an engine profile is: an engine's limits as data, the flags it is served with, and shared helpers.

A profile states which engine version it describes and where each limit comes from (the engine's
source file or issue, as collected in `field-anchors.md` section B). The small functions of each
engine module (`vllm.py`, `sglang.py`, `lorax.py`) read an `AdapterView` and return `Issue`s;
the LG7xx rules of `loraguard.checks.rules.engines` hand them the static check's `CheckContext`
(which is an `AdapterView`) and turn the issues into findings. Engines import nothing from the check.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from loraguard.adapter.config import AdapterConfig
from loraguard.adapter.keys import AdapterTensor
from loraguard.adapter.reader import AdapterData
from loraguard.basemodel.spec import BaseSpec

PACKED_MODULES: Mapping[str, str] = {
    "q_proj": "qkv_proj",
    "k_proj": "qkv_proj",
    "v_proj": "qkv_proj",
    "gate_proj": "gate_up_proj",
    "up_proj": "gate_up_proj",
}
"""How vLLM and SGLang pack the HF projections of Llama-like models (vLLM `packed_modules_mapping`,
SGLang `get_normalized_target_modules`). An adapter on only some parts (q and v) still loads."""


class PlacementView(Protocol):
    """Where an adapted module lands on the base (`loraguard.checks.context.Placement`)."""

    @property
    def status(self) -> str:
        """`ok`, `container`, `extra-layer` or `unmapped`."""
        ...

    @property
    def suggestion(self) -> str | None:
        """For `unmapped`: the base module it would be under another prefix."""
        ...


class ShapeProblemView(Protocol):
    """A tensor dimension that disagrees with its base module (`loraguard.checks.shapes.ShapeProblem`)."""

    @property
    def category(self) -> str:
        """`shape-mismatch` or `vocab-mismatch`."""
        ...

    @property
    def module(self) -> str: ...

    @property
    def expected(self) -> int: ...

    @property
    def actual(self) -> int: ...


class AdapterView(Protocol):
    """What an engine function reads: the adapter, the base it is checked against and how its modules
    land there. The static check's `CheckContext` is one; engines never build or import it."""

    @property
    def adapter(self) -> AdapterData: ...

    @property
    def config(self) -> AdapterConfig | None: ...

    @property
    def base(self) -> BaseSpec | None: ...

    @property
    def base_given(self) -> bool: ...

    @property
    def claimed(self) -> BaseSpec | None:
        """The base the config claims, resolved offline (None when it cannot be)."""
        ...

    @property
    def lora(self) -> tuple[AdapterTensor, ...]:
        """The LoRA tensors (full weights saved with modules_to_save excluded)."""
        ...

    @property
    def by_module(self) -> Mapping[str, Mapping[str, AdapterTensor]]:
        """Module -> {part: tensor} for LoRA tensors."""
        ...

    @property
    def placements(self) -> Mapping[str, PlacementView]:
        """Where each adapted module lands on the base (empty without a base)."""
        ...

    @property
    def shape_problems(self) -> Sequence[ShapeProblemView]:
        """Tensor dimensions that disagree with the base module they land on."""
        ...


@dataclass(frozen=True)
class EngineOptions:
    """The serving flags that change what an engine accepts (passed through from `check`)."""

    max_lora_rank: int | None = None
    """`--max-lora-rank`; None means the engine's default (vLLM 16; SGLang sizes its pool from the adapters)."""
    lora_target_modules: tuple[str, ...] | None = None
    """`--lora-target-modules`; None (or a list holding `all`) means every module the engine supports."""

    @property
    def restricts_targets(self) -> bool:
        return self.lora_target_modules is not None and "all" not in self.lora_target_modules

    @staticmethod
    def parse_targets(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
        """`"o_proj,qkv_proj"` or `["o_proj", "qkv_proj"]` -> `("o_proj", "qkv_proj")`; empty -> None."""
        if value is None:
            return None
        items = [value] if isinstance(value, str) else list(value)
        names = [n.strip() for item in items for n in item.replace(",", " ").split() if n.strip()]
        return tuple(dict.fromkeys(names)) or None


@dataclass(frozen=True)
class Limit:
    """One documented limit of an engine: the rule code that checks it, what it is, and its source."""

    code: str
    summary: str
    source: str


@dataclass(frozen=True)
class EngineProfile:
    """One serving engine: the version described, its limits with their sources, and its defaults."""

    name: str
    """Key used by `--engine` (`vllm`)."""
    display: str
    """Name in messages (`vLLM`)."""
    version: str
    """Short version label in messages (`main`, a commit)."""
    describes: str
    """Which code and docs the profile was read from, in one paragraph."""
    limits: tuple[Limit, ...] = ()
    default_max_lora_rank: int | None = None
    legal_max_lora_ranks: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.display} ({self.version})"

    def refuses(self, text: str) -> str:
        return f"{self.label} will refuse: {text}"

    def applies_nothing(self, modules: Iterable[str], total: int, reason: str) -> str:
        """`will accept it and apply it to nothing` (all modules) or `...only part of it` (some)."""
        listed = sorted(modules)
        what = (
            "apply it to nothing"
            if len(listed) >= total
            else f"apply only part of it ({len(listed)} of {total} adapted modules get nothing)"
        )
        return f"{self.label} will accept it and {what}: {reason}; {describe_modules(listed)}."


@dataclass(frozen=True)
class Issue:
    """What an engine function found: the message (naming the engine), the fix and the evidence."""

    message: str
    fix: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


def leaf(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def lora_modules(ctx: AdapterView) -> dict[str, str]:
    """Module path -> last component, for every module carrying LoRA tensors."""
    return {m: leaf(m) for m in sorted(ctx.by_module)}


def describe_modules(modules: Iterable[str], limit: int = 3) -> str:
    """`6 module(s): q_proj ×3, v_proj ×3 (e.g. model.layers.0.self_attn.q_proj)`."""
    listed = sorted(modules)
    kinds = Counter(leaf(m) for m in listed)
    counts = ", ".join(f"{k} ×{n}" for k, n in sorted(kinds.items()))
    examples = ", ".join(listed[:limit])
    return f"{len(listed)} module(s): {counts} (e.g. {examples})"


def config_max_rank(ctx: AdapterView) -> int | None:
    """The largest rank the config declares (`r` and `rank_pattern` values), as engines read it."""
    cfg = ctx.config
    if cfg is None or cfg.r is None:
        return None
    return max([cfg.r, *cfg.rank_pattern.values()])


def uses_dora(ctx: AdapterView) -> bool:
    cfg = ctx.config
    declared = bool(cfg is not None and cfg.raw.get("use_dora"))
    return declared or any(t.part == "lora_magnitude_vector" for t in ctx.lora)


def applied_modules(ctx: AdapterView) -> dict[str, str]:
    """LoRA modules that land on a module of the base (placement `ok`), with their last component."""
    return {m: leaf(m) for m, p in ctx.placements.items() if p.status == "ok" and m in ctx.by_module}


def module_evidence(modules: Iterable[str]) -> dict[str, Any]:
    listed = sorted(modules)
    return {"modules": len(listed), "kinds": sorted({leaf(m) for m in listed}), "examples": listed[:3]}
