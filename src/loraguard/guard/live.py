"""A model the user already holds (or its config) as the `BaseSpec` the static check reads.

- a live model (`PreTrainedModel`, or a `PeftModel` around one): its modules are walked as they are
  (`basemodel.skeleton.spec_from_model`); its identity, and the config-derived spec to compare with,
  come from what `loraguard check --base` would read: the folder it was loaded from when that is a
  local folder (`resolve_base`), else its config (`spec_for_config`) under its `name_or_path`;
- a transformers config object or a config dict: `spec_for_config`, as for a config.json.

Nothing here imports torch: a live model means it is imported already; walking it imports
transformers' `Conv1D` (inside `spec_from_model`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loraguard.basemodel.resolve import resolve_base, spec_for_config
from loraguard.basemodel.skeleton import spec_from_model
from loraguard.basemodel.spec import BaseSpec
from loraguard.errors import InputError, LoraguardError

__all__ = ["LiveBase", "base_spec_of", "is_config", "is_live_model", "live_base", "task_of_class"]

_CLASS_TASKS = (
    ("ForSequenceClassification", "SEQ_CLS"),
    ("ForTokenClassification", "TOKEN_CLS"),
    ("ForQuestionAnswering", "QUESTION_ANS"),
    ("ForConditionalGeneration", "SEQ_2_SEQ_LM"),
    ("ForSeq2SeqLM", "SEQ_2_SEQ_LM"),
    ("ForCausalLM", "CAUSAL_LM"),
    ("LMHeadModel", "CAUSAL_LM"),
)


def is_live_model(obj: object) -> bool:
    """A torch module with a transformers-style `config` (a `PeftModel` counts: it forwards `config`)."""
    return callable(getattr(obj, "named_modules", None)) and getattr(obj, "config", None) is not None


def is_config(obj: object) -> bool:
    """A transformers `PretrainedConfig` (anything with `to_dict()` and a `model_type`) or a config dict."""
    if isinstance(obj, Mapping):
        return True
    return callable(getattr(obj, "to_dict", None)) and isinstance(getattr(obj, "model_type", None), str)


def task_of_class(name: str) -> str | None:
    """The PEFT task type a transformers class name stands for (`Qwen2ForCausalLM` -> `CAUSAL_LM`), else None."""
    for suffix, task in _CLASS_TASKS:
        if name.endswith(suffix):
            return task
    return "FEATURE_EXTRACTION" if name.endswith("Model") else None


@dataclass(frozen=True)
class LiveBase:
    """A live model's spec (what the check reads) and the spec its config gives (what it is compared with)."""

    spec: BaseSpec
    from_config: BaseSpec | None
    """The spec `loraguard check --base` would have built; None when the config cannot be read."""

    def differences(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """(modules only in the live model, only in the config, with other shapes: `name: (in, out) -> (in, out)`)."""
        if self.from_config is None:
            return (), (), ()
        live, config = self.spec.modules, self.from_config.modules
        only_live = tuple(sorted(set(live) - set(config)))
        only_config = tuple(sorted(set(config) - set(live)))
        reshaped = tuple(
            f"{name}: ({config[name].in_features}, {config[name].out_features}) -> "
            f"({live[name].in_features}, {live[name].out_features})"
            for name in sorted(set(live) & set(config))
            if (live[name].in_features, live[name].out_features)
            != (config[name].in_features, config[name].out_features)
        )
        return only_live, only_config, reshaped


def live_base(model: Any) -> LiveBase:
    """The `LiveBase` of `model` (see the module docstring)."""
    inner = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    task = task_of_class(type(inner).__name__)
    declared = str(getattr(inner, "name_or_path", "") or getattr(inner.config, "_name_or_path", "") or "")
    from_config = _config_spec(inner, declared, task)
    name = from_config.name if from_config is not None else declared or type(inner).__name__
    path = from_config.path if from_config is not None else None
    live = LiveBase(spec_from_model(inner, name=name, task=task, path=path), from_config)
    if from_config is not None and not any(live.differences()):
        # The same modules: count the architecture's parameters, not a quantized model's packed storage.
        live = LiveBase(replace(live.spec, param_count=from_config.param_count), from_config)
    return live


def _config_spec(inner: Any, declared: str, task: str | None) -> BaseSpec | None:
    folder = Path(declared).expanduser() if declared else None
    try:
        if folder is not None and (folder / "config.json").is_file():
            return resolve_base(folder, task=task)
        config = inner.config.to_dict()
        return spec_for_config(config, name=declared or str(config.get("model_type") or "model"), task=task)
    except LoraguardError:  # an architecture the config path cannot list: the live modules still can
        return None


def base_spec_of(base: Any, *, task: str | None = None) -> BaseSpec:
    """`base` as a `BaseSpec`: a live model (its live modules) or a config object or dict (`spec_for_config`).

    Raises `InputError` for anything else (a path or a name goes to `loraguard.check` unchanged).
    """
    if is_live_model(base):
        return live_base(base).spec
    if is_config(base):
        config = dict(base) if isinstance(base, Mapping) else base.to_dict()
        name = str(config.get("_name_or_path") or config.get("name_or_path") or config.get("model_type") or "config")
        return spec_for_config(config, name=name, task=task)
    raise InputError(
        f"base of type {type(base).__name__}: pass a model, a transformers config, a config dict, "
        "a folder, a config.json, a catalog name or a Hub id"
    )
