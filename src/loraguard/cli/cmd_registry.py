"""`loraguard registry ...`: register checked adapters, promote, retire, weigh traffic, verify, audit.

A thin shell over `loraguard.registry.Registry`. Exit 0 ok; 1 when `add` rejects an adapter or
`verify` finds a mismatch; 2 on bad input (unknown ref, bad URL, not a registry, locked database...).
Nothing heavy is imported here: SQLAlchemy (and torch, for --probe) load inside the commands.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from loraguard.registry import Entry, Registry

_SCHEMA = "loraguard.registry/1"  # = loraguard.registry.REGISTRY_SCHEMA, kept literal to import nothing

RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry",
        "-r",
        help="Registry URL: sqlite:///FILE (or just FILE), postgresql+psycopg://user@host/db. "
        "Default: $LORAGUARD_REGISTRY, else sqlite:///loraguard-registry.db in the working folder.",
    ),
]
LockOpt = Annotated[
    float, typer.Option("--lock-timeout", min=0.0, help="Seconds to wait for another writer before giving up.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (schema loraguard.registry/1).")]
ActorOpt = Annotated[str | None, typer.Option("--actor", help="Who is acting (default: the OS user).")]
RefArg = Annotated[str, typer.Argument(help="NAME (its highest version) or NAME@VERSION.")]


def register(app: typer.Typer) -> None:
    """Add the `registry` sub-commands to `app`."""
    sub = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    sub.command(
        "add",
        help="Check (and with --probe, probe) an adapter, then register it as a new version: a "
        "candidate at traffic weight 0 (shadow). Exit 1 and nothing written when it has errors, unless "
        "--force --reason.",
        epilog="Example: loraguard registry add toxicity ./adapters/toxicity --base ./bases/qwen "
        "--probe rows.csv --tag team-a",
    )(add_command)
    sub.command("list", help="List the registered adapter versions.")(list_command)
    sub.command("show", help="Show one entry: files and hashes, reports, flags.")(show_command)
    sub.command(
        "promote", help="Make a version production (weight 1 if it was 0); retires the name's other production version."
    )(promote_command)
    sub.command("retire", help="Stop serving a version (status retired, weight 0).")(retire_command)
    sub.command("set-traffic", help="Set a version's relative traffic weight (>= 0; 0 on a candidate = shadow).")(
        set_traffic_command
    )
    sub.command(
        "verify",
        help="Re-hash the adapter files (one ref, or every non-retired entry) against the "
        "hashes recorded at registration. Exit 1 on any mismatch.",
    )(verify_command)
    sub.command("events", help="The audit log, newest first.")(events_command)
    app.add_typer(
        sub,
        name="registry",
        help="The adapter registry: register checked adapters (SQLite or "
        "PostgreSQL), promote, retire, set traffic weights, verify file hashes, read the audit log.",
    )


def _open(url: str | None, lock_timeout: float) -> Registry:
    from loraguard.registry import Registry

    return Registry(url, lock_timeout=lock_timeout)


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _dump(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps({"schema": _SCHEMA, **payload}, indent=2, ensure_ascii=False) + "\n")


def _line(entry: Entry) -> str:
    shadow = ", shadow" if entry.shadow else ""
    return f"{entry.ref}: {entry.status.value}, weight {entry.traffic_weight:g}{shadow}"


def add_command(
    name: Annotated[str, typer.Argument(help="Adapter name (versions are numbered per name).")],
    path: Annotated[str, typer.Argument(help="Adapter folder or Hub repo id (org/name).")],
    base: Annotated[
        str,
        typer.Option(
            "--base",
            "-b",
            help="Base: folder with config.json, catalog name or Hub id. A folder is stored as its absolute path.",
        ),
    ],
    probe_data: Annotated[
        str | None,
        typer.Option(
            "--probe",
            help="Also probe on these labelled rows (Jigsaw CSV; needs the ml extra and a local base folder).",
        ),
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="Task label (default: the adapter's task_type).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Register despite error findings (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why --force: kept in the entry and the log.")] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    from loraguard.errors import AdapterRejectedError, InputError
    from loraguard.registry.admission import admit

    if force and not (reason and reason.strip()):
        raise InputError("--force needs --reason: say why this adapter is registered despite its errors")
    with _open(registry, lock_timeout) as reg:
        try:
            entry = admit(
                reg,
                name,
                path,
                base=base,
                task=task,
                probe_data=probe_data,
                force=force,
                reason=reason,
                tags=tag or (),
                actor=actor,
            )
        except AdapterRejectedError as exc:
            return _rejected(exc, as_json)
    if as_json:
        _dump({"entry": entry.to_dict()})
        return 0
    verdict = entry.check_report.get("verdict", "?")
    probe = f", probe {entry.probe_report.get('verdict')}" if entry.probe_report else ""
    forced = f" FORCED ({entry.force_reason})" if entry.forced else ""
    print(f"registered {_line(entry)}{forced}")
    print(f"  check {verdict}{probe}; {len(entry.files)} file(s) hashed in {entry.path}; base {entry.base}")
    return 0


def _rejected(exc: Any, as_json: bool) -> int:
    report = exc.report
    if as_json:
        _dump(
            {"rejected": True, "message": str(exc), "report": report.to_dict() if hasattr(report, "to_dict") else None}
        )
        return 1
    from rich.text import Text

    from loraguard.report.render import findings_table

    console = _console()
    verdict = getattr(getattr(report, "verdict", None), "value", "fail")
    console.print(Text(f"REJECTED ({verdict.upper()}): {exc}", style="bold red"))
    errors = tuple(getattr(report, "errors", ()))
    if errors:
        console.print(findings_table(errors))
    console.print("Fix the adapter and add it again, or register it anyway with --force --reason '...'.")
    return 1


def list_command(
    status: Annotated[str | None, typer.Option("--status", help="candidate, production or retired.")] = None,
    base: Annotated[str | None, typer.Option("--base", "-b", help="Only entries for this base.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only versions of this adapter name.")] = None,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    with _open(registry, lock_timeout) as reg:
        entries = reg.list(status=status, base=base, name=name)
        revision = reg.revision()
    if as_json:
        _dump({"revision": revision, "entries": [_summary(e) for e in entries]})
        return 0
    if not entries:
        print("no adapters registered (loraguard registry add NAME PATH --base BASE)")
        return 0
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ref", "status", "weight", "shadow", "base", "forced", "created"):
        table.add_column(col, overflow="fold")
    style = {"production": "green", "candidate": "yellow", "retired": "dim"}
    for e in entries:
        table.add_row(
            e.ref,
            f"[{style[e.status.value]}]{e.status.value}[/]",
            f"{e.traffic_weight:g}",
            "yes" if e.shadow else "",
            e.base,
            "FORCED" if e.forced else "",
            f"{e.created_at[:19].replace('T', ' ')} {e.created_by}",
        )
    _console().print(table)
    return 0


def _summary(entry: Entry) -> dict[str, Any]:
    data = entry.to_dict()
    for heavy in ("check_report", "probe_report", "files"):
        data.pop(heavy)
    data["files"] = len(entry.files)
    data["check_verdict"] = entry.check_report.get("verdict")
    data["probe_verdict"] = entry.probe_report.get("verdict") if entry.probe_report else None
    return data


def show_command(
    ref: RefArg, as_json: JsonOpt = False, registry: RegistryOpt = None, lock_timeout: LockOpt = 10.0
) -> int:
    with _open(registry, lock_timeout) as reg:
        entry = reg.get(ref)
    if as_json:
        _dump({"entry": entry.to_dict()})
        return 0
    print(_line(entry) + (f"  FORCED: {entry.force_reason}" if entry.forced else ""))
    for key in ("source", "path", "base", "task", "created_by", "created_at", "updated_at"):
        print(f"  {key + ':':12}{getattr(entry, key)}")
    print(f"  {'tags:':12}{', '.join(entry.tags) or '-'}")
    probe = entry.probe_report.get("verdict") if entry.probe_report else "not run"
    findings = entry.check_report.get("findings") or []
    print(f"  {'check:':12}{entry.check_report.get('verdict')} ({len(findings)} finding(s)); probe: {probe}")
    for f in findings:
        print(f"    {f.get('severity')} {f.get('code')} {f.get('category')}: {f.get('message')}")
    print(f"  files ({len(entry.files)}):")
    for rel, digest in entry.files.items():
        print(f"    {digest}  {rel}")
    return 0


def promote_command(
    ref: RefArg,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    with _open(registry, lock_timeout) as reg:
        entry = reg.promote(ref, actor=actor)
    return _changed("promoted", entry, as_json)


def retire_command(
    ref: RefArg,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    with _open(registry, lock_timeout) as reg:
        entry = reg.retire(ref, actor=actor)
    return _changed("retired", entry, as_json)


def set_traffic_command(
    ref: RefArg,
    weight: Annotated[float, typer.Argument(help="Relative traffic weight, finite and >= 0.")],
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    with _open(registry, lock_timeout) as reg:
        entry = reg.set_traffic(ref, weight, actor=actor)
    return _changed("traffic set", entry, as_json)


def _changed(what: str, entry: Entry, as_json: bool) -> int:
    if as_json:
        _dump({"entry": _summary(entry)})
    else:
        print(f"{what}: {_line(entry)}")
    return 0


def verify_command(
    ref: Annotated[str | None, typer.Argument(help="NAME or NAME@VERSION (default: every non-retired entry).")] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    with _open(registry, lock_timeout) as reg:
        results = reg.verify(ref, actor=actor)
    failed = [r for r in results if not r.ok]
    if as_json:
        _dump({"ok": not failed, "results": [r.to_dict() for r in results]})
        return 1 if failed else 0
    if not results:
        print("nothing to verify (no non-retired entries)")
    for r in results:
        if r.ok:
            print(f"OK       {r.ref}")
            continue
        parts = [
            f"{label} {', '.join(files)}"
            for label, files in (("changed:", r.changed), ("missing:", r.missing), ("added:", r.added))
            if files
        ]
        print(f"MISMATCH {r.ref}  " + "; ".join(parts))
    if failed:
        print(
            f"{len(failed)} of {len(results)} entr{'y' if len(results) == 1 else 'ies'} changed on disk since "
            "registration: re-register the adapter (a new version) or restore its files.",
            file=sys.stderr,
        )
    return 1 if failed else 0


def events_command(
    ref: Annotated[str | None, typer.Argument(help="NAME (all versions) or NAME@VERSION (default: all).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 50,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    with _open(registry, lock_timeout) as reg:
        found = reg.events(ref, limit=limit)
    if as_json:
        _dump({"events": [e.to_dict() for e in found]})
        return 0
    for e in found:
        detail = json.dumps(dict(e.detail), ensure_ascii=False, default=str)
        print(f"{e.at[:19].replace('T', ' ')}  {e.actor:<12} {e.kind:<14} {e.ref or '-':<20} {detail}")
    if not found:
        print("no events")
    return 0
