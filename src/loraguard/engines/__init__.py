"""Serving-engine profiles: will vLLM, SGLang or LoRAX refuse this adapter, or serve it as a no-op?

`loraguard check --engine vllm` (repeatable; default `peft`, which adds nothing to the base rules) runs
the LG7xx rules of the requested engines. Each engine module holds one `EngineProfile` (the version
described and the source of each limit) and the small functions the rules call. Nothing here imports
torch: everything is read from the config, the safetensors header and the base's config.json.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Literal, Protocol

from loraguard.engines import lorax, sglang, vllm
from loraguard.engines.base import AdapterView, EngineOptions, EngineProfile, Issue, Limit
from loraguard.errors import InputError
from loraguard.findings import Finding

__all__ = [
    "DEFAULT_ENGINES",
    "ENGINES",
    "PROFILES",
    "AdapterView",
    "CheckedForEngines",
    "EngineName",
    "EngineOptions",
    "EngineProfile",
    "EngineVerdict",
    "Issue",
    "Limit",
    "engine_verdicts",
    "normalize_engines",
]


class EngineName(StrEnum):
    """Values of `--engine`."""

    peft = "peft"
    vllm = "vllm"
    sglang = "sglang"
    lorax = "lorax"


PROFILES: dict[str, EngineProfile] = {p.name: p for p in (vllm.PROFILE, sglang.PROFILE, lorax.PROFILE)}
"""The serving engines with a profile, by `--engine` name (`peft` has none: the base rules are PEFT's)."""
ENGINES: tuple[str, ...] = tuple(e.value for e in EngineName)
DEFAULT_ENGINES: tuple[str, ...] = ("peft",)

EngineVerdict = Literal["ok", "refused", "silent-noop"]


def normalize_engines(engines: str | Iterable[str] | None) -> tuple[str, ...]:
    """Lower-cased, de-duplicated engine names in the given order; `("peft",)` when empty.

    Raises `InputError` naming the known engines for an unknown one.
    """
    items = [engines] if isinstance(engines, str) else list(engines or ())
    names = tuple(dict.fromkeys(str(e).strip().lower() for e in items if str(e).strip()))
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise InputError(f"Unknown engine(s) {', '.join(unknown)}; known: {', '.join(ENGINES)}.")
    return names or DEFAULT_ENGINES


class CheckedForEngines(Protocol):
    """What `engine_verdicts` reads of a check's result (`loraguard.checks.report.CheckReport` is one)."""

    @property
    def engines(self) -> tuple[str, ...]: ...

    @property
    def errors(self) -> tuple[Finding, ...]: ...


def engine_verdicts(report: CheckedForEngines) -> dict[str, EngineVerdict]:
    """Per serving engine checked (`report.engines` minus `peft`): `refused`, `silent-noop` or `ok`.

    Only the engine's own error findings count (the resolver warning LG711 does not); combine with
    `report.verdict`, which says whether the adapter fits the base at all.
    """
    verdicts: dict[str, EngineVerdict] = {}
    for engine in report.engines:
        if engine not in PROFILES:
            continue
        own = {f.category for f in report.errors if f.evidence.get("engine") == engine}
        verdicts[engine] = (
            "refused" if "engine-incompatible" in own else "silent-noop" if "engine-silent-noop" in own else "ok"
        )
    return verdicts
