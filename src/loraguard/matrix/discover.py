"""Find the adapters below some paths: PEFT folders, single weights files, the local Hub cache."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from loraguard.adapter.reader import CONFIG_NAME, WEIGHT_NAMES
from loraguard.errors import AdapterNotFoundError

__all__ = ["discover_adapters", "hub_cache_dir"]

_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages"})


def hub_cache_dir() -> Path:
    """The local Hugging Face Hub cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else ~/.cache/huggingface/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def discover_adapters(
    paths: Iterable[str | os.PathLike[str]], *, hub_cache: bool | str | os.PathLike[str] = False
) -> tuple[str, ...]:
    """Every adapter at or below `paths`, in a stable order, each once.

    - a folder holding `adapter_config.json` is an adapter (its subfolders are searched too, e.g.
      `checkpoint-500/`); when it holds no `adapter_model.*` but several `.safetensors`, each of
      those files is an adapter of its own (with the config beside it);
    - a `.safetensors`, `.bin` or `.pt` file named directly is an adapter;
    - `hub_cache` (True for the default cache, or a cache folder) adds every snapshot
      `models--*/snapshots/*` holding an `adapter_config.json`.

    Hidden folders (`.git`) are skipped. Raises `AdapterNotFoundError` for a path that does not exist.
    """
    found: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise AdapterNotFoundError(
                f"{path}: no such file or folder. Pass adapter folders, adapter weights files or folders to search.",
                path=path,
            )
        if path.is_file():
            found.append(str(path))
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
            if CONFIG_NAME in files:
                found.extend(_adapters_in(Path(folder), files))
    if hub_cache:
        root = hub_cache_dir() if hub_cache is True else Path(hub_cache).expanduser()
        found.extend(str(s) for s in sorted(root.glob("models--*/snapshots/*")) if (s / CONFIG_NAME).is_file())
    seen: set[str] = set()
    unique = []
    for item in found:
        key = os.path.realpath(item)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return tuple(unique)


def _adapters_in(folder: Path, files: list[str]) -> list[str]:
    if any(name in files for name in WEIGHT_NAMES):
        return [str(folder)]
    tensors = sorted(name for name in files if name.endswith(".safetensors"))
    if len(tensors) <= 1:
        return [str(folder)]
    return [str(folder / name) for name in tensors]
