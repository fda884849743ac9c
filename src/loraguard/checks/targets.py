"""PEFT's target-module matching, re-stated without importing PEFT (which imports torch).

Mirrors `peft.tuners.tuners_utils.check_target_module_exists` (PEFT 0.21) and
`peft.utils.other.get_pattern_key`; `tests/checks/test_targets.py` compares both on many keys.

PEFT's own loops are linear in the number of target names per module (quadratic over a model); here a
module name is looked up by its dot-suffixes in a set, so matching costs the name's depth whatever the
length of `target_modules`. Regular expressions from the config run through the config's bounded engine
(`AdapterConfig.patterns`): one PEFT cannot use raises `ConfigPatternError` (the check skips the rule
that asked; LG206 reports the pattern).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from loraguard.adapter.config import AdapterConfig, NameSet, layer_regex, pattern_regex, saved_regex
from loraguard.adapter.patterns import ConfigPatterns, is_literal

_HEAD_NAMES = ("lm_head", "score", "classifier", "qa_outputs", "pre_classifier")


def suffixes(key: str) -> Iterator[str]:
    """`key` and every part of it after a dot: `a.b.c` → `a.b.c`, `b.c`, `c` (PEFT's `endswith("." + t)`)."""
    yield key
    start = key.find(".")
    while start != -1:
        yield key[start + 1 :]
        start = key.find(".", start + 1)


def matches_target(config: AdapterConfig, key: str) -> bool:
    """Would PEFT wrap the module named `key` (in the base model's `named_modules()`)?"""
    engine = config.patterns
    exclude = config.exclude_modules
    if exclude:
        if isinstance(exclude, str):
            if engine.fullmatch("exclude_modules", exclude, exclude, key):
                return False
        elif key in config.exclude_names or config.exclude_names.ends(key):
            return False
    for m in config.modules_to_save:
        if _is_saved(engine, m, key):
            return False
    targets = config.target_modules
    if targets is None:
        return False
    if isinstance(targets, str):
        return targets != "all-linear" and engine.fullmatch("target_modules", targets, targets, key)
    names = config.target_names
    if key in names:
        return True
    found = names.ends(key)
    layers: Any = config.raw.get("layers_to_transform")
    using_layers = layers is not None and (len(layers) != 0 if isinstance(layers, list) else True)
    if not (found and using_layers):
        return found
    wanted = config.layers_to_transform
    if wanted is None:  # not integers: PEFT fails on the config (LG206 says so)
        return False
    index = _layer_index(config, engine, key)
    return index is not None and index in set(wanted)


def _is_saved(engine: ConfigPatterns, module: str, key: str) -> bool:
    """PEFT's `re.match(rf"(^|.*\\.){m}($|\\..*)", key)`: a plain name must be one dot-component of `key`."""
    if is_literal(module):
        return module in key.split(".")
    return engine.match("modules_to_save", module, saved_regex(module), key) is not None


def _layer_index(config: AdapterConfig, engine: ConfigPatterns, key: str) -> int | None:
    patterns = config.layers_pattern
    if not patterns or not any(patterns):
        return default_layer_index(key)
    for p in patterns:
        match = engine.match("layers_pattern", p, layer_regex(p), key)
        if match is not None:
            return int(match["idx"])
    return None


def default_layer_index(key: str) -> int | None:
    """PEFT's `re.match(r".*?\\.[^.]*\\.(?P<idx>\\d+)\\.", key)` without a regex, in linear time: the
    first dot-component made of digits that has at least two components before it and one after."""
    parts = key.split(".")
    for j in range(2, len(parts) - 1):
        if parts[j].isdecimal():
            return int(parts[j])
    return None


def is_all_linear(config: AdapterConfig) -> bool:
    targets = config.target_modules
    return isinstance(targets, str) and targets.lower() == "all-linear"


def is_head(module: str) -> bool:
    """Output embedding or classification head (PEFT's `all-linear` leaves these out)."""
    last = module.rsplit(".", 1)[-1]
    return last in _HEAD_NAMES or module.startswith(("classifier.", "score."))


class PatternKeys:
    """Which key of a `rank_pattern`/`alpha_pattern` applies to a module, PEFT's first match winning.

    Plain names are found by the module's dot-suffixes in a dict (constant time per module); only the
    regex keys listed before the first plain name that matches are tried, in order, through `engine`.
    """

    def __init__(self, patterns: Iterable[str], engine: ConfigPatterns | None = None, field: str = "rank_pattern"):
        self.order = list(dict.fromkeys(patterns))
        self.engine = engine if engine is not None else ConfigPatterns()
        self.field = field
        self._literal: dict[str, int] = {}
        self._regex: list[tuple[int, str]] = []
        for i, p in enumerate(self.order):
            if is_literal(p):
                self._literal.setdefault(p, i)
            else:
                self._regex.append((i, p))
        self._names = NameSet(self._literal)

    @property
    def has_regex(self) -> bool:
        """Whether any pattern is a regex (literal names are set lookups: they cannot run away)."""
        return bool(self._regex)

    def key_for(self, module: str) -> str | None:
        """The first pattern (in the config's order) that matches `module`, else None."""
        first = min((self._literal[s] for s in self._names.hits(module)), default=len(self.order))
        for i, p in self._regex:
            if i >= first:
                break
            if self.engine.match(self.field, p, pattern_regex(p), module) is not None:
                return p
        return self.order[first] if first < len(self.order) else None


def pattern_key(patterns: Iterable[str], key: str, engine: ConfigPatterns | None = None) -> str | None:
    """The `rank_pattern`/`alpha_pattern` key that applies to module `key` (PEFT: first match wins).
    For many modules build one `PatternKeys` instead."""
    return PatternKeys(patterns, engine).key_for(key)


def matched_targets(config: AdapterConfig, modules: Iterable[str]) -> Mapping[str, set[str]]:
    """For list `target_modules`: each target name → the `modules` PEFT would wrap because of it."""
    names = config.target_names
    out: dict[str, set[str]] = {}
    for module in modules:
        hits = names.hits(module)
        if hits and matches_target(config, module):
            for target in hits:
                out.setdefault(target, set()).add(module)
    return out
