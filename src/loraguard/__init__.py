"""loraguard: stop a LoRA adapter from silently breaking an LLM classifier.

The package root imports nothing heavy: `loraguard.check` is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "check"]

if TYPE_CHECKING:
    from loraguard.checks.checker import check


def __getattr__(name: str) -> Any:
    if name == "check":
        from loraguard.checks.checker import check

        return check
    raise AttributeError(f"module 'loraguard' has no attribute {name!r}")
