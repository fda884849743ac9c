"""The adapter host: one base model with named LoRA adapters attached, detached and switched in place.

The one way loraguard puts adapters on a model: `score`, `probe`, the Ray workers and the server
(`server/pool.py`, which adds its own private copies, hashing and reload policy on top) all use it.

- `load_host(base, adapters)`: check every path first, load the base (`scoring.model.load_base`), then
  attach each adapter under its name (`adapter_names`). `AdapterHost(loaded_base)` starts empty.
- `attach(name, folder)` / `detach(name)`; `activate(name)` makes one adapter the active one for a
  `with` block, `activate(None)` runs the bare base (adapters disabled).
- Safe loading: on the first `attach` the base is wrapped in a `PeftModel` holding only a no-op
  sentinel adapter (`SENTINEL`: rank 1, B = 0, on one module, never active while scoring).
  `PeftModel.from_pretrained` injects its layers into the base *in place*, so a first adapter that
  failed half-way would leave the base corrupted; with the sentinel every real adapter goes through
  `load_adapter`, and a failed load is deleted again: the base and the other adapters are unchanged.
  Until the first `attach` the model is the plain transformers model.
- Names: PEFT adapter names cannot contain dots; `peft_safe_name` is the one rule (anything but
  letters, digits, `_` and `-` becomes `_`). `adapter_names` names adapters after their folders (a
  Hub id after its repo name), made unique with `-2`, `-3`...
- `check_adapter(source)` is the torch-free part of attaching: locate the folder
  (`adapter.source.resolve_adapter_folder`), read its config (`adapter.config.read_adapter_config`)
  and require a CAUSAL_LM adapter (scoring reads next-token logits).

torch, transformers and peft are imported inside the functions. Like any model code, an `AdapterHost`
is not thread-safe: PEFT switches adapters by mutating the model.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from loraguard.errors import AdapterFormatError, AdapterNotFoundError, InputError, MissingExtraError
from loraguard.scoring.model import LoadedBase, check_base, load_base

__all__ = [
    "SENTINEL",
    "AdapterHost",
    "adapter_names",
    "check_adapter",
    "load_host",
    "peft_safe_name",
]

SENTINEL = "loraguard-sentinel"
"""The no-op adapter the base is wrapped with before the first real adapter is attached."""
CONFIG_NAME = "adapter_config.json"


def peft_safe_name(label: str) -> str:
    """`label` as a PEFT adapter name: anything but letters, digits, `_` and `-` becomes `_`."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", label).strip("_") or "adapter"


def adapter_names(sources: Sequence[str | Path]) -> tuple[str, ...]:
    """Names derived from the adapters' folder names (a Hub id: its repo name), unique and PEFT-safe."""
    names: list[str] = []
    for source in sources:
        base = peft_safe_name(Path(source).resolve().name)
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return tuple(names)


def check_adapter(source: str | Path) -> Path:
    """The adapter's folder (a Hub id resolved to its cached snapshot), checked to be a CAUSAL_LM one."""
    from loraguard.adapter.config import read_adapter_config
    from loraguard.adapter.source import resolve_adapter_folder

    path = resolve_adapter_folder(source)
    config_path = path / CONFIG_NAME
    if not config_path.is_file():
        raise AdapterNotFoundError(f"adapter {path}: no adapter_config.json in the folder", path=path)
    task = read_adapter_config(config_path).task_type
    if task not in (None, "CAUSAL_LM"):
        raise InputError(
            f"adapter {path}: task_type is {task}; scoring reads next-token logits, so it needs a CAUSAL_LM adapter",
            path=path,
        )
    return path


class AdapterHost:
    """A loaded base with named adapters on it (see the module docstring)."""

    def __init__(self, base: LoadedBase) -> None:
        self.base = base
        self.model: Any = base.model
        """The plain model until the first `attach`, then the `PeftModel` around it."""
        self._paths: dict[str, str] = {}

    @classmethod
    def around(cls, peft_model: Any, tokenizer: Any, adapters: Mapping[str, str | Path]) -> AdapterHost:
        """A host for a `PeftModel` someone else loaded (`loraguard.load_adapter`), holding `adapters`
        (name → folder), so that `activate` and what reads a host (the probe's measurements) work on it."""
        model = peft_model.get_base_model()
        param = next(model.parameters())
        where = Path(str(getattr(model, "name_or_path", "") or "."))
        host = cls(LoadedBase(model, tokenizer, where, str(param.device), str(param.dtype).removeprefix("torch.")))
        host.model = peft_model
        host._paths = {name: str(path) for name, path in adapters.items()}
        return host

    @property
    def tokenizer(self) -> Any:
        return self.base.tokenizer

    @property
    def device(self) -> str:
        return self.base.device

    @property
    def dtype(self) -> str:
        return self.base.dtype

    @property
    def _wrapped(self) -> bool:
        return self.model is not self.base.model

    @property
    def adapter_names(self) -> tuple[str, ...]:
        """The attached adapters' names, in the order they were attached."""
        return tuple(self._paths)

    @property
    def adapter_paths(self) -> tuple[str, ...]:
        """The folder each attached adapter was loaded from (same order as `adapter_names`)."""
        return tuple(self._paths.values())

    def attach(self, name: str, folder: str | Path) -> None:
        """Load the adapter in `folder` (see `check_adapter`) under `name`.

        With no other adapter attached it becomes the active one (as after `PeftModel.from_pretrained`),
        so `model` runs it; otherwise the active adapter is unchanged until `activate`. On any failure
        the half-loaded adapter is deleted again and a `LoraguardError` is raised
        (`AdapterFormatError` when PEFT could not load it, its exception chained): the base and the
        adapters already attached are unchanged.
        """
        if name in self._paths or name == SENTINEL:
            raise InputError(f"adapter name {name!r} is already in use on this base")
        path = check_adapter(folder)
        model = self._peft_model()
        try:
            model.load_adapter(str(path), adapter_name=name, is_trainable=False)
        except Exception as exc:  # PEFT raises many types; the host must survive all of them
            self._forget(name)
            raise AdapterFormatError(
                f"adapter {path}: PEFT could not load it onto the base: {type(exc).__name__}: {exc}", path=path
            ) from exc
        config = model.peft_config[name]
        if config.is_prompt_learning:
            self._forget(name)
            raise InputError(
                f"adapter {path}: {config.peft_type} is a prompt-learning adapter; "
                "scoring supports LoRA-style adapters",
                path=path,
            )
        if not self._paths:  # the only adapter is active, as after PEFT's from_pretrained
            model.set_adapter(name)
        model.eval()
        self._paths[name] = str(path)

    def detach(self, name: str) -> None:
        """Unload adapter `name` (no-op if it is not attached)."""
        if self._paths.pop(name, None) is not None:
            self._forget(name)

    @contextlib.contextmanager
    def activate(self, name: str | None) -> Iterator[Any]:
        """Make adapter `name` the active one (`None`: the bare base) for the `with` block; yields the model."""
        if name is None:
            if self._wrapped:
                with self.model.disable_adapter():
                    yield self.model
            else:
                yield self.model
            return
        if name not in self._paths:
            raise InputError(f"adapter {name!r} is not loaded; loaded: {', '.join(self._paths)}")
        self.model.set_adapter(name)
        yield self.model

    def _peft_model(self) -> Any:
        """The `PeftModel` around the base, wrapping it with the sentinel the first time."""
        if self._wrapped:
            return self.model
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingExtraError("Loading adapters", "ml") from exc
        target = next(
            name.rsplit(".", 1)[-1]
            for name, module in self.base.model.named_modules()
            if type(module).__name__ == "Linear" and name != "lm_head"
        )
        config = LoraConfig(r=1, lora_alpha=1, target_modules=[target], init_lora_weights=True)
        self.model = get_peft_model(self.base.model, config, adapter_name=SENTINEL)
        self.model.eval()
        return self.model

    def _forget(self, name: str) -> None:
        if name in getattr(self.model, "peft_config", {}):
            with contextlib.suppress(Exception):
                self.model.delete_adapter(name)


def load_host(
    base: str | Path,
    adapters: Sequence[str | Path] = (),
    *,
    dtype: str = "auto",
    device: str = "auto",
    show_progress: bool = False,
) -> AdapterHost:
    """Load `base` (a model folder, a `.gguf` file or a known model's name, see `check_base`) and attach
    every adapter (folders or Hub ids) under `adapter_names`.

    Every path is checked before the model is loaded.
    """
    folder = check_base(base)
    folders = [check_adapter(a) for a in adapters]
    names = adapter_names(adapters)  # from what the user passed: a Hub id names its adapter, not its snapshot
    host = AdapterHost(load_base(folder, dtype=dtype, device=device, show_progress=show_progress))
    for name, folder in zip(names, folders, strict=True):
        host.attach(name, folder)
    return host
