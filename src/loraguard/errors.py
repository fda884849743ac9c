"""Every exception loraguard raises on purpose.

    LoraguardError                      root: catch this to catch them all
    ├── InputError (ValueError)         bad input a user can fix (the CLI exits 2)
    │   ├── AdapterNotFoundError (FileNotFoundError)
    │   ├── AdapterFormatError          unreadable weights file or config
    │   ├── BaseModelResolutionError    a base that cannot be found or read
    │   ├── DataFormatError             a CSV that is not in the expected format
    │   └── PolicyError                 an invalid policy file
    ├── HubUnavailableError (OSError)   the Hugging Face Hub cannot be reached (offline)
    ├── MissingExtraError (ImportError) an optional dependency is not installed
    └── OutputExistsError (FileExistsError) refusing to overwrite a user's file

Messages follow "what failed for which input: why. What to do." Findings about an
adapter are not exceptions: they are `Finding`s in a `Report`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AdapterFormatError",
    "AdapterNotFoundError",
    "BaseModelResolutionError",
    "DataFormatError",
    "HubUnavailableError",
    "InputError",
    "LoraguardError",
    "MissingExtraError",
    "OutputExistsError",
    "PolicyError",
]


class LoraguardError(Exception):
    """Root of every error loraguard raises on purpose."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = str(path) if path is not None else None


class InputError(LoraguardError, ValueError):
    """An input a user can fix: a file, a name or an option. The CLI exits 2."""


class AdapterNotFoundError(InputError, FileNotFoundError):
    """No adapter at the given path, file name or repo id."""


class AdapterFormatError(InputError):
    """An adapter file or config that cannot be read."""


class BaseModelResolutionError(InputError):
    """A base model that cannot be found or whose config.json cannot be read."""


class DataFormatError(InputError):
    """A CSV or JSONL input that is not in the expected format (names the file, row and column)."""


class PolicyError(InputError):
    """A policy (TOML) file with unknown keys or invalid thresholds."""


class HubUnavailableError(LoraguardError, OSError):
    """The Hugging Face Hub cannot be reached and the file is not in the local cache."""


class MissingExtraError(LoraguardError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, feature: str, extra: str) -> None:
        super().__init__(f"{feature} needs the '{extra}' extra: pip install 'loraguard[{extra}]'")
        self.extra = extra


class OutputExistsError(LoraguardError, FileExistsError):
    """Refusing to overwrite an existing file without --overwrite."""
