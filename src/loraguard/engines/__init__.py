"""Serving-engine profiles: will vLLM, SGLang or LoRAX refuse this adapter, or serve it as a no-op?

`loraguard check --engine vllm` (repeatable; default `peft`, which adds nothing to the base rules) runs
the LG7xx rules of the requested engines. Each engine module holds one `EngineProfile` (the version
described and the source of each limit) and the small functions the rules call. Nothing here imports
torch: everything is read from the config, the safetensors header and the base's config.json.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from loraguard.engines import lorax, sglang, vllm
from loraguard.engines.base import EngineOptions, EngineProfile, Issue, Limit
from loraguard.errors import InputError

if TYPE_CHECKING:
    from loraguard.checks.context import CheckContext
    from loraguard.findings import Finding
    from loraguard.report.model import CheckReport

__all__ = [
    "DEFAULT_ENGINES",
    "ENGINES",
    "PROFILES",
    "EngineName",
    "EngineOptions",
    "EngineProfile",
    "EngineVerdict",
    "Issue",
    "Limit",
    "engine_findings",
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


def engine_findings(
    ctx: CheckContext, engines: str | Iterable[str], options: EngineOptions | None = None
) -> list[Finding]:
    """The LG7xx findings for `engines` on an existing context (the context itself is left unchanged)."""
    from loraguard.checks.registry import select_rules

    view = copy.copy(ctx)
    view.engines = normalize_engines(engines)
    view.engine_options = options if options is not None else EngineOptions()
    return [finding for r in select_rules(["LG7"]) for finding in r.func(view)]


def engine_verdicts(report: CheckReport) -> dict[str, EngineVerdict]:
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
