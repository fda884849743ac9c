"""Load an adapter onto a live model through PEFT's own API, and undo it completely when asked.

The two steps `PeftModel.from_pretrained` takes (wrap the model in the task's `PeftModel` class,
then `load_adapter`), taken separately so that the load result (missing and unexpected keys),
which `from_pretrained` drops, is kept. A `PeftModel` passed in gets the adapter through its
`load_adapter`, as PEFT users add a second adapter. Before anything, the model's state is recorded
(`ModelSnapshot`); `Attached.undo()` and a failed load put it back, so the caller's model is
exactly as it was. torch and peft are imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraguard.errors import InputError, MissingExtraError
from loraguard.guard.snapshot import ModelSnapshot
from loraguard.probe.load import LoadOutcome

__all__ = ["Attached", "attach"]


@dataclass(frozen=True)
class Attached:
    """The result of `attach`: the `PeftModel` (None when PEFT raised), what PEFT reported, and how to undo."""

    model: Any
    outcome: LoadOutcome
    snapshot: ModelSnapshot

    def undo(self) -> None:
        """Put the model passed to `attach` back as it was (the `PeftModel` made for it is then unusable)."""
        self.snapshot.restore()


def is_peft_model(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - a live model without peft installed
        return False
    return isinstance(model, PeftModel)


def attach(model: Any, folder: Path, adapter_name: str, *, is_trainable: bool = False) -> Attached:
    """Load the adapter in `folder` onto `model` under `adapter_name` (see the module docstring).

    A PEFT exception becomes `outcome.error` (the model is restored first); bad arguments raise
    `InputError` before anything is touched.
    """
    try:
        from peft import PeftConfig, PeftModel
        from peft.auto import MODEL_TYPE_TO_PEFT_MODEL_MAPPING
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("Loading adapters", "ml") from exc
    wrapped = is_peft_model(model)
    if wrapped and adapter_name in model.peft_config:
        raise InputError(
            f"adapter name {adapter_name!r} is already on this model ({', '.join(model.peft_config)}): "
            "pass another adapter_name"
        )
    _refuse_offloaded(model.get_base_model() if wrapped else model)
    snapshot = ModelSnapshot.take(model)
    peft_model: Any = model if wrapped else None
    config: Any = None
    try:
        config = PeftConfig.from_pretrained(str(folder))
        key_mapping = None
        if not config.is_prompt_learning:  # as from_pretrained: the class's own state-dict key renames
            key_mapping = getattr(model, "_checkpoint_conversion_mapping", {})
        if not wrapped:
            config.inference_mode = not is_trainable
            peft_class = MODEL_TYPE_TO_PEFT_MODEL_MAPPING.get(config.task_type, PeftModel)
            peft_model = peft_class(model, config, adapter_name)
        result = peft_model.load_adapter(str(folder), adapter_name, is_trainable=is_trainable, key_mapping=key_mapping)
    except Exception as exc:  # PEFT raises many types; the caller's model must survive all of them
        snapshot.restore()
        outcome = LoadOutcome(str(folder), adapter_name, error=f"{type(exc).__name__}: {_first_lines(exc)}")
        return Attached(None, outcome, snapshot)
    targeted = _adapted_modules(peft_model, adapter_name)
    outcome = LoadOutcome(
        str(folder),
        adapter_name,
        missing_keys=tuple(result.missing_keys),
        unexpected_keys=tuple(result.unexpected_keys),
        random_init=getattr(config, "init_lora_weights", True) is False,
        targeted=targeted,
        unmatched_targets=_unmatched(getattr(config, "target_modules", None), targeted),
    )
    return Attached(peft_model, outcome, snapshot)


def _first_lines(exc: BaseException, limit: int = 3) -> str:
    """The exception's first lines (a size-mismatch error lists every tensor)."""
    lines = str(exc).strip().splitlines()
    shown = " ".join(line.strip() for line in lines[:limit])
    return shown + (f" ... ({len(lines) - limit} more lines)" if len(lines) > limit else "")


def _refuse_offloaded(model: Any) -> None:
    device_map = getattr(model, "hf_device_map", None)
    devices = {str(v) for v in device_map.values()} if isinstance(device_map, dict) else set()
    if len(devices) > 1 and {"cpu", "disk"} & devices:  # split between an accelerator and cpu or disk
        raise InputError(
            "the model is dispatched with parts offloaded to cpu or disk (hf_device_map); loraguard.load_adapter "
            "does not load onto offloaded models. Check the adapter with loraguard.check(adapter, base=model), "
            "then load it with PEFT."
        )


def _adapted_modules(peft_model: Any, adapter_name: str) -> tuple[str, ...]:
    """The modules (transformers names) that got a layer of `adapter_name`."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    found = []
    for name, module in peft_model.get_base_model().named_modules():
        if isinstance(module, BaseTunerLayer) and any(
            adapter_name in (getattr(module, layer, None) or {}) for layer in module.adapter_layer_names
        ):
            found.append(name)
    return tuple(found)


def _unmatched(targets: object, targeted: tuple[str, ...]) -> tuple[str, ...]:
    """Names of a `target_modules` list that match none of `targeted` (exactly or as a name suffix, as PEFT)."""
    if not isinstance(targets, list | set | tuple):
        return ()  # a regex string or "all-linear": nothing to match name by name
    return tuple(t for t in sorted(str(t) for t in targets) if not any(m == t or m.endswith(f".{t}") for m in targeted))
