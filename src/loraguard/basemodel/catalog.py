"""The popular open bases loraguard knows without a network: `catalog.json` (package data).

Built by `scripts/build_catalog.py` from real config.json files; each entry keeps the
architecture keys of its config: enough for `families.spec_from_config`, or for the transformers
skeleton (`skeleton.py`) of the model types `families.py` does not derive (BERT, T5, Whisper...).
Quantized or re-uploaded twins (`unsloth/...-bnb-4bit`, `...-GPTQ-Int4`) are aliases of the
entry they were made from, each with the public source that pairs them.
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

__all__ = [
    "CatalogAlias",
    "CatalogEntry",
    "catalog_names",
    "catalog_spec",
    "find_alias",
    "find_entry",
    "load_catalog",
    "search_catalog",
]


@dataclass(frozen=True)
class CatalogAlias:
    """A quantized or re-uploaded twin of a catalog model, e.g. `unsloth/llama-3-8b-bnb-4bit`."""

    name: str
    """Its Hub id."""
    target: str
    """The catalog model it was made from."""
    source: str
    """The public source that pairs it with `target`."""


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
    aliases: tuple[CatalogAlias, ...] = field(default=(), compare=False, hash=False, repr=False)
    """Quantized or re-uploaded twins of this model."""

    @property
    def model_type(self) -> str:
        """The config's `model_type` (`qwen2`, `llama`...)."""
        return str(self.config.get("model_type", ""))

    @property
    def short_name(self) -> str:
        """The part after `/`: `Qwen2.5-1.5B-Instruct`."""
        return self.name.rsplit("/", 1)[-1]

    @property
    def derivable(self) -> bool:
        """Whether `families.py` derives its modules from the config alone (no torch); else they
        come from a transformers skeleton built from the config (the `ml` extra)."""
        from loraguard.basemodel.families import SUPPORTED_MODEL_TYPES

        return self.model_type in SUPPORTED_MODEL_TYPES

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: what `loraguard catalog --format json` prints for this entry."""
        return {
            "name": self.name,
            "family": self.family,
            "variant": self.variant,
            "params": self.params,
            "model_type": self.model_type,
            "modules_from": "config" if self.derivable else "skeleton",
            "source": self.source,
            "aliases": [{"name": alias.name, "source": alias.source} for alias in self.aliases],
        }


@lru_cache(maxsize=1)
def _document() -> dict[str, Any]:
    text = resources.files("loraguard.basemodel").joinpath("catalog.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@lru_cache(maxsize=1)
def load_catalog() -> tuple[CatalogEntry, ...]:
    """Every catalog entry, in file order (sorted by name), each with its aliases."""
    document = _document()
    twins: dict[str, list[CatalogAlias]] = {}
    for item in document.get("aliases", []):
        alias = CatalogAlias(name=str(item["name"]), target=str(item["target"]), source=str(item["source"]))
        twins.setdefault(alias.target, []).append(alias)
    return tuple(
        CatalogEntry(
            name=str(item["name"]),
            family=str(item["family"]),
            variant=str(item["variant"]),
            params=int(item["params"]),
            source=str(item["source"]),
            config=MappingProxyType(dict(item["config"])),
            aliases=tuple(twins.get(str(item["name"]), ())),
        )
        for item in document["models"]
    )


@lru_cache(maxsize=1)
def _index() -> tuple[dict[str, CatalogEntry], dict[str, CatalogEntry], dict[str, tuple[CatalogAlias, CatalogEntry]]]:
    full: dict[str, CatalogEntry] = {}
    short: dict[str, CatalogEntry] = {}
    twins: dict[str, tuple[CatalogAlias, CatalogEntry]] = {}
    for entry in load_catalog():
        full.setdefault(entry.name.lower(), entry)
        short.setdefault(entry.short_name.lower(), entry)
        for alias in entry.aliases:
            twins.setdefault(alias.name.lower(), (alias, entry))
    return full, short, twins


def find_entry(name: str) -> CatalogEntry | None:
    """The entry named `name`, case-insensitively: the full id, or (for a bare name) the part after `/`;
    else the entry one of whose aliases is the full id `name`.

    `qwen2.5-1.5b-instruct` and `Qwen/Qwen2.5-1.5B-Instruct` both find `Qwen/Qwen2.5-1.5B-Instruct`,
    and so does its twin `unsloth/Qwen2.5-1.5B-Instruct-bnb-4bit`; an id with another organisation
    (`someone/Qwen2.5-1.5B-Instruct`) does not: it may be anything.
    """
    key = name.strip().strip("/").lower()
    full, short, _ = _index()
    if "/" in key:
        found = full.get(key)
        if found is None:
            twin = find_alias(key)
            found = twin[1] if twin is not None else None
        return found
    return short.get(key)


def find_alias(name: str) -> tuple[CatalogAlias, CatalogEntry] | None:
    """The alias whose Hub id is `name` (case-insensitive) and the entry it points to, else None."""
    return _index()[2].get(name.strip().strip("/").lower())


def search_catalog(query: str = "") -> tuple[CatalogEntry, ...]:
    """Entries whose name, family or one of whose aliases contains `query` (case-insensitive); all if empty."""
    needle = query.strip().lower()
    if not needle:
        return load_catalog()
    return tuple(
        entry
        for entry in load_catalog()
        if needle in entry.name.lower()
        or needle in entry.family.lower()
        or any(needle in alias.name.lower() for alias in entry.aliases)
    )


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
