"""The registry's frozen records: `Entry` (one registered adapter version), `Event`, `VerifyResult`.

They are plain values, detached from the database: the server and the CLI pass them around freely,
and `to_dict()` gives the JSON form (schema `loraguard.registry/1`) both print.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = ["REGISTRY_SCHEMA", "Entry", "Event", "Status", "VerifyResult"]

REGISTRY_SCHEMA = "loraguard.registry/1"
"""The `schema` field of every JSON document the registry prints."""


class Status(StrEnum):
    """Where an adapter version is in its life: new entries are candidates (shadow at weight 0)."""

    CANDIDATE = "candidate"
    PRODUCTION = "production"
    RETIRED = "retired"


@dataclass(frozen=True)
class Entry:
    """One registered adapter version: what was read, what the checks said and how it is served."""

    id: int
    name: str
    version: int
    source: str
    """The path or Hub id as given to `add`."""
    path: str
    """The resolved local folder that was read and hashed."""
    files: Mapping[str, str]
    """Relative path → SHA-256 hex of every regular file in `path` (recursive, sorted)."""
    base: str
    """Normalised base: a local folder's resolved absolute path, else the name or Hub id as given."""
    task: str
    status: Status
    traffic_weight: float
    tags: tuple[str, ...]
    check_report: Mapping[str, Any]
    probe_report: Mapping[str, Any] | None
    forced: bool
    force_reason: str | None
    created_by: str
    created_at: str
    updated_at: str

    @property
    def ref(self) -> str:
        """`name@version`, the handle every command takes."""
        return f"{self.name}@{self.version}"

    @property
    def shadow(self) -> bool:
        """A candidate at weight 0: the server runs it beside production but never returns its answers."""
        return self.status is Status.CANDIDATE and self.traffic_weight == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (reports included as stored)."""
        return {
            "id": self.id,
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "path": self.path,
            "files": dict(self.files),
            "base": self.base,
            "task": self.task,
            "status": self.status.value,
            "traffic_weight": self.traffic_weight,
            "shadow": self.shadow,
            "tags": list(self.tags),
            "forced": self.forced,
            "force_reason": self.force_reason,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "check_report": dict(self.check_report),
            "probe_report": dict(self.probe_report) if self.probe_report is not None else None,
        }


@dataclass(frozen=True)
class Event:
    """One line of the append-only audit log: who did what to which adapter, and when (UTC ISO)."""

    id: int
    at: str
    actor: str
    kind: str
    """`added`, `forced`, `promoted`, `retired`, `traffic`, `verified-ok`, `verify-failed`, or a server alert."""
    ref: str | None
    detail: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor,
            "kind": self.kind,
            "ref": self.ref,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True)
class VerifyResult:
    """Re-hashing an entry's folder against the hashes recorded at registration."""

    ref: str
    ok: bool
    changed: tuple[str, ...]
    missing: tuple[str, ...]
    added: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "ok": self.ok,
            "changed": list(self.changed),
            "missing": list(self.missing),
            "added": list(self.added),
        }
