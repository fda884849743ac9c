"""Formatters of the registry's records (`loraguard registry ...`): text, or JSON documents with
`"schema": "loraguard.registry/1"`. One class per view: an added entry, a rejection, the list, one
entry, a change, verify results, the audit log."""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.table import Table
from rich.text import Text

from loraguard.report.console import findings_table, to_text
from loraguard.report.formatter import Formatter, json_text

if TYPE_CHECKING:
    from loraguard.errors import AdapterRejectedError
    from loraguard.registry.model import Entry, Event, VerifyResult

__all__ = [
    "AddedFormatter",
    "ChangeFormatter",
    "EntryFormatter",
    "EventsFormatter",
    "ListFormatter",
    "RejectedFormatter",
    "VerifyFormatter",
]

SCHEMA = "loraguard.registry/1"
"""= `loraguard.registry.REGISTRY_SCHEMA`: the registry sits above `report/`, so its records are imported
for type checking only and the schema is spelled out here."""


R = TypeVar("R")


class _RegistryFormatter(Formatter[R]):
    command = "loraguard registry"

    def json(self, result: R) -> str:
        return json_text({"schema": SCHEMA, **self.payload(result)}, ensure_ascii=False)

    @abstractmethod
    def payload(self, result: R) -> dict[str, Any]:
        """The JSON document without its schema."""


def line(entry: Entry) -> str:
    """`name@3: candidate, weight 0, shadow`."""
    shadow = ", shadow" if entry.shadow else ""
    return f"{entry.ref}: {entry.status.value}, weight {entry.traffic_weight:g}{shadow}"


def summary(entry: Entry) -> dict[str, Any]:
    """An entry's JSON without its reports and file hashes (a count and the verdicts instead)."""
    data = entry.to_dict()
    for heavy in ("check_report", "probe_report", "files"):
        data.pop(heavy)
    data["files"] = len(entry.files)
    data["check_verdict"] = entry.check_report.get("verdict")
    data["probe_verdict"] = entry.probe_report.get("verdict") if entry.probe_report else None
    return data


class AddedFormatter(_RegistryFormatter["Entry"]):
    """`registry add`: the new entry."""

    def text(self, result: Entry) -> str:
        verdict = result.check_report.get("verdict", "?")
        probe = f", probe {result.probe_report.get('verdict')}" if result.probe_report else ""
        forced = f" FORCED ({result.force_reason})" if result.forced else ""
        return (
            f"registered {line(result)}{forced}\n"
            f"  check {verdict}{probe}; {len(result.files)} file(s) hashed in {result.path}; base {result.base}\n"
        )

    def payload(self, result: Entry) -> dict[str, Any]:
        return {"entry": result.to_dict()}


class RejectedFormatter(_RegistryFormatter["AdapterRejectedError"]):
    """`registry add` refused the adapter: why, and the error findings of the report that refused it."""

    def __init__(self, *, width: int | None = 160, color: bool = False) -> None:
        self.width = width
        self.color = color

    def text(self, result: AdapterRejectedError) -> str:
        report = result.report

        def draw(console: Console) -> None:
            verdict = getattr(getattr(report, "verdict", None), "value", "fail")
            console.print(Text(f"REJECTED ({verdict.upper()}): {result}", style="bold red"))
            errors = tuple(getattr(report, "errors", ()))
            if errors:
                console.print(findings_table(errors))
            console.print("Fix the adapter and add it again, or register it anyway with --force --reason '...'.")

        return to_text(draw, width=self.width, color=self.color)

    def payload(self, result: AdapterRejectedError) -> dict[str, Any]:
        report = result.report
        to_dict = getattr(report, "to_dict", None)
        return {"rejected": True, "message": str(result), "report": to_dict() if callable(to_dict) else None}


class ListFormatter(_RegistryFormatter[tuple[int, Sequence["Entry"]]]):
    """`registry list`: (revision, entries) as a table, or JSON entry summaries."""

    def __init__(self, *, width: int | None = 160, color: bool = False) -> None:
        self.width = width
        self.color = color

    def text(self, result: tuple[int, Sequence[Entry]]) -> str:
        _, entries = result
        if not entries:
            return "no adapters registered (loraguard registry add NAME PATH --base BASE)\n"
        table = Table(box=None, header_style="bold", pad_edge=False)
        for col in ("ref", "status", "weight", "shadow", "base", "forced", "created"):
            table.add_column(col, overflow="fold")
        style = {"production": "green", "candidate": "yellow", "retired": "dim"}
        for e in entries:
            table.add_row(
                e.ref,
                Text(e.status.value, style=style[e.status.value]),  # markup is off in SafeConsole
                f"{e.traffic_weight:g}",
                "yes" if e.shadow else "",
                e.base,
                "FORCED" if e.forced else "",
                f"{e.created_at[:19].replace('T', ' ')} {e.created_by}",
            )
        return to_text(lambda console: console.print(table), width=self.width, color=self.color)

    def payload(self, result: tuple[int, Sequence[Entry]]) -> dict[str, Any]:
        revision, entries = result
        return {"revision": revision, "entries": [summary(e) for e in entries]}


class EntryFormatter(_RegistryFormatter["Entry"]):
    """`registry show`: one entry with its files, reports and flags."""

    def text(self, result: Entry) -> str:
        lines = [line(result) + (f"  FORCED: {result.force_reason}" if result.forced else "")]
        keys = ("source", "path", "base", "task", "created_by", "created_at", "updated_at")
        lines += [f"  {key + ':':12}{getattr(result, key)}" for key in keys]
        lines.append(f"  {'tags:':12}{', '.join(result.tags) or '-'}")
        probe = result.probe_report.get("verdict") if result.probe_report else "not run"
        findings = result.check_report.get("findings") or []
        verdict = result.check_report.get("verdict")
        lines.append(f"  {'check:':12}{verdict} ({len(findings)} finding(s)); probe: {probe}")
        lines += [f"    {f.get('severity')} {f.get('code')} {f.get('category')}: {f.get('message')}" for f in findings]
        lines.append(f"  files ({len(result.files)}):")
        lines += [f"    {digest}  {rel}" for rel, digest in result.files.items()]
        return "\n".join(lines) + "\n"

    def payload(self, result: Entry) -> dict[str, Any]:
        return {"entry": result.to_dict()}


class ChangeFormatter(_RegistryFormatter["Entry"]):
    """`registry promote|retire|set-traffic`: the changed entry."""

    def __init__(self, what: str) -> None:
        self.what = what
        """What happened, e.g. `promoted`."""

    def text(self, result: Entry) -> str:
        return f"{self.what}: {line(result)}\n"

    def payload(self, result: Entry) -> dict[str, Any]:
        return {"entry": summary(result)}


class VerifyFormatter(_RegistryFormatter[Sequence["VerifyResult"]]):
    """`registry verify`: OK or MISMATCH per entry, with the files that changed."""

    def text(self, result: Sequence[VerifyResult]) -> str:
        if not result:
            return "nothing to verify (no non-retired entries)\n"
        lines = []
        for r in result:
            if r.ok:
                lines.append(f"OK       {r.ref}")
                continue
            parts = [
                f"{label} {', '.join(files)}"
                for label, files in (("changed:", r.changed), ("missing:", r.missing), ("added:", r.added))
                if files
            ]
            lines.append(f"MISMATCH {r.ref}  " + "; ".join(parts))
        return "\n".join(lines) + "\n"

    def payload(self, result: Sequence[VerifyResult]) -> dict[str, Any]:
        return {"ok": all(r.ok for r in result), "results": [r.to_dict() for r in result]}


class EventsFormatter(_RegistryFormatter[Sequence["Event"]]):
    """`registry events`: the audit log, newest first."""

    def text(self, result: Sequence[Event]) -> str:
        if not result:
            return "no events\n"
        lines = []
        for e in result:
            detail = json.dumps(dict(e.detail), ensure_ascii=False, default=str)
            lines.append(f"{e.at[:19].replace('T', ' ')}  {e.actor:<12} {e.kind:<14} {e.ref or '-':<20} {detail}")
        return "\n".join(lines) + "\n"

    def payload(self, result: Sequence[Event]) -> dict[str, Any]:
        return {"events": [e.to_dict() for e in result]}
