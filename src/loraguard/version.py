"""The package's version, in the bottom layer so that any room can name it (`loraguard.__version__`
re-exports it; `report/` stamps it on HTML pages without importing the package root)."""

from __future__ import annotations

__version__ = "0.1.0"
