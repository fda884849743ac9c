"""loraguard: stop a LoRA adapter from silently breaking an LLM classifier.

The package root imports nothing heavy: `loraguard.check` and `loraguard.load_adapter` are loaded
on first use. It is also where rooms are wired together: results (`CheckReport`, `ProbeReport`...)
find their notebook and REPL renderers in `loraguard.report.notebook` (see `loraguard.display`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loraguard import display as _display
from loraguard.version import __version__

__all__ = ["__version__", "check", "load_adapter"]

if "loraguard.report.notebook" not in _display.RENDERER_MODULES:
    _display.RENDERER_MODULES.append("loraguard.report.notebook")

if TYPE_CHECKING:
    from loraguard.guard.check import check
    from loraguard.guard.load import load_adapter


def __getattr__(name: str) -> Any:
    if name == "check":
        from loraguard.guard.check import check

        return check
    if name == "load_adapter":
        from loraguard.guard.load import load_adapter

        return load_adapter
    raise AttributeError(f"module 'loraguard' has no attribute {name!r}")
