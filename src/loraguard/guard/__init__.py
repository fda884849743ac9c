"""Meet users where they already hold a model: a guarded PEFT load, and `check` against a live model.

- `load_adapter(model, adapter, ...)` (`loraguard.load_adapter`, `load.py`): `PeftModel.from_pretrained`
  with the static check against the live model first, PEFT's silent outcomes as findings (LG8xx), an
  optional canary (the probe's measurement, LG6xx), and `AdapterLoadError` when errors remain, the
  model then left exactly as it was (`snapshot.py`); `guarded_load` returns the whole `LoadReport`.
- `check(adapter, base=model_or_config)` (`loraguard.check`, `check.py`): the static check, where
  `base` may also be a model in memory or a config (`live.py`).

Importing this package imports neither torch nor peft; loading does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loraguard.guard.check import check
    from loraguard.guard.load import guarded_load, load_adapter
    from loraguard.guard.report import LoadReport

__all__ = ["LoadReport", "check", "guarded_load", "load_adapter"]

_WHERE = {
    "check": "loraguard.guard.check",
    "guarded_load": "loraguard.guard.load",
    "load_adapter": "loraguard.guard.load",
    "LoadReport": "loraguard.guard.report",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'loraguard.guard' has no attribute {name!r}")
