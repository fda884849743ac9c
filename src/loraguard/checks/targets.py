"""PEFT's target-module matching, re-stated without importing PEFT (which imports torch).

Mirrors `peft.tuners.tuners_utils.check_target_module_exists` (PEFT 0.21) and
`peft.utils.other.get_pattern_key`; `tests/checks/test_targets.py` compares both on many keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from loraguard.adapter.config import AdapterConfig

_HEAD_NAMES = ("lm_head", "score", "classifier", "qa_outputs", "pre_classifier")


def matches_target(config: AdapterConfig, key: str) -> bool:
    """Would PEFT wrap the module named `key` (in the base model's `named_modules()`)?"""
    raw = config.raw
    exclude = raw.get("exclude_modules")
    if exclude:
        if isinstance(exclude, str):
            if re.fullmatch(exclude, key):
                return False
        elif key in exclude or any(key.endswith(f".{e}") for e in exclude):
            return False
    for m in config.modules_to_save:
        if re.match(rf"(^|.*\.){m}($|\..*)", key):
            return False
    targets = config.target_modules
    if targets is None:
        return False
    if isinstance(targets, str):
        return targets != "all-linear" and re.fullmatch(targets, key) is not None
    if key in targets:
        return True
    found = any(key.endswith(f".{t}") for t in targets)
    layers: Any = raw.get("layers_to_transform")
    using_layers = layers is not None and (len(layers) != 0 if isinstance(layers, list) else True)
    if not (found and using_layers):
        return found
    pattern = raw.get("layers_pattern")
    match = None
    if not pattern:
        match = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", key)
    else:
        for p in [pattern] if isinstance(pattern, str) else pattern:
            match = re.match(rf"(?:^|.*?\.){p}\.(?P<idx>\d+)\.", key)
            if match is not None:
                break
    if match is None:
        return False
    index = int(match["idx"])
    return index == layers if isinstance(layers, int) else index in layers


def is_all_linear(config: AdapterConfig) -> bool:
    targets = config.target_modules
    return isinstance(targets, str) and targets.lower() == "all-linear"


def is_head(module: str) -> bool:
    """Output embedding or classification head (PEFT's `all-linear` leaves these out)."""
    last = module.rsplit(".", 1)[-1]
    return last in _HEAD_NAMES or module.startswith(("classifier.", "score."))


def pattern_key(patterns: Iterable[str], key: str) -> str | None:
    """The `rank_pattern`/`alpha_pattern` key that applies to module `key` (PEFT: first match wins)."""
    for p in patterns:
        if re.match(rf"(.*\.)?({p})$", key):
            return p
    return None


def all_names(modules: Iterable[str]) -> set[str]:
    """Every module name and every container above it (PEFT matches targets against all of them)."""
    names: set[str] = set()
    for module in modules:
        parts = module.split(".")
        names.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return names
