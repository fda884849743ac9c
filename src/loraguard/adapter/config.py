"""Read `adapter_config.json` the way PEFT does: only `peft_type` is required, unknown keys are kept."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraguard.errors import AdapterFormatError

LORA_TYPES = frozenset({"LORA", "ADALORA"})


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
        return str(self.raw.get("peft_type") or "LORA").upper()

    @property
    def is_lora(self) -> bool:
        return self.peft_type in LORA_TYPES

    @property
    def task_type(self) -> str | None:
        value = self.raw.get("task_type")
        return str(value).upper() if value else None

    @property
    def r(self) -> int | None:
        value = self.raw.get("r")
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    @property
    def target_modules(self) -> list[str] | str | None:
        value = self.raw.get("target_modules")
        if value is None or isinstance(value, str):
            return value
        return [str(v) for v in value]

    @property
    def modules_to_save(self) -> list[str]:
        return [str(v) for v in (self.raw.get("modules_to_save") or [])]

    @property
    def rank_pattern(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in (self.raw.get("rank_pattern") or {}).items()}

    @property
    def layers_to_transform(self) -> list[int] | None:
        value = self.raw.get("layers_to_transform")
        if value is None:
            return None
        return [int(value)] if isinstance(value, int) else [int(v) for v in value]

    @property
    def base_model(self) -> str | None:
        value = self.raw.get("base_model_name_or_path")
        return str(value) if value else None


def read_adapter_config(path: Path) -> AdapterConfig:
    """Parse `path`; raise `AdapterFormatError` naming the file for unreadable or invalid JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AdapterFormatError(f"{path}: cannot read the adapter config ({exc}).", path=path) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AdapterFormatError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}). "
            "Fix the file or re-save the adapter with PEFT.",
            path=path,
        ) from exc
    if not isinstance(data, dict):
        raise AdapterFormatError(f"{path}: expected a JSON object, got {type(data).__name__}.", path=path)
    return AdapterConfig(raw=data, path=path)
