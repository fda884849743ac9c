"""The popular open bases loraguard knows without a network: `catalog.json` (package data).

Built by `scripts/build_catalog.py` from real config.json files; each entry keeps only the
architecture keys of its config, enough for `families.spec_from_config`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from loraguard.basemodel.spec import BaseSpec

__all__ = ["CatalogEntry", "catalog_names", "catalog_spec", "find_entry", "load_catalog"]


@dataclass(frozen=True)
class CatalogEntry:
    """One known base model."""

    name: str
    """Hub id, e.g. `Qwen/Qwen2.5-1.5B-Instruct`."""
    family: str
    """Release family, e.g. `qwen2.5`, `llama3.2`, `gemma2`."""
    variant: str
    """`base` or `instruct` (chat / post-trained)."""
    params: int
    source: str
    """Where the config came from."""
    config: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    """The architecture keys of the model's config.json (read-only)."""

    @property
    def model_type(self) -> str:
        """The config's `model_type` (`qwen2`, `llama`...)."""
        return str(self.config.get("model_type", ""))

    @property
    def short_name(self) -> str:
        """The part after `/`: `Qwen2.5-1.5B-Instruct`."""
        return self.name.rsplit("/", 1)[-1]


@lru_cache(maxsize=1)
def load_catalog() -> tuple[CatalogEntry, ...]:
    """Every catalog entry, in file order (sorted by name)."""
    text = resources.files("loraguard.basemodel").joinpath("catalog.json").read_text(encoding="utf-8")
    document = json.loads(text)
    return tuple(
        CatalogEntry(
            name=str(item["name"]),
            family=str(item["family"]),
            variant=str(item["variant"]),
            params=int(item["params"]),
            source=str(item["source"]),
            config=MappingProxyType(dict(item["config"])),
        )
        for item in document["models"]
    )


@lru_cache(maxsize=1)
def _index() -> tuple[dict[str, CatalogEntry], dict[str, CatalogEntry]]:
    full: dict[str, CatalogEntry] = {}
    short: dict[str, CatalogEntry] = {}
    for entry in load_catalog():
        full.setdefault(entry.name.lower(), entry)
        short.setdefault(entry.short_name.lower(), entry)
    return full, short


def find_entry(name: str) -> CatalogEntry | None:
    """The entry named `name`, case-insensitively: the full id, or (for a bare name) the part after `/`.

    `qwen2.5-1.5b-instruct` and `Qwen/Qwen2.5-1.5B-Instruct` both find `Qwen/Qwen2.5-1.5B-Instruct`;
    an id with another organisation (`someone/Qwen2.5-1.5B-Instruct`) does not: it may be anything.
    """
    key = name.strip().strip("/").lower()
    full, short = _index()
    if "/" in key:
        return full.get(key)
    return short.get(key)


def catalog_names() -> tuple[str, ...]:
    """The ids of every catalog entry."""
    return tuple(entry.name for entry in load_catalog())


@lru_cache(maxsize=512)
def catalog_spec(entry: CatalogEntry, task: str | None = "CAUSAL_LM") -> BaseSpec:
    """The `BaseSpec` of a catalog model for `task` (source `catalog`)."""
    from loraguard.basemodel.families import spec_from_config

    spec = spec_from_config(entry.config, name=entry.name, task=task)
    if spec is None:  # a task families.py does not model (TOKEN_CLS...): ask transformers
        from loraguard.basemodel.skeleton import spec_from_skeleton

        spec = spec_from_skeleton(entry.config, name=entry.name, task=task)
    return dataclasses.replace(spec, source="catalog")
