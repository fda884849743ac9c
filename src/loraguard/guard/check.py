"""`loraguard.check(adapter, base=...)`: the static check, where the base may also be a model or a config.

`base` as `loraguard.checks.checker.check` takes it (a folder, a config.json, a .gguf file, a catalog
name, a Hub id, a `BaseSpec`, or None for the adapter's claimed base), or:

- a model in memory (`AutoModelForCausalLM.from_pretrained(...)`, or a `PeftModel`): checked against
  its live modules and shapes (`loraguard.guard.live`);
- a transformers config object (`model.config`, `AutoConfig.from_pretrained(...)`) or a config dict:
  checked against the modules that config describes, as for a config.json.

Still static: nothing is loaded, no forward pass is run, and torch is imported only if the caller
passes a model (which means it is imported already).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from loraguard.basemodel.spec import BaseSpec
from loraguard.checks.checker import check as static_check
from loraguard.checks.report import CheckReport
from loraguard.errors import LoraguardError
from loraguard.guard.live import base_spec_of

__all__ = ["adapter_task", "check"]


def check(adapter: str | Path, base: Any = None, **options: Any) -> CheckReport:
    """Check `adapter` against `base` (see the module docstring); `options` as `checks.checker.check`'s
    (`task`, `select`, `ignore`, `scan_values`, `norms`, `engines`, `max_lora_rank`, `lora_target_modules`).

    Never raises for a bad adapter or base file: those are `unreadable` findings. A `base` that is
    none of the accepted kinds raises `InputError`.
    """
    if base is not None and not isinstance(base, str | os.PathLike | BaseSpec):
        base = base_spec_of(base, task=options.get("task") or adapter_task(adapter))
    return static_check(adapter, base, **options)


def adapter_task(adapter: str | Path) -> str | None:
    """The `task_type` in a local adapter's config (a folder, or a weights file with its config beside
    it), else None (a Hub id is not fetched for this; the check reads it anyway)."""
    from loraguard.adapter.config import read_adapter_config
    from loraguard.adapter.reader import CONFIG_NAME

    path = Path(adapter).expanduser()
    config = path / CONFIG_NAME if path.is_dir() else path.with_name(CONFIG_NAME)
    if not config.is_file():
        return None
    try:
        return read_adapter_config(config).task_type
    except LoraguardError:  # an unreadable config is the check's to report
        return None
