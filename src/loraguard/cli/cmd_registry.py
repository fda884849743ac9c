"""`loraguard registry ...`: register checked adapters, promote, retire, weigh traffic, verify, audit.

A thin shell over `loraguard.registry.Registry`. Exit 0 ok; 1 when `add` rejects an adapter or
`verify` finds a mismatch; 2 on bad input (unknown ref, bad URL, not a registry, locked database...).
Nothing heavy is imported here: SQLAlchemy (and torch, for --probe) load inside the commands.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loraguard.cli.options import format_option
from loraguard.report.formatter import Formatter
from loraguard.report.registry_formatter import (
    AddedFormatter,
    ChangeFormatter,
    EntryFormatter,
    EventsFormatter,
    ListFormatter,
    RejectedFormatter,
    VerifyFormatter,
)

if TYPE_CHECKING:
    from loraguard.registry import Registry

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
JsonOpt = Annotated[bool, typer.Option("--json", hidden=True, help="Same as --format json (kept for scripts).")]
FormatOpt = format_option(EntryFormatter)  # JSON documents carry "schema": "loraguard.registry/1"
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


def _open(url: str | None, lock_timeout: float, *, create: bool = True) -> Registry:
    """The registry; read-only commands pass `create=False` so they never create a database file."""
    from loraguard.registry import Registry

    return Registry(url, lock_timeout=lock_timeout, create=create)


def _print(formatter: Formatter[Any], result: Any, fmt: str, as_json: bool) -> None:
    """`result` on stdout in `--format` (`--json` is the older spelling of `--format json`)."""
    sys.stdout.write(formatter.render(result, "json" if as_json else fmt))


def _rich_options() -> dict[str, Any]:
    """Tables as wide as the terminal, in colour, on a terminal; 160 columns of plain text otherwise."""
    if sys.stdout.isatty():
        import shutil

        return {"width": shutil.get_terminal_size().columns, "color": True}
    return {"width": 160, "color": False}


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
            help="Also probe on these labelled rows (Jigsaw CSV; needs the ml extra and a base probe can load: "
            "a model folder, a .gguf file or a known model's name).",
        ),
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="Task label (default: the adapter's task_type).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Register despite error findings (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why --force: kept in the entry and the log.")] = None,
    actor: ActorOpt = None,
    fmt: str = FormatOpt,
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
            _print(RejectedFormatter(**_rich_options()), exc, fmt, as_json)
            return 1
    _print(AddedFormatter(), entry, fmt, as_json)
    return 0


def list_command(
    status: Annotated[str | None, typer.Option("--status", help="candidate, production or retired.")] = None,
    base: Annotated[str | None, typer.Option("--base", "-b", help="Only entries for this base.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only versions of this adapter name.")] = None,
    fmt: str = FormatOpt,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    with _open(registry, lock_timeout, create=False) as reg:
        entries = reg.list(status=status, base=base, name=name)
        revision = reg.revision()
    _print(ListFormatter(**_rich_options()), (revision, entries), fmt, as_json)
    return 0


def show_command(
    ref: RefArg,
    fmt: str = FormatOpt,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    with _open(registry, lock_timeout, create=False) as reg:
        entry = reg.get(ref)
    _print(EntryFormatter(), entry, fmt, as_json)
    return 0


def promote_command(
    ref: RefArg,
    actor: ActorOpt = None,
    fmt: str = FormatOpt,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    with _open(registry, lock_timeout) as reg:
        entry = reg.promote(ref, actor=actor)
    _print(ChangeFormatter("promoted"), entry, fmt, as_json)
    return 0


def retire_command(
    ref: RefArg,
    actor: ActorOpt = None,
    fmt: str = FormatOpt,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    with _open(registry, lock_timeout) as reg:
        entry = reg.retire(ref, actor=actor)
    _print(ChangeFormatter("retired"), entry, fmt, as_json)
    return 0


def set_traffic_command(
    ref: RefArg,
    weight: Annotated[float, typer.Argument(help="Relative traffic weight, finite and >= 0.")],
    actor: ActorOpt = None,
    fmt: str = FormatOpt,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    with _open(registry, lock_timeout) as reg:
        entry = reg.set_traffic(ref, weight, actor=actor)
    _print(ChangeFormatter("traffic set"), entry, fmt, as_json)
    return 0


def verify_command(
    ref: Annotated[str | None, typer.Argument(help="NAME or NAME@VERSION (default: every non-retired entry).")] = None,
    actor: ActorOpt = None,
    fmt: str = FormatOpt,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    with _open(registry, lock_timeout) as reg:
        results = reg.verify(ref, actor=actor)
    failed = [r for r in results if not r.ok]
    _print(VerifyFormatter(), results, fmt, as_json)
    if failed and not (as_json or fmt == "json"):
        print(
            f"{len(failed)} of {len(results)} entr{'y' if len(results) == 1 else 'ies'} changed on disk since "
            "registration: re-register the adapter (a new version) or restore its files.",
            file=sys.stderr,
        )
    return 1 if failed else 0


def events_command(
    ref: Annotated[str | None, typer.Argument(help="NAME (all versions) or NAME@VERSION (default: all).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 50,
    fmt: str = FormatOpt,
    as_json: JsonOpt = False,
    registry: RegistryOpt = None,
    lock_timeout: LockOpt = 10.0,
) -> int:
    with _open(registry, lock_timeout, create=False) as reg:
        found = reg.events(ref, limit=limit)
    _print(EventsFormatter(), found, fmt, as_json)
    return 0
