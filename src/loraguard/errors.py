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
    ├── OutputExistsError (FileExistsError) refusing to overwrite a user's file
    ├── RegistryError                   the adapter registry cannot do what was asked
    │   ├── RegistryNotFoundError (KeyError) no such adapter or version in the registry
    │   ├── RegistryLockedError         another writer holds the registry past the lock timeout
    │   ├── RegistrySchemaError         a registry written by a newer loraguard, or not a registry
    │   └── AdapterRejectedError        check or probe found errors; nothing was registered
    ├── DistributedError                a Ray run failed (cluster unreachable, workers lost)
    └── ModelUnavailableError           a known real model cannot be had (download, hash, cache)

Messages follow "what failed for which input: why. What to do." Findings about an
adapter are not exceptions: they are `Finding`s in a `Report`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AdapterFormatError",
    "AdapterNotFoundError",
    "AdapterRejectedError",
    "BaseModelResolutionError",
    "DataFormatError",
    "DistributedError",
    "HubUnavailableError",
    "InputError",
    "LoraguardError",
    "MissingExtraError",
    "ModelUnavailableError",
    "OutputExistsError",
    "PolicyError",
    "RegistryError",
    "RegistryLockedError",
    "RegistryNotFoundError",
    "RegistrySchemaError",
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


class RegistryError(LoraguardError):
    """The adapter registry cannot do what was asked (the message says why and what to do)."""


class RegistryNotFoundError(RegistryError, KeyError):
    """No adapter (or version) of that name in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RegistryLockedError(RegistryError):
    """Another process holds the registry's write lock for longer than the lock timeout."""


class RegistrySchemaError(RegistryError):
    """The database is not a loraguard registry, or was written by a newer loraguard."""


class AdapterRejectedError(RegistryError):
    """`registry add` refused an adapter: check or probe reported errors (the report is attached)."""

    def __init__(self, message: str, *, path: str | Path | None = None, report: object = None) -> None:
        super().__init__(message, path=path)
        self.report = report


class DistributedError(LoraguardError):
    """A distributed (Ray) run failed: the cluster is unreachable or workers were lost for good."""


class ModelUnavailableError(LoraguardError):
    """A known real model cannot be had: download failed, wrong hash, or not in the cache yet."""
