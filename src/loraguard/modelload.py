"""Load a base causal LM and its LoRA adapters from local folders (shared by `score` and `probe`).

- The base is a local folder (`local_files_only=True`: its weights are never fetched); an adapter
  is a local folder or a Hub repo id, whose small files are fetched into the Hugging Face cache
  (`HF_HUB_OFFLINE` honoured; offline and not cached → `HubUnavailableError`). `trust_remote_code`
  is never set.
- `dtype`: `auto` (float32 on CPU; bfloat16 on CUDA when supported, else float16), `float32`,
  `bfloat16` or `float16`. `device`: `auto` (CUDA when present, else CPU), `cpu`, `cuda`, `cuda:N`.
- Several adapters share one copy of the base: the first is loaded with
  `PeftModel.from_pretrained`, the others with `load_adapter`; `activate(name)` switches with
  `set_adapter`, and `activate(None)` runs the bare base inside `disable_adapter()`.
- Adapter names are the folder names with anything but letters, digits, `_` and `-` replaced by
  `_` (PEFT names cannot contain dots), made unique with `-2`, `-3`...

torch, transformers and peft are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loraguard.errors import (
    AdapterFormatError,
    AdapterNotFoundError,
    BaseModelResolutionError,
    InputError,
    MissingExtraError,
)

__all__ = ["DTYPES", "LoadedModel", "adapter_names", "load_model", "resolve_device"]

DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class LoadedModel:
    """A model (a `PeftModel` when adapters were given), its tokenizer and the adapters' names."""

    model: Any
    tokenizer: Any
    adapter_names: tuple[str, ...]
    adapter_paths: tuple[str, ...]
    device: str
    dtype: str

    @contextlib.contextmanager
    def activate(self, name: str | None) -> Iterator[Any]:
        """Make adapter `name` the active one (`None`: the bare base) for the `with` block."""
        if name is None:
            if self.adapter_names:
                with self.model.disable_adapter():
                    yield self.model
            else:
                yield self.model
            return
        if name not in self.adapter_names:
            raise InputError(f"adapter {name!r} is not loaded; loaded: {', '.join(self.adapter_names)}")
        self.model.set_adapter(name)
        yield self.model


def adapter_names(paths: Sequence[str | Path]) -> tuple[str, ...]:
    """Names derived from the adapter folders' names, unique and usable as PEFT adapter names."""
    names: list[str] = []
    for p in paths:
        base = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(p).resolve().name).strip("_") or "adapter"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return tuple(names)


def resolve_device(device: str = "auto") -> str:
    """`auto` to `cuda` when available, else `cpu`; checks that a CUDA device exists."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r}: CUDA is not available on this machine; use --device cpu")
    if device != "cpu" and not device.startswith(("cuda", "mps")):
        raise InputError(f"device {device!r}: expected auto, cpu, cuda or cuda:N")
    return device


def _resolve_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype not in DTYPES:
        raise InputError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    if dtype == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, dtype)


def _check_base(base: str | Path) -> Path:
    path = Path(base)
    if not path.is_dir():
        raise BaseModelResolutionError(
            f"base {str(base)!r}: not a local folder. Only local model folders are supported for now "
            "(download the model first, e.g. with `hf download`)",
            path=path,
        )
    if not (path / "config.json").is_file():
        raise BaseModelResolutionError(f"base {path}: no config.json in the folder", path=path)
    return path


def _check_adapter(adapter: str | Path) -> Path:
    """The adapter's folder (a Hub id is resolved to its cached snapshot), checked to be a CAUSAL_LM one."""
    from loraguard.adapter.source import resolve_adapter_folder

    path = resolve_adapter_folder(adapter)
    config = path / "adapter_config.json"
    if not config.is_file():
        raise AdapterNotFoundError(f"adapter {path}: no adapter_config.json in the folder", path=path)
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdapterFormatError(f"adapter {path}: adapter_config.json is not valid JSON: {exc}", path=path) from exc
    task = data.get("task_type")
    if task not in (None, "CAUSAL_LM"):
        raise InputError(
            f"adapter {path}: task_type is {task}; scoring reads next-token logits, so it needs a CAUSAL_LM adapter",
            path=path,
        )
    return path


def load_model(
    base: str | Path,
    adapters: Sequence[str | Path] = (),
    *,
    dtype: str = "auto",
    device: str = "auto",
    show_progress: bool = False,
) -> LoadedModel:
    """Load `base` (a local folder) and every adapter onto it, in eval mode."""
    base_path = _check_base(base)
    adapter_paths = [_check_adapter(a) for a in adapters]
    names = adapter_names(adapters)  # from what the user passed: a Hub id names its adapter, not its snapshot
    try:
        import torch  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("Loading models", "ml") from exc
    dev = resolve_device(device)
    torch_dtype = _resolve_dtype(dtype, dev)
    bars = hf_logging.is_progress_bar_enabled()
    if not show_progress:
        hf_logging.disable_progress_bar()
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(base_path), local_files_only=True, trust_remote_code=False)
            model: Any = AutoModelForCausalLM.from_pretrained(
                str(base_path), dtype=torch_dtype, local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError, KeyError) as exc:
            raise BaseModelResolutionError(
                f"base {base_path}: cannot load it as a causal LM: {exc}", path=base_path
            ) from exc
        model = model.to(dev)
        if adapter_paths:
            model = _attach_adapters(model, adapter_paths, names)
    finally:
        if bars and not show_progress:
            hf_logging.enable_progress_bar()
    model.eval()
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        adapter_names=names,
        adapter_paths=tuple(str(p) for p in adapter_paths),
        device=dev,
        dtype=str(torch_dtype).removeprefix("torch."),
    )


def _attach_adapters(model: Any, paths: Sequence[Path], names: Sequence[str]) -> Any:
    try:
        from peft import PeftModel
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("Loading adapters", "ml") from exc
    peft_model: Any = None
    for path, name in zip(paths, names, strict=True):
        try:
            if peft_model is None:
                peft_model = PeftModel.from_pretrained(model, str(path), adapter_name=name, is_trainable=False)
            else:
                peft_model.load_adapter(str(path), adapter_name=name, is_trainable=False)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise AdapterFormatError(f"adapter {path}: PEFT could not load it onto the base: {exc}", path=path) from exc
        if peft_model.peft_config[name].is_prompt_learning:
            raise InputError(
                f"adapter {path}: {peft_model.peft_config[name].peft_type} is a prompt-learning "
                "adapter; scoring supports LoRA-style adapters",
                path=path,
            )
    return peft_model
