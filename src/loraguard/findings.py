"""Severities, categories and the frozen `Finding` shared by check, probe and monitor."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any


class Severity(StrEnum):
    """How bad a finding is. `error` fails the verdict, `warning` fails only under --strict."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    """One problem (or fact) about an adapter, with the evidence behind it."""

    code: str
    """Stable rule code, e.g. ``LG301``; never reused."""
    category: str
    """Kebab-case category from the fixed list (``shape-mismatch``...)."""
    severity: Severity
    message: str
    """One line naming the tensors or fields involved and the actual values."""
    fix: str = ""
    """What to do about it."""
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "category": self.category,
            "message": self.message,
            "fix": self.fix,
            "evidence": _jsonable(self.evidence),
        }


class FindingsView:
    """Read-only views over a report's `findings` (shared by check and probe reports)."""

    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    def categories(self, min_severity: Severity = Severity.INFO) -> set[str]:
        """Categories of the findings at or above `min_severity`."""
        return {f.category for f in self.findings if f.severity.rank >= min_severity.rank}


def verdict_of(findings: Iterable[Finding]) -> Verdict:
    """`fail` with any error, `warn` with any warning, else `pass`."""
    worst = max((f.severity.rank for f in findings), default=0)
    return {2: Verdict.FAIL, 1: Verdict.WARN, 0: Verdict.PASS}[worst]


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Errors first, then warnings, then info; by code within a severity."""
    return tuple(sorted(findings, key=lambda f: (-f.severity.rank, f.code, f.message)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
