"""Fallback for architectures `families.py` does not model: a transformers skeleton on `meta`.

The task class (`AutoModelForSequenceClassification`...) is built from config.json on the meta
device (no weights, no memory), never with `trust_remote_code`. Its Linear / Conv1D / Embedding
leaves become a `BaseSpec`, cached as JSON under `$LORAGUARD_CACHE/skeletons/` (default
`~/.cache/loraguard`) so that the next check of the same config does not import torch.

`spec_from_model` lists a model that already exists (the user's, live in memory) the same way, for
`loraguard.load_adapter` and `loraguard.check(adapter, base=model)`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from loraguard.basemodel.families import check_counts
from loraguard.basemodel.spec import BaseSpec, ModuleShape
from loraguard.errors import BaseModelResolutionError, MissingExtraError

__all__ = ["TASK_AUTO_CLASSES", "cache_dir", "cache_path", "spec_from_model", "spec_from_skeleton"]

CACHE_FORMAT = 1

TASK_AUTO_CLASSES: dict[str, str] = {
    "CAUSAL_LM": "AutoModelForCausalLM",
    "SEQ_CLS": "AutoModelForSequenceClassification",
    "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM",
    "TOKEN_CLS": "AutoModelForTokenClassification",
    "QUESTION_ANS": "AutoModelForQuestionAnswering",
    "FEATURE_EXTRACTION": "AutoModel",
}
"""PEFT task type -> the transformers auto class whose module names the adapter carries."""

# Keys that name or date a config but never change its modules: left out of the cache key.
_VOLATILE_KEYS = frozenset({"_name_or_path", "transformers_version", "torch_dtype", "dtype", "_commit_hash"})


def cache_dir() -> Path:
    """`$LORAGUARD_CACHE`, else `~/.cache/loraguard`."""
    root = os.environ.get("LORAGUARD_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "loraguard"


def _transformers_version(feature: str) -> str:
    try:
        return metadata.version("transformers")
    except metadata.PackageNotFoundError:
        raise MissingExtraError(feature, "ml") from None


def cache_path(config: Mapping[str, Any], task: str | None, transformers_version: str) -> Path:
    """Where the skeleton spec of `config` for `task` is cached."""
    canonical = json.dumps(
        {k: v for k, v in config.items() if k not in _VOLATILE_KEYS},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    digest = hashlib.sha256(f"{canonical}\n{task}\n{transformers_version}".encode()).hexdigest()
    return cache_dir() / "skeletons" / f"{digest}.json"


def _feature(config: Mapping[str, Any]) -> str:
    return f"Checking a {config.get('model_type') or 'non-standard'} base"


def spec_from_skeleton(
    config: Mapping[str, Any],
    *,
    name: str,
    task: str | None,
    path: str | None = None,
) -> BaseSpec:
    """The `BaseSpec` of the transformers class for `task`, built on the meta device (cached).

    Raises `MissingExtraError` without torch/transformers, `BaseModelResolutionError` for
    configs transformers cannot build (remote code, unknown model_type, inconsistent values).
    """
    feature = _feature(config)
    version = _transformers_version(feature)
    target = cache_path(config, task, version)
    cached = _read_cache(target)
    if cached is None:
        cached = _build_skeleton(config, task, where=path or name)
        _write_cache(target, cached)
    return _spec_from_record(cached, config=config, name=name, task=task, path=path)


def _read_cache(target: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != CACHE_FORMAT:
        return None
    return record


def _write_cache(target: Path, record: Mapping[str, Any]) -> None:
    """Best effort: an unwritable cache only costs the next call a rebuild."""
    from loraguard.fileio import atomic_write

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, json.dumps(record, separators=(",", ":")), overwrite=True)
    except OSError:
        return


def _spec_from_record(
    record: Mapping[str, Any],
    *,
    config: Mapping[str, Any],
    name: str,
    task: str | None,
    path: str | None,
    source: Literal["skeleton", "live"] = "skeleton",
) -> BaseSpec:
    modules = {
        module: ModuleShape(int(shape[0]), int(shape[1]), shape[2]) for module, shape in record["modules"].items()
    }
    return BaseSpec(
        name=name,
        model_type=str(record["model_type"]),
        architecture=str(record["architecture"]),
        task=task if task is not None else "",
        modules=modules,
        num_layers=int(record["num_layers"]),
        hidden_size=int(record["hidden_size"]),
        vocab_size=int(record["vocab_size"]),
        layer_prefixes=tuple(record["layer_prefixes"]),
        param_count=int(record["param_count"]),
        source=source,
        config=dict(config),
        path=path,
    )


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)


def _config_object(config: Mapping[str, Any], where: str) -> Any:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type = config.get("model_type")
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        import transformers

        if config.get("auto_map"):
            raise BaseModelResolutionError(
                f"The base {where} is remote code (model_type {model_type!r}, auto_map in config.json) "
                f"that transformers {transformers.__version__} does not know; loraguard never runs "
                "remote code. Check the adapter against a base with a standard architecture, e.g. "
                "the same model converted to its transformers-native model_type.",
                path=where,
            )
        raise BaseModelResolutionError(
            f"The base {where} has model_type {model_type!r}, unknown to transformers "
            f"{transformers.__version__}: cannot list its modules. Upgrade transformers, or pass "
            "the config.json of a supported base.",
            path=where,
        )
    # a deep copy: some config classes rewrite nested dicts in place (Gemma 4's vision config turns
    # rope_parameters.rope_type "default" into "axial"), which would change the caller's (the catalog's) config
    clean = copy.deepcopy({k: v for k, v in config.items() if k not in {"auto_map", "quantization_config"}})
    try:
        return CONFIG_MAPPING[model_type].from_dict(clean)
    except Exception as exc:  # transformers validates configs with assorted exception types
        raise BaseModelResolutionError(
            f"config.json of {where} is not a valid {model_type} config for transformers: {exc}. "
            "Pass the model's original config.json.",
            path=where,
        ) from exc


def _model_class(config_obj: Any, config: Mapping[str, Any], task: str | None) -> Any:
    """The class PEFT would have wrapped: the task's auto class, else `architectures[0]`, else AutoModel."""
    import transformers

    archs = config.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else None
    auto_name = TASK_AUTO_CLASSES.get(task) if task else None
    candidates: list[Any] = []
    if auto_name is not None:
        auto = getattr(transformers, auto_name)
        mapping = getattr(auto, "_model_mapping", None)
        if mapping is None or type(config_obj) in mapping:
            candidates.append(auto)
    if arch is not None and isinstance(getattr(transformers, arch, None), type):
        candidates.append(getattr(transformers, arch))
    candidates.append(transformers.AutoModel)
    return candidates[0]


def _build_skeleton(config: Mapping[str, Any], task: str | None, *, where: str) -> dict[str, Any]:
    feature = _feature(config)
    try:
        import torch
        import transformers
    except ImportError:
        raise MissingExtraError(feature, "ml") from None

    check_counts(config, where=where)
    with _quiet_transformers():
        config_obj = _config_object(config, where)
        cls = _model_class(config_obj, config, task)
        try:
            with torch.device("meta"):
                model = cls.from_config(config_obj) if cls.__name__.startswith("Auto") else cls(config_obj)
        except Exception as exc:  # inconsistent configs fail deep inside model constructors
            raise BaseModelResolutionError(
                f"transformers {transformers.__version__} cannot build {cls.__name__} from the config.json "
                f"of {where}: {type(exc).__name__}: {exc}. Pass the model's original config.json.",
                path=where,
            ) from exc

    return _record_of(model, config_obj, config)


def spec_from_model(model: Any, *, name: str, task: str | None, path: str | None = None) -> BaseSpec:
    """The `BaseSpec` of a model that exists (a live `PreTrainedModel`, or a `PeftModel` around one).

    Its Linear / Conv1D / Embedding leaves are listed as they are, under transformers' names. A
    wrapper that exposes `base_layer` (PEFT's LoRA layers) or `original_module` (PEFT's
    `modules_to_save` wrapper) counts as the module it wraps; the adapters' own sub-modules are left
    out, and so are their parameters from `param_count`. Raises `MissingExtraError` without torch.
    """
    try:
        import transformers  # noqa: F401  (Conv1D is transformers'; a live model has it installed)
    except ImportError:
        raise MissingExtraError("Listing a live model's modules", "ml") from None
    inner = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    config_obj: Any = getattr(inner, "config", None)
    config = config_obj.to_dict() if callable(getattr(config_obj, "to_dict", None)) else {}
    record = _record_of(inner, config_obj, config, duck_linear=True)
    return _spec_from_record(record, config=config, name=name, task=task, path=path, source="live")


def _record_of(model: Any, config_obj: Any, config: Mapping[str, Any], *, duck_linear: bool = False) -> dict[str, Any]:
    """The cacheable description of `model`'s targetable leaves (see `spec_from_model` for wrappers).

    `duck_linear`: also a leaf module with integer `in_features` and `out_features` that is no
    `nn.Linear` (GPTQ's, AWQ's and other quantized linear layers, which PEFT adapts as well).
    """
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    wrappers: list[str] = []
    modules: dict[str, list[Any]] = {}
    for module_name, found in model.named_modules():
        if any(module_name.startswith(f"{w}.") for w in wrappers):
            continue  # inside an adapter wrapper: its base layer was listed under the wrapper's name
        module = found
        inner = getattr(found, "base_layer", None)
        if inner is None:
            inner = getattr(found, "original_module", None)
        if isinstance(inner, nn.Module) and module_name:
            wrappers.append(module_name)
            module = inner
        if isinstance(module, nn.Embedding):
            modules[module_name] = [module.num_embeddings, module.embedding_dim, "embedding"]
        elif isinstance(module, Conv1D):
            rows, cols = module.weight.shape
            modules[module_name] = [int(rows), int(cols), "conv1d"]
        elif isinstance(module, nn.Linear) or (duck_linear and _linear_like(module)):
            modules[module_name] = [int(module.in_features), int(module.out_features), "linear"]
    prefixes, num_layers = _layer_stacks(model, nn.ModuleList, modules)
    text = config_obj.get_text_config() if hasattr(config_obj, "get_text_config") else config_obj
    params = sum(p.numel() for n, p in model.named_parameters() if _outside_adapters(n, wrappers))
    return {
        "format": CACHE_FORMAT,
        "model_type": str(config.get("model_type")),
        "architecture": type(model).__name__,
        "modules": modules,
        "num_layers": num_layers,
        "hidden_size": _int_attr(text, "hidden_size"),
        "vocab_size": _int_attr(text, "vocab_size"),
        "layer_prefixes": prefixes,
        "param_count": int(params),
    }


def _linear_like(module: Any) -> bool:
    sizes = (getattr(module, "in_features", None), getattr(module, "out_features", None))
    has_children = next(iter(module.children()), None) is not None
    return not has_children and all(isinstance(v, int) and not isinstance(v, bool) for v in sizes)


def _outside_adapters(param: str, wrappers: list[str]) -> bool:
    """False for a parameter of an adapter inside a wrapper (its base layer's parameters count)."""
    for w in wrappers:
        if param.startswith(f"{w}."):
            return param[len(w) + 1 :].startswith(("base_layer.", "original_module."))
    return True


def _int_attr(obj: Any, attr: str) -> int:
    value = getattr(obj, attr, None)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


_NUMBERED = re.compile(r"(^|\.)\d+(\.|$)")


def _layer_stacks(model: Any, module_list: Any, leaves: Mapping[str, Any]) -> tuple[list[str], int]:
    """Top-level ModuleLists of numbered blocks holding targetable leaves, and the longest's length."""
    prefixes: list[str] = []
    longest = 0
    for name, module in model.named_modules():
        if not name or not isinstance(module, module_list) or _NUMBERED.search(name):
            continue
        if not any(leaf.startswith(f"{name}.") for leaf in leaves):
            continue
        prefixes.append(name)
        longest = max(longest, len(module))
    return prefixes, longest
