"""Read `adapter_config.json` the way PEFT does: only `peft_type` is required, unknown keys are kept.

The file is untrusted: it is read with a size cap (`MAX_CONFIG_BYTES`) and a nesting cap, and every
typed property below returns a value only when it has the type PEFT needs (else None or empty), so no
rule ever meets `"r": "abc"`, NaN or a number where a list belongs. `config_problems()` says what is
wrong with each such field, as PEFT would fail on it (LG206 reports them); the regular expressions of
the config are compiled and matched through `patterns` (a `ConfigPatterns`, bounded in time).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from loraguard.adapter.patterns import ConfigPatterns, PatternProblem
from loraguard.errors import AdapterFormatError, InputLimitError
from loraguard.fileio import loads_bounded, read_bounded

LORA_TYPES = frozenset({"LORA", "ADALORA"})
MAX_CONFIG_BYTES = 16 << 20
"""Largest adapter_config.json read (16 MiB). PEFT writes kilobytes; a config listing the full path of
every module of a 128-expert MoE model is about 1 MB."""
BIAS_VALUES = ("none", "all", "lora_only")
"""`bias` values PEFT implements (any other: NotImplementedError when the layers are built)."""


class NameSet:
    """Module names from a config list (`target_modules`, `exclude_modules`), indexed for PEFT's rule
    "`key` equals a name or ends with `"." + name`" in time bounded by the longest name, not the count."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)
        self.lengths = frozenset(len(n) for n in self.names)
        self.longest = max(self.lengths, default=-1)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def hits(self, key: str, *, whole: bool = True) -> list[str]:
        """The names `key` equals (with `whole`) or ends with after a dot, shortest first."""
        found = []
        end = len(key)
        pos = key.rfind(".")
        while pos != -1 and end - pos - 1 <= self.longest:
            if end - pos - 1 in self.lengths and key[pos + 1 :] in self.names:
                found.append(key[pos + 1 :])
            pos = key.rfind(".", 0, pos)
        if whole and key in self.names:
            found.append(key)
        return found

    def ends(self, key: str) -> bool:
        """PEFT's `any(key.endswith("." + name) for name in names)`."""
        return bool(self.hits(key, whole=False))


@dataclass(frozen=True)
class ConfigProblem:
    """One config field PEFT cannot use as written."""

    field: str
    message: str


@dataclass(frozen=True)
class AdapterConfig:
    """The parsed config; `raw` holds every key exactly as written."""

    raw: Mapping[str, Any] = field(repr=False)
    path: Path | None = None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.raw.get(key, default)
        return default if value is None else value

    @property
    def peft_type(self) -> str:
        value = self.raw.get("peft_type")
        if not value:
            return "LORA"
        return value.upper() if isinstance(value, str) else "INVALID"

    @property
    def is_lora(self) -> bool:
        return self.peft_type in LORA_TYPES

    @property
    def task_type(self) -> str | None:
        value = self.raw.get("task_type")
        return value.upper() if isinstance(value, str) and value else None

    @property
    def r(self) -> int | None:
        """`r` when it is an integer (PEFT refuses floats, strings and booleans); may be <= 0."""
        value = self.raw.get("r")
        return value if _is_int(value) else None

    @property
    def lora_alpha(self) -> float | None:
        """`lora_alpha` when it is a finite number (PEFT accepts a boolean as 0 or 1 too)."""
        value = self.raw.get("lora_alpha")
        return value if _is_real(value) else None

    @property
    def target_modules(self) -> list[str] | str | None:
        """A regex string, a list of names, or None (also when the field has another type)."""
        return _names_or_regex(self.raw.get("target_modules"))

    @property
    def exclude_modules(self) -> list[str] | str | None:
        return _names_or_regex(self.raw.get("exclude_modules"))

    @property
    def modules_to_save(self) -> list[str]:
        value: Any = self.raw.get("modules_to_save")
        return list(value) if _is_str_list(value) else []

    @property
    def rank_pattern(self) -> dict[str, int]:
        """The entries of `rank_pattern` PEFT can use (string key, positive integer rank), in order."""
        value = self.raw.get("rank_pattern")
        if not isinstance(value, Mapping):
            return {}
        return {k: v for k, v in value.items() if isinstance(k, str) and _is_int(v) and v > 0}

    @property
    def alpha_pattern(self) -> dict[str, float]:
        value = self.raw.get("alpha_pattern")
        if not isinstance(value, Mapping):
            return {}
        return {k: v for k, v in value.items() if isinstance(k, str) and _is_real(v)}

    @property
    def layers_to_transform(self) -> list[int] | None:
        value: Any = self.raw.get("layers_to_transform")
        if _is_int(value):
            return [value]
        return list(value) if isinstance(value, list) and all(_is_int(v) for v in value) else None

    @property
    def layers_pattern(self) -> list[str] | None:
        value: Any = self.raw.get("layers_pattern")
        if isinstance(value, str):
            return [value]
        return list(value) if _is_str_list(value) else None

    @property
    def base_model(self) -> str | None:
        value = self.raw.get("base_model_name_or_path")
        return value if isinstance(value, str) and value else None

    @cached_property
    def target_names(self) -> NameSet:
        """`target_modules` as a set when it is a list (PEFT makes it one too), else empty."""
        targets = self.target_modules
        return NameSet(targets if isinstance(targets, list) else ())

    @cached_property
    def exclude_names(self) -> NameSet:
        excluded = self.exclude_modules
        return NameSet(excluded if isinstance(excluded, list) else ())

    @cached_property
    def patterns(self) -> ConfigPatterns:
        """The bounded regex engine for this config's patterns (one time budget per config)."""
        return ConfigPatterns()

    def problems(self) -> tuple[ConfigProblem | PatternProblem, ...]:
        """Fields PEFT cannot use as written, and the patterns that failed so far (see `config_problems`)."""
        return tuple(config_problems(self))


def config_problems(config: AdapterConfig) -> Iterator[ConfigProblem | PatternProblem]:
    """What PEFT would fail on in `config`, field by field: wrong types (`"r": "abc"`, `8.5`, `true`,
    `[8]`, `"8"`; `"lora_alpha": "sixteen"`), values out of range, contradictory fields, and every
    regular expression that does not compile, is too long, or has failed in matching so far."""
    raw = config.raw
    peft_type = raw.get("peft_type")
    if peft_type is not None and not isinstance(peft_type, str):
        yield _problem("peft_type", peft_type, "a string such as LORA", "fails to look the adapter type up")
    task_type = raw.get("task_type")
    if task_type is not None and not isinstance(task_type, str):
        yield _problem("task_type", task_type, "a string such as CAUSAL_LM, or null", "fails to pick the model class")
    base = raw.get("base_model_name_or_path")
    if base is not None and not isinstance(base, str):
        yield _problem("base_model_name_or_path", base, "a string or null", "cannot load the base it names")
    if not config.is_lora:
        return
    yield from _rank_problems(raw)
    yield from _list_problems(raw)
    yield from _regex_problems(config)


def _rank_problems(raw: Mapping[str, Any]) -> Iterator[ConfigProblem]:
    if "r" in raw and not (_is_int(raw["r"]) and raw["r"] > 0):
        yield _problem("r", raw["r"], "a positive integer", "fails when it builds the LoRA layers")
    if "lora_alpha" in raw and not _is_real(raw["lora_alpha"]):
        yield _problem("lora_alpha", raw["lora_alpha"], "a finite number", "cannot compute the scaling alpha / r")
    dropout = raw.get("lora_dropout", 0.0)
    if "lora_dropout" in raw and not (_is_real(dropout) and 0.0 <= dropout <= 1.0):
        yield _problem("lora_dropout", dropout, "a number from 0 to 1", "fails to build the dropout layer")
    bias = raw.get("bias", "none")
    if "bias" in raw and bias not in BIAS_VALUES:
        yield _problem("bias", bias, "'none', 'all' or 'lora_only'", "raises NotImplementedError")
    for name, check, need in (
        ("rank_pattern", lambda v: _is_int(v) and v > 0, "positive integer ranks"),
        ("alpha_pattern", _is_real, "finite numbers"),
    ):
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            yield _problem(name, value, "an object mapping module patterns to " + need, "fails to read it")
            continue
        bad = [(k, v) for k, v in value.items() if not check(v)]
        if bad:
            key, item = bad[0]
            yield ConfigProblem(
                name,
                f"`{name}` needs {need}, but {len(bad)} entr{'y is' if len(bad) == 1 else 'ies are'} not, e.g. "
                f"{_show(key)}: {_show(item)} ({_kind(item)}): PEFT fails when it builds those layers.",
            )


def _list_problems(raw: Mapping[str, Any]) -> Iterator[ConfigProblem]:
    for name in ("target_modules", "exclude_modules", "layers_pattern"):
        value = raw.get(name)
        if value is not None and not isinstance(value, str) and not _is_str_list(value):
            yield _problem(name, value, "a string (a regex) or a list of strings", "fails to match modules")
    saved = raw.get("modules_to_save")
    if saved is not None and not _is_str_list(saved):
        yield _problem("modules_to_save", saved, "a list of module names", "fails or saves the wrong modules")
    layers = raw.get("layers_to_transform")
    if layers is not None and not (_is_int(layers) or (isinstance(layers, list) and all(_is_int(v) for v in layers))):
        yield _problem("layers_to_transform", layers, "an integer or a list of integers", "fails to pick layers")
    targets = raw.get("target_modules")
    if isinstance(targets, str) and (raw.get("layers_to_transform") is not None or raw.get("layers_pattern")):
        yield ConfigProblem(
            "target_modules",
            "`target_modules` is a regex string, so `layers_to_transform` and `layers_pattern` must be null: "
            "PEFT raises ValueError when it reads this config.",
        )
    if raw.get("layers_pattern") and raw.get("layers_to_transform") is None:
        yield ConfigProblem(
            "layers_pattern",
            "`layers_pattern` is set but `layers_to_transform` is not: PEFT raises ValueError when it reads "
            "this config.",
        )


def _regex_problems(config: AdapterConfig) -> Iterator[PatternProblem]:
    """Compile every regex the config gives PEFT (as PEFT builds it), then report every pattern problem
    met so far, including those found while matching."""
    engine = config.patterns
    for name in ("target_modules", "exclude_modules"):
        value = config.raw.get(name)
        if isinstance(value, str) and value.lower() != "all-linear":
            engine.validate(name, value)
    for pattern in config.layers_pattern or ():
        engine.validate("layers_pattern", pattern, layer_regex(pattern))
    for module in config.modules_to_save:
        engine.validate("modules_to_save", module, saved_regex(module))
    for name in ("rank_pattern", "alpha_pattern"):
        value = config.raw.get(name)
        for key in value if isinstance(value, Mapping) else ():
            if isinstance(key, str):
                engine.validate(name, key, pattern_regex(key))
    yield from engine.problems


def layer_regex(pattern: str) -> str:
    """The regex PEFT builds around a `layers_pattern` entry (`check_target_module_exists`)."""
    return rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\."


def saved_regex(module: str) -> str:
    """The regex PEFT builds around a `modules_to_save` entry to keep LoRA off those modules."""
    return rf"(^|.*\.){module}($|\..*)"


def pattern_regex(key: str) -> str:
    """The regex PEFT builds around a `rank_pattern`/`alpha_pattern` key (`get_pattern_key`)."""
    return rf"(.*\.)?({key})$"


def read_adapter_config(path: Path) -> AdapterConfig:
    """Parse `path`; raise `AdapterFormatError` naming the file for an unreadable, oversized, too deeply
    nested or invalid JSON file, or one that is not a JSON object."""
    try:
        data = loads_bounded(read_bounded(path, MAX_CONFIG_BYTES))
    except OSError as exc:
        raise AdapterFormatError(
            f"{path}: cannot read the adapter config ({exc.strerror or exc}).", path=path
        ) from None
    except InputLimitError as exc:
        raise AdapterFormatError(
            f"{path}: {str(exc).removeprefix(f'{path}: ')}. Fix the file or re-save the adapter with PEFT.",
            path=path,
        ) from None
    if not isinstance(data, dict):
        raise AdapterFormatError(f"{path}: expected a JSON object, got {type(data).__name__}.", path=path)
    return AdapterConfig(raw=data, path=path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    """A finite int or float (a boolean counts: Python and PEFT compute with it as 0 or 1)."""
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _names_or_regex(value: Any) -> list[str] | str | None:
    if isinstance(value, str):
        return value
    return list(value) if _is_str_list(value) else None


def _kind(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "not finite"
    kinds = {bool: "a boolean", str: "a string", list: "a list", dict: "an object", float: "a float", int: "an integer"}
    return kinds.get(type(value), type(value).__name__ if value is not None else "null")


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _problem(name: str, value: Any, need: str, fails: str) -> ConfigProblem:
    return ConfigProblem(name, f"`{name}` is {_show(value)} ({_kind(value)}); PEFT needs {need} and {fails}.")
