"""Put a model back exactly as it was: every module's children, parameters, buffers, hooks and flags.

PEFT injects its layers into the model it is given *in place* (`PeftModel.from_pretrained` says "the
passed `model` may be modified inplace"), freezes every base parameter and hangs its `peft_config`
on the model, before it copies a single weight; a load that then fails leaves all of that behind.
`ModelSnapshot.take(model)` records the state PEFT touches, shallowly (no tensor is copied: the
same parameter objects are put back), and `restore()` undoes whatever happened since:

- every module's instance attributes: added ones are deleted, replaced ones put back; the
  containers torch and PEFT mutate in place (`_modules`, `_parameters`, `_buffers`, the hook
  dicts, PEFT's `peft_config` dict and `targeted_module_names` list) get their old contents back,
  so the original module objects are at their original places again;
- every parameter's `requires_grad`.

Tensor *values* are not recorded: loading a LoRA adapter never writes into base weights (only
PiSSA/OLoRA-style initialisations do, which `check` reports for serving and which a saved adapter
normally no longer asks for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ModelSnapshot"]


@dataclass(frozen=True)
class _ModuleState:
    module: Any
    attributes: dict[str, Any]
    """The module's `__dict__` as it was (values by reference)."""
    contents: dict[str, Any]
    """Shallow copies of its dict, list and set attributes (restored in place: same container objects)."""


@dataclass(frozen=True)
class ModelSnapshot:
    """The restorable state of a module tree (see the module docstring)."""

    modules: tuple[_ModuleState, ...]
    requires_grad: tuple[tuple[Any, bool], ...]

    @classmethod
    def take(cls, model: Any) -> ModelSnapshot:
        """Record `model`'s tree as it is now."""
        states = []
        for module in model.modules():
            attributes = dict(vars(module))
            contents = {k: _copy(v) for k, v in attributes.items() if isinstance(v, dict | list | set)}
            states.append(_ModuleState(module, attributes, contents))
        flags = tuple((p, bool(p.requires_grad)) for p in model.parameters())
        return cls(tuple(states), flags)

    def restore(self) -> None:
        """Put every recorded module's attributes and every parameter's `requires_grad` back."""
        for state in self.modules:
            current = vars(state.module)
            for key in [k for k in current if k not in state.attributes]:
                del current[key]
            for key, value in state.attributes.items():
                if key in state.contents:
                    _refill(value, state.contents[key])
                current[key] = value
        for param, flag in self.requires_grad:
            if param.requires_grad != flag:
                param.requires_grad_(flag)


def _copy(value: dict[Any, Any] | list[Any] | set[Any]) -> Any:
    return dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) else set(value)


def _refill(container: Any, saved: Any) -> None:
    """Give `container` (the same object that was recorded) its recorded contents back, keeping its order."""
    if isinstance(container, dict):
        container.clear()
        container.update(saved)
    elif isinstance(container, list):
        container[:] = saved
    else:
        container.clear()
        container.update(saved)
