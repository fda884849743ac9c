"""`Registry`: register checked adapters, move them through candidate → production → retired, audit it.

Every change is one transaction that also bumps a revision counter (the server polls `revision()`
once a second and reloads only when it moved) and appends to the `events` log. The store only
stores: `registry.admission.admit` checks (and optionally probes) an adapter and calls `insert`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Row, func, or_, select

from loraguard.errors import InputError, RegistryError, RegistryNotFoundError
from loraguard.registry.db import Database
from loraguard.registry.hashing import diff_hashes, hash_files
from loraguard.registry.model import Entry, Event, Status, VerifyResult
from loraguard.registry.schema import adapters, events, monitors, state
from loraguard.registry.validate import (
    default_actor,
    normalize_base,
    parse_ref,
    registry_url,
    validate_name,
    validate_tags,
    validate_weight,
)

__all__ = ["Registry"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _json_ready(report: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(report), default=str))  # exactly what the TEXT column will give back


class Registry:
    """The adapter registry at `url` (see `registry_url`), created or upgraded on open.

    `lock_timeout` (seconds) is how long a write waits for another writer before
    `RegistryLockedError`. With `create=False` (for reading) a registry that does not exist yet is a
    `RegistryError` and no file is created. Use as a context manager, or call `close()`.
    """

    def __init__(self, url: str | None = None, *, lock_timeout: float = 10.0, create: bool = True) -> None:
        self.url = registry_url(url)
        self._db = Database(self.url, lock_timeout)
        try:
            self.upgraded_from = self._db.open(create=create)
        except BaseException:
            self._db.dispose()
            raise

    @property
    def display_url(self) -> str:
        """The URL with any password hidden (for messages)."""
        return self._db.display

    def close(self) -> None:
        self._db.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def revision(self) -> int:
        """A counter bumped by every change: poll it and reload only when it moved."""
        with self._db.read() as conn:
            return int(conn.execute(select(state.c.revision)).scalar_one())

    # -- adding -------------------------------------------------------------------------------------

    def insert(
        self,
        name: str,
        *,
        source: str,
        path: str,
        files: Mapping[str, str],
        base: str,
        task: str,
        check_report: Mapping[str, Any],
        probe_report: Mapping[str, Any] | None = None,
        forced: Sequence[str] = (),
        reason: str | None = None,
        tags: Sequence[str] = (),
        actor: str | None = None,
    ) -> Entry:
        """Store a new version of `name` (max+1): a candidate at weight 0 (shadow), with its reports.

        The store only stores: deciding whether an adapter may be registered (check, probe, force)
        is `loraguard.registry.admission.admit`'s job. `forced` lists the codes of the error findings
        registered anyway (needs a `reason`); `check_report`/`probe_report` are JSON-ready mappings.
        """
        validate_name(name)
        reason = reason.strip() if reason else None
        forced = tuple(forced)
        if forced and not reason:
            raise InputError("--force needs --reason: say why this adapter is registered despite its errors")
        tag_list = validate_tags(tags)
        who = default_actor(actor)
        base_norm = normalize_base(base)
        check_dict = _json_ready(check_report)
        probe_dict = _json_ready(probe_report) if probe_report is not None else None
        now = _now()
        values = {
            "name": name,
            "source": source,
            "path": path,
            "files": json.dumps(dict(files)),
            "base": base_norm,
            "task": task,
            "status": Status.CANDIDATE.value,
            "traffic_weight": 0.0,
            "tags": json.dumps(list(tag_list)),
            "check_report": json.dumps(check_dict),
            "probe_report": json.dumps(probe_dict) if probe_dict is not None else None,
            "forced": bool(forced),
            "force_reason": reason if forced else None,
            "created_by": who,
            "created_at": now,
            "updated_at": now,
        }
        with self._db.write() as conn:
            latest = conn.execute(select(func.max(adapters.c.version)).where(adapters.c.name == name)).scalar()
            version = int(latest or 0) + 1
            conn.execute(adapters.insert().values(version=version, **values))
            ref = f"{name}@{version}"
            self._event(
                conn,
                "added",
                ref,
                {"source": source, "base": base_norm, "files": len(files), "verdict": check_dict.get("verdict")},
                who,
            )
            if forced:
                self._event(conn, "forced", ref, {"reason": reason, "errors": list(forced)}, who)
            return self._get(conn, name, version)

    # -- reading ------------------------------------------------------------------------------------

    def get(self, ref: str) -> Entry:
        """`name` → its highest version; `name@3` → that version; else `RegistryNotFoundError`."""
        name, version = parse_ref(ref)
        with self._db.read() as conn:
            return self._get(conn, name, version)

    def list(
        self,
        *,
        status: Status | str | None = None,
        base: str | None = None,
        name: str | None = None,
        include_retired: bool = True,
    ) -> tuple[Entry, ...]:
        """Entries ordered by name and version, filtered by status, (normalised) base and name."""
        query = select(adapters).order_by(adapters.c.name, adapters.c.version)
        if status is not None:
            query = query.where(adapters.c.status == _status(status).value)
        if base is not None:
            query = query.where(adapters.c.base == normalize_base(base))
        if name is not None:
            query = query.where(adapters.c.name == name)
        if not include_retired:
            query = query.where(adapters.c.status != Status.RETIRED.value)
        with self._db.read() as conn:
            return tuple(_entry(row) for row in conn.execute(query))

    def serving(self, base: str) -> tuple[Entry, ...]:
        """What a server for `base` should load: its production and candidate entries."""
        query = (
            select(adapters)
            .where(adapters.c.base == normalize_base(base))
            .where(adapters.c.status.in_([Status.PRODUCTION.value, Status.CANDIDATE.value]))
            .order_by(adapters.c.name, adapters.c.version)
        )
        with self._db.read() as conn:
            return tuple(_entry(row) for row in conn.execute(query))

    # -- changing -----------------------------------------------------------------------------------

    def promote(self, ref: str, *, actor: str | None = None) -> Entry:
        """Make `ref` production (weight 1.0 if it was 0) and retire the name's other production versions."""
        name, version = parse_ref(ref)
        who = default_actor(actor)
        with self._db.write() as conn:
            entry = self._get(conn, name, version)
            now = _now()
            others = (
                conn.execute(
                    select(adapters.c.version)
                    .where(adapters.c.name == name)
                    .where(adapters.c.status == Status.PRODUCTION.value)
                    .where(adapters.c.version != entry.version)
                )
                .scalars()
                .all()
            )
            for other in others:
                conn.execute(
                    adapters.update()
                    .where(adapters.c.name == name)
                    .where(adapters.c.version == other)
                    .values(status=Status.RETIRED.value, traffic_weight=0.0, updated_at=now)
                )
                self._event(conn, "retired", f"{name}@{other}", {"by_promotion_of": entry.ref}, who)
            weight = entry.traffic_weight if entry.traffic_weight > 0 else 1.0
            conn.execute(
                adapters.update()
                .where(adapters.c.id == entry.id)
                .values(status=Status.PRODUCTION.value, traffic_weight=weight, updated_at=now)
            )
            self._event(
                conn,
                "promoted",
                entry.ref,
                {"from": entry.status.value, "weight": weight, "retired": [f"{name}@{v}" for v in others]},
                who,
            )
            return self._get(conn, name, entry.version)

    def retire(self, ref: str, *, actor: str | None = None) -> Entry:
        """Stop serving `ref`: status retired, weight 0 (the entry and its history stay)."""
        name, version = parse_ref(ref)
        who = default_actor(actor)
        with self._db.write() as conn:
            entry = self._get(conn, name, version)
            conn.execute(
                adapters.update()
                .where(adapters.c.id == entry.id)
                .values(status=Status.RETIRED.value, traffic_weight=0.0, updated_at=_now())
            )
            self._event(conn, "retired", entry.ref, {"from": entry.status.value}, who)
            return self._get(conn, name, entry.version)

    def set_traffic(self, ref: str, weight: float, *, actor: str | None = None) -> Entry:
        """Set `ref`'s relative traffic weight (finite, ≥ 0; 0 on a candidate = shadow). Not on retired entries."""
        value = validate_weight(weight)
        name, version = parse_ref(ref)
        who = default_actor(actor)
        with self._db.write() as conn:
            entry = self._get(conn, name, version)
            if entry.status is Status.RETIRED:
                raise RegistryError(
                    f"{entry.ref} is retired: promote it (or register a new version) before giving it traffic"
                )
            conn.execute(
                adapters.update().where(adapters.c.id == entry.id).values(traffic_weight=value, updated_at=_now())
            )
            self._event(conn, "traffic", entry.ref, {"from": entry.traffic_weight, "to": value}, who)
            return self._get(conn, name, entry.version)

    def verify(self, ref: str | None = None, *, actor: str | None = None) -> tuple[VerifyResult, ...]:
        """Re-hash the files of `ref` (every non-retired entry when None) against the recorded hashes.

        Records a `verified-ok` or `verify-failed` event per entry. A missing folder reports every file missing.
        """
        entries = (self.get(ref),) if ref is not None else self.list(include_retired=False)
        results = []
        for entry in entries:
            try:
                current = hash_files(entry.path)
            except InputError:
                current = {}
            changed, missing, added = diff_hashes(entry.files, current)
            ok = not (changed or missing or added)
            results.append(VerifyResult(entry.ref, ok, changed, missing, added))
        if results:
            who = default_actor(actor)
            with self._db.write() as conn:
                for result in results:
                    detail = {
                        "changed": list(result.changed),
                        "missing": list(result.missing),
                        "added": list(result.added),
                    }
                    self._event(conn, "verified-ok" if result.ok else "verify-failed", result.ref, detail, who)
        return tuple(results)

    # -- events -------------------------------------------------------------------------------------

    def record_event(
        self, kind: str, ref: str | None, detail: str | Mapping[str, Any], *, actor: str | None = None
    ) -> None:
        """Append an event (e.g. a server alert); a string `detail` is stored as `{"message": detail}`."""
        kind = (kind or "").strip()
        if not kind:
            raise InputError("event kind: empty")
        payload = {"message": detail} if isinstance(detail, str) else dict(detail)
        with self._db.write() as conn:
            self._event(conn, kind, ref, payload, default_actor(actor))

    def events(self, ref: str | None = None, limit: int = 100) -> tuple[Event, ...]:
        """The newest `limit` events, newest first; `ref` = `name` (all its versions) or `name@3`."""
        if limit < 1:
            raise InputError(f"limit {limit}: must be at least 1")
        query = select(events).order_by(events.c.id.desc()).limit(limit)
        if ref is not None:
            name, version = parse_ref(ref)
            query = query.where(
                events.c.ref == f"{name}@{version}"
                if version is not None
                else or_(events.c.ref == name, events.c.ref.like(f"{name}@%"))
            )
        with self._db.read() as conn:
            return tuple(
                Event(row.id, row.at, row.actor, row.kind, row.ref, json.loads(row.detail))
                for row in conn.execute(query)
            )

    # -- server monitors ----------------------------------------------------------------------------

    def save_monitors(self, base: str, instance: str, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Replace server `instance`'s saved monitor states for `base` with `states` (ref → JSON state),
        in one transaction that does not bump the revision (servers must not reload over it)."""
        key = normalize_base(base)
        now = _now()
        with self._db.write(bump=False) as conn:
            conn.execute(monitors.delete().where(monitors.c.base == key, monitors.c.instance == instance))
            for ref, saved in states.items():
                conn.execute(
                    monitors.insert().values(
                        base=key,
                        instance=instance,
                        ref=ref,
                        state=json.dumps(dict(saved)),
                        n=int(saved.get("n", 0)) if isinstance(saved.get("n", 0), int) else 0,
                        updated_at=now,
                    )
                )

    def load_monitors(self, base: str, instance: str) -> dict[str, dict[str, Any]]:
        """The monitor states `save_monitors` stored for this base and server instance (ref → state)."""
        key = normalize_base(base)
        query = select(monitors.c.ref, monitors.c.state).where(monitors.c.base == key, monitors.c.instance == instance)
        with self._db.read() as conn:
            return {row.ref: json.loads(row.state) for row in conn.execute(query)}

    # -- helpers ------------------------------------------------------------------------------------

    def _get(self, conn: Connection, name: str, version: int | None) -> Entry:
        query = select(adapters).where(adapters.c.name == name)
        if version is None:
            query = query.order_by(adapters.c.version.desc()).limit(1)
        else:
            query = query.where(adapters.c.version == version)
        row = conn.execute(query).first()
        if row is None:
            what = f"{name}@{version}" if version is not None else name
            raise RegistryNotFoundError(
                f"no adapter {what} in registry {self.display_url}: see `loraguard registry list`"
            )
        return _entry(row)

    @staticmethod
    def _event(conn: Connection, kind: str, ref: str | None, detail: Mapping[str, Any], actor: str) -> None:
        conn.execute(
            events.insert().values(
                at=_now(), actor=actor, kind=kind, ref=ref, detail=json.dumps(dict(detail), default=str)
            )
        )


def _status(value: Status | str) -> Status:
    try:
        return Status(value)
    except ValueError:
        raise InputError(f"status {value!r}: expected one of {', '.join(s.value for s in Status)}") from None


def _entry(row: Row[Any]) -> Entry:
    probe = row.probe_report
    return Entry(
        id=row.id,
        name=row.name,
        version=row.version,
        source=row.source,
        path=row.path,
        files=json.loads(row.files),
        base=row.base,
        task=row.task,
        status=Status(row.status),
        traffic_weight=float(row.traffic_weight),
        tags=tuple(json.loads(row.tags)),
        check_report=json.loads(row.check_report),
        probe_report=json.loads(probe) if probe else None,
        forced=bool(row.forced),
        force_reason=row.force_reason,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
