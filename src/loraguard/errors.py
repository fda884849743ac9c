"""Every exception loraguard raises on purpose.

    LoraguardError                      root: catch this to catch them all
    ├── InputError (ValueError)         bad input a user can fix (the CLI exits 2)
    │   ├── AdapterNotFoundError (FileNotFoundError)
    │   ├── AdapterFormatError          unreadable weights file or config
    │   │   └── ConfigPatternError      a config regex PEFT cannot use (invalid, or too slow to match)
    │   ├── BaseModelResolutionError    a base that cannot be found or read
    │   │   └── GGUFHeaderError         a GGUF header that breaks the format (reported with the file's name)
    │   ├── DataFormatError             a CSV that is not in the expected format
    │   ├── InputLimitError             an input beyond a reading limit (size, JSON nesting, pickle opcodes)
    │   ├── PolicyError                 an invalid policy file
    │   ├── TimeBudgetExceededError     scoring would exceed --time-budget (raised early, projected)
    │   └── UnknownNameError (KeyError) a name that is not one of the known ones (e.g. a fault case)
    ├── HubUnavailableError (OSError)   the Hugging Face Hub cannot be reached (offline)
    ├── MissingExtraError (ImportError) an optional dependency is not installed
    ├── OutputExistsError (FileExistsError) refusing to overwrite a user's file
    ├── RegistryError                   the adapter registry cannot do what was asked
    │   ├── RegistryNotFoundError (KeyError) no such adapter or version in the registry
    │   ├── RegistryLockedError         another writer holds the registry past the lock timeout
    │   ├── RegistrySchemaError         a registry written by a newer loraguard, or not a registry
    │   └── AdapterRejectedError        check or probe found errors; nothing was registered
    ├── AdapterLoadError                `load_adapter` refused an adapter: check, PEFT or the canary found errors
    │                                   (`.findings`, `.report`); the user's model is left as it was
    ├── DistributedError                a Ray run failed (cluster unreachable, workers lost)
    ├── ModelUnavailableError           a known real model cannot be had (download, hash, cache)
    └── ServeError                      the prediction server (`loraguard serve`) refused something
        ├── RequestError                a request the client must fix (HTTP status + JSON error body)
        │   └── Overloaded              the pending-item queue is full (503 + Retry-After)
        ├── AdapterRefused              an adapter it would not load (reason: hash-mismatch, ...)
        └── AdapterGone (KeyError)      an adapter unloaded between routing and scoring

Messages follow "what failed for which input: why. What to do." Findings about an
adapter are not exceptions: they are `Finding`s in a `Report`. Programming errors (a rule
registered twice, an argument of the wrong type) stay plain `ValueError`/`TypeError`.

`load_adapter(..., on_error="warn")` warns with `AdapterLoadWarning` instead of raising
`AdapterLoadError`: a `UserWarning` (filter it with the `warnings` module), not part of the tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "AdapterFormatError",
    "AdapterGone",
    "AdapterLoadError",
    "AdapterNotFoundError",
    "AdapterRefused",
    "AdapterRejectedError",
    "BaseModelResolutionError",
    "ConfigPatternError",
    "DataFormatError",
    "DistributedError",
    "GGUFHeaderError",
    "HubUnavailableError",
    "InputError",
    "InputLimitError",
    "LoraguardError",
    "MissingExtraError",
    "ModelUnavailableError",
    "OutputExistsError",
    "Overloaded",
    "PolicyError",
    "RegistryError",
    "RegistryLockedError",
    "RegistryNotFoundError",
    "RegistrySchemaError",
    "RequestError",
    "ServeError",
    "TimeBudgetExceededError",
    "UnknownNameError",
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


class ConfigPatternError(AdapterFormatError):
    """A regular expression of the adapter config (target_modules, rank_pattern...) that PEFT cannot
    compile, or that does not match within loraguard's time limit; the check reports it (LG206)."""


class BaseModelResolutionError(InputError):
    """A base model that cannot be found or whose config.json cannot be read."""


class GGUFHeaderError(BaseModelResolutionError):
    """A GGUF header that is not GGUF as the spec writes it (the message says what; the reader adds the file)."""


class DataFormatError(InputError):
    """A CSV or JSONL input that is not in the expected format (names the file, row and column)."""


class InputLimitError(InputError):
    """An input beyond one of loraguard's reading limits (file size, JSON nesting, pickle opcodes and
    memory), or not parseable within them; readers re-raise it as their own error naming the file."""


class PolicyError(InputError):
    """A policy (TOML) file with unknown keys or invalid thresholds."""


class TimeBudgetExceededError(InputError):
    """Scoring would exceed `--time-budget`; raised early, from a projection."""


class UnknownNameError(InputError, KeyError):
    """A name that is not one of the known ones; the message lists them."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


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


class AdapterLoadError(LoraguardError):
    """`loraguard.load_adapter` refused an adapter: the static check, PEFT's load or the canary found errors.

    `findings` are the errors (and, with `strict`, the warnings) that decided it; `report` is the whole
    `loraguard.guard.LoadReport`. The model passed in is left as it was (no adapter layers, same
    parameters and `requires_grad` flags).
    """

    def __init__(
        self, message: str, *, path: str | Path | None = None, findings: tuple[Any, ...] = (), report: object = None
    ) -> None:
        super().__init__(message, path=path)
        self.findings = findings
        self.report = report


class DistributedError(LoraguardError):
    """A distributed (Ray) run failed: the cluster is unreachable or workers were lost for good."""


class ServeError(LoraguardError):
    """The prediction server (`loraguard serve`) refused a request or an adapter."""


class RequestError(ServeError):
    """A request the client must fix: carries the HTTP status and the JSON error body's code and details."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []

    @staticmethod
    def json_body(code: str, message: str, details: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """`{"error": {"code", "message", "details"}}`, the shape of every error the server returns."""
        return {"error": {"code": code, "message": message, "details": details or []}}

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return self.json_body(self.code, self.message, self.details)


class AdapterRefused(ServeError):
    """The server would not load an adapter; `reason` is a short code (hash-mismatch, unsafe-format,
    check-failed, load-failed), the message says why and what to do."""

    def __init__(self, ref: str, reason: str, message: str) -> None:
        super().__init__(f"{ref}: {message}")
        self.ref, self.reason = ref, reason


class AdapterGone(ServeError, KeyError):
    """The adapter was unloaded between routing and scoring (the caller may route again)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class AdapterLoadWarning(UserWarning):
    """`load_adapter(..., on_error="warn")`: the findings that would have raised `AdapterLoadError`."""


class ModelUnavailableError(LoraguardError):
    """A known real model cannot be had: download failed, wrong hash, or not in the cache yet."""


class Overloaded(RequestError):
    """The server's queue of pending items is full: 503 with `Retry-After: retry_after` (seconds)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(503, "overloaded", message)
        self.retry_after = retry_after
