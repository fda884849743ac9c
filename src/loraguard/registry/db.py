"""Engines, transactions and error translation for the registry (SQLite by default, any SQLAlchemy URL).

SQLite: WAL journal, set once the file is known to be a registry (readers never wait for the writer),
a busy timeout of `lock_timeout`, and write transactions that start with `BEGIN IMMEDIATE` (the documented
pysqlite event-hook recipe: the driver's own transaction handling is switched off and we emit BEGIN).
Taking the write lock up front means two processes can never both read "highest version = 3" and then
both write version 4.
Other databases (PostgreSQL): every write transaction first bumps the single `loraguard_state` row,
which takes its row lock and serialises writers the same way, under `SET LOCAL lock_timeout`.
Driver errors become `RegistryLockedError` / `RegistrySchemaError` / `RegistryError` with one clear line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError, SQLAlchemyError

from loraguard.errors import (
    InputError,
    LoraguardError,
    MissingExtraError,
    RegistryError,
    RegistryLockedError,
    RegistrySchemaError,
)
from loraguard.registry.schema import SCHEMA_VERSION, current_version, ensure_schema, state

__all__ = ["Database"]

_WRITE = "loraguard_write"
_PG_MIGRATION_LOCK = 0x6C6F7261  # "lora": serialises concurrent first opens of a PostgreSQL registry


class Database:
    """One registry database: a read engine, a write engine, and the transaction context managers."""

    def __init__(self, url: str, lock_timeout: float) -> None:
        self.url = url
        if lock_timeout < 0:
            raise InputError(f"lock timeout {lock_timeout}: must be >= 0 seconds")
        self.lock_timeout = float(lock_timeout)
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise InputError(
                f"registry URL {url!r}: not a database URL. Use e.g. sqlite:///registry.db or "
                "postgresql+psycopg://user@host/db"
            ) from None
        self.display = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        try:
            if self.dialect == "sqlite":
                self.engine = create_engine(parsed, connect_args={"timeout": self.lock_timeout})
                _sqlite_hooks(self.engine)
            else:
                self.engine = create_engine(parsed, pool_pre_ping=True)
        except NoSuchModuleError:
            raise InputError(
                f"registry URL {self.display}: unknown database '{parsed.drivername}'. Use "
                "sqlite:///FILE or postgresql+psycopg://..."
            ) from None
        except ImportError as exc:
            if self.dialect == "postgresql":
                raise MissingExtraError("A PostgreSQL registry", "postgres") from exc
            raise RegistryError(
                f"registry URL {self.display}: its database driver is not installed "
                f"({exc}). Install it, or use a sqlite:/// URL."
            ) from None
        self.write_engine = self.engine.execution_options(**{_WRITE: True})

    def open(self, *, create: bool = True) -> int:
        """Create or upgrade the schema; return the version found (0: a new database).

        An up-to-date registry is only read (opening never waits for a writer); creating or upgrading
        happens in one write transaction that checks the version again under the lock. With
        `create=False` (read-only commands) a registry that does not exist yet is a `RegistryError`:
        no database file is created.
        """
        if not create:
            self._require_existing()
        with self.read() as conn:
            found = current_version(conn, self.display)
        if found == 0 and not create:
            raise RegistryError(
                f"no registry at {self.display} yet (the database holds no loraguard tables): "
                "`loraguard registry add` creates one."
            )
        if found < SCHEMA_VERSION:
            with self._errors(), self.write_engine.connect() as conn, conn.begin():
                self._lock_timeout(conn)
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
                ensure_schema(conn, self.display)
        if self.dialect == "sqlite":
            self._wal()
        return found

    def _require_existing(self) -> None:
        """For SQLite: refuse a database file that does not exist (connecting would create it)."""
        if self.dialect != "sqlite":
            return
        database = make_url(self.url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return
        path = Path(database)
        if not path.parent.is_dir():
            return  # connecting fails with "cannot open the database file", which says what to fix
        if not path.exists():
            raise RegistryError(
                f"no registry at {self.display} yet: nothing is registered there (`loraguard registry add` "
                "creates it; --registry or $LORAGUARD_REGISTRY points at another one)."
            )

    def _wal(self) -> None:
        """Switch a registry file to WAL (persistent in the file). Only after the schema check passed, so a
        foreign SQLite file is never modified; a concurrent opener holding the lock will do it instead."""
        with self._errors(), self.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            if raw is None:
                return
            try:
                mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
                if mode not in ("wal", "memory"):
                    raw.execute("PRAGMA journal_mode=WAL")
            except Exception as exc:  # sqlite3.OperationalError: locked by a concurrent opener
                if "locked" not in str(exc).lower():
                    raise

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (SQLite: deferred, a consistent snapshot that never blocks in WAL mode)."""
        with self._errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, *, bump: bool = True) -> Iterator[Connection]:
        """One write transaction holding the registry's write lock from its first statement; bumps the
        revision unless `bump=False` (bookkeeping that must not make servers reload, e.g. monitor snapshots)."""
        with self._errors(), self.write_engine.connect() as conn, conn.begin():
            self._lock_timeout(conn)
            if bump:
                conn.execute(state.update().values(revision=state.c.revision + 1))
            yield conn

    def _lock_timeout(self, conn: Connection) -> None:
        if self.dialect == "postgresql":  # 0 means "wait forever" to PostgreSQL: use 1 ms instead
            conn.execute(text(f"SET LOCAL lock_timeout = '{max(1, round(self.lock_timeout * 1000))}ms'"))

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except LoraguardError:
            raise
        except (OperationalError, DatabaseError) as exc:
            raise self._translate(exc) from None
        except SQLAlchemyError as exc:
            raise RegistryError(f"registry {self.display}: {_first_line(exc)}") from None

    def _translate(self, exc: DatabaseError) -> RegistryError:
        message = str(exc.orig) if exc.orig is not None else str(exc)
        lowered = message.lower()
        if (
            "locked" in lowered
            or "busy" in lowered
            or getattr(exc.orig, "sqlstate", None) == "55P03"
            or "lock timeout" in lowered
        ):
            return RegistryLockedError(
                f"registry {self.display} is locked by another writer (waited {self.lock_timeout:g} s): retry, "
                "or raise --lock-timeout"
            )
        if "not a database" in lowered or "malformed" in lowered:
            return RegistrySchemaError(
                f"{self.display} is not a loraguard registry (not a database file: "
                f"{message}). Point --registry at a new file or an existing registry."
            )
        if "unable to open database file" in lowered:
            return RegistryError(
                f"registry {self.display}: cannot open the database file (does its folder exist and is it writable?)"
            )
        return RegistryError(f"registry {self.display}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text_ = str(orig if orig is not None else exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__


def _sqlite_hooks(engine: Engine) -> None:
    """The pysqlite recipe: no implicit BEGIN from the driver; BEGIN IMMEDIATE for write transactions."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")  # safe in WAL mode; the journal mode is set by `open`

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")
