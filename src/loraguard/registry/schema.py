"""The registry's tables and their versioned migrations (no Alembic: a `loraguard_schema` table).

`loraguard_schema(version)` holds one row: the schema version the database is at. `MIGRATIONS[i]`
takes a database from version `i` to `i + 1`; a fresh database runs them all, an older one the rest,
in the caller's single transaction, so a crash mid-upgrade leaves the old version intact. A database at a
newer version, or one holding other tables but no `loraguard_schema`, is refused: never guess.

    v1  loraguard_state (revision counter), loraguard_adapters (without tags)
    v2  loraguard_adapters.tags, loraguard_events (append-only audit log)
    v3  loraguard_monitors (each server's live monitor per adapter, so a restart keeps its statistics)

Columns are portable SQL types (JSON is stored as TEXT): SQLite and PostgreSQL behave the same.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
)

from loraguard.errors import RegistrySchemaError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "adapters",
    "ensure_schema",
    "events",
    "metadata",
    "monitors",
    "schema",
    "state",
]

PREFIX = "loraguard_"


def _adapter_columns(*, tags: bool) -> list[Column]:
    columns: list[Column] = [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(128), nullable=False),
        Column("version", Integer, nullable=False),
        Column("source", Text, nullable=False),
        Column("path", Text, nullable=False),
        Column("files", Text, nullable=False),
        Column("base", Text, nullable=False),
        Column("task", String(64), nullable=False),
        Column("status", String(16), nullable=False),
        Column("traffic_weight", Float, nullable=False),
        Column("check_report", Text, nullable=False),
        Column("probe_report", Text, nullable=True),
        Column("forced", Boolean, nullable=False),
        Column("force_reason", Text, nullable=True),
        Column("created_by", String(255), nullable=False),
        Column("created_at", String(40), nullable=False),
        Column("updated_at", String(40), nullable=False),
    ]
    if tags:
        columns.append(Column("tags", Text, nullable=False, server_default="[]"))
    return columns


def _schema_table(meta: MetaData) -> Table:
    return Table(f"{PREFIX}schema", meta, Column("version", Integer, nullable=False))


def _state_table(meta: MetaData) -> Table:
    return Table(
        f"{PREFIX}state",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("revision", Integer, nullable=False),
    )


def _adapters_table(meta: MetaData, *, tags: bool) -> Table:
    return Table(
        f"{PREFIX}adapters",
        meta,
        *_adapter_columns(tags=tags),
        UniqueConstraint("name", "version", name=f"{PREFIX}adapters_name_version"),
        Index(f"{PREFIX}adapters_base", "base"),
    )


def _events_table(meta: MetaData) -> Table:
    return Table(
        f"{PREFIX}events",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", String(40), nullable=False),
        Column("actor", String(255), nullable=False),
        Column("kind", String(64), nullable=False),
        Column("ref", String(160), nullable=True),
        Column("detail", Text, nullable=False),
        Index(f"{PREFIX}events_ref", "ref"),
    )


def _monitors_table(meta: MetaData) -> Table:
    return Table(
        f"{PREFIX}monitors",
        meta,
        Column("base", Text, nullable=False),
        Column("instance", String(255), nullable=False),
        Column("ref", String(160), nullable=False),
        Column("state", Text, nullable=False),
        Column("n", Integer, nullable=False),
        Column("updated_at", String(40), nullable=False),
        UniqueConstraint("base", "instance", "ref", name=f"{PREFIX}monitors_key"),
    )


metadata = MetaData()
"""The current (latest) schema, used for every query."""
schema = _schema_table(metadata)
state = _state_table(metadata)
adapters = _adapters_table(metadata, tags=True)
events = _events_table(metadata)
monitors = _monitors_table(metadata)


def _to_v1(conn: Connection) -> None:
    meta = MetaData()
    _schema_table(meta)
    _state_table(meta)
    _adapters_table(meta, tags=False)
    meta.create_all(conn)
    conn.execute(state.insert().values(id=1, revision=0))
    conn.execute(schema.insert().values(version=0))


def _to_v2(conn: Connection) -> None:
    conn.execute(text(f"ALTER TABLE {PREFIX}adapters ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'"))
    _events_table(MetaData()).create(conn)


def _to_v3(conn: Connection) -> None:
    _monitors_table(MetaData()).create(conn)


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_to_v1, _to_v2, _to_v3)
"""`MIGRATIONS[i]` upgrades version i to i + 1. Append only; never edit a released step."""
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: Connection, url: str) -> int:
    """The database's schema version: 0 for an empty database; refuses foreign or newer databases."""
    names = set(inspect(conn).get_table_names())
    if schema.name not in names:
        ours = sorted(n for n in names if n.startswith(PREFIX))
        foreign = sorted(names) if conn.dialect.name == "sqlite" else ours
        if foreign:
            raise RegistrySchemaError(
                f"{url} is not a loraguard registry: it holds tables ({', '.join(foreign[:5])}) but no "
                f"{schema.name}. Point --registry at a new file or an existing registry."
            )
        return 0
    rows = conn.execute(select(schema.c.version)).scalars().all()
    if len(rows) != 1 or rows[0] is None:
        raise RegistrySchemaError(
            f"{url}: {schema.name} holds {len(rows)} rows instead of one: the registry "
            "is damaged. Restore it from a backup."
        )
    version = int(rows[0])
    if version > SCHEMA_VERSION:
        raise RegistrySchemaError(
            f"{url} has registry schema version {version}, but this loraguard knows versions up to "
            f"{SCHEMA_VERSION}: it was written by a newer loraguard. Upgrade loraguard to use it."
        )
    return version


def ensure_schema(conn: Connection, url: str) -> int:
    """Bring the database to `SCHEMA_VERSION` inside the caller's transaction; return the version found."""
    found = current_version(conn, url)
    for step in MIGRATIONS[found:]:
        step(conn)
    if found < SCHEMA_VERSION:
        conn.execute(schema.update().values(version=SCHEMA_VERSION))
    return found
