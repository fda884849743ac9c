"""Versioned schema: a hand-made v1 file upgrades in place and keeps its rows; newer or foreign files are refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from registry_helpers import passing

from loraguard.errors import RegistrySchemaError
from loraguard.registry import Registry, Status
from loraguard.registry.admission import admit
from loraguard.registry.schema import SCHEMA_VERSION

# The v1 layout exactly as a v1 loraguard wrote it (no tags column, no events table): written by hand
# here, not through the code's migration steps, so this test catches a step that drifts from history.
V1_DDL = """
CREATE TABLE loraguard_schema (version INTEGER NOT NULL);
CREATE TABLE loraguard_state (id INTEGER NOT NULL PRIMARY KEY, revision INTEGER NOT NULL);
CREATE TABLE loraguard_adapters (
    id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(128) NOT NULL, version INTEGER NOT NULL, source TEXT NOT NULL,
    path TEXT NOT NULL, files TEXT NOT NULL, base TEXT NOT NULL, task VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL, traffic_weight FLOAT NOT NULL, check_report TEXT NOT NULL, probe_report TEXT,
    forced BOOLEAN NOT NULL, force_reason TEXT, created_by VARCHAR(255) NOT NULL, created_at VARCHAR(40) NOT NULL,
    updated_at VARCHAR(40) NOT NULL, CONSTRAINT loraguard_adapters_name_version UNIQUE (name, version));
CREATE INDEX loraguard_adapters_base ON loraguard_adapters (base);
INSERT INTO loraguard_schema VALUES (1);
INSERT INTO loraguard_state VALUES (1, 7);
"""


def _make_v1(path: Path, adapter: Path, base: Path) -> None:
    con = sqlite3.connect(path)
    con.executescript(V1_DDL)
    row = (
        "tox",
        1,
        str(adapter),
        str(adapter),
        json.dumps({"adapter_config.json": "ab" * 32}),
        str(base),
        "CAUSAL_LM",
        "production",
        1.0,
        json.dumps({"verdict": "pass"}),
        None,
        1,
        "legacy reason",
        "dave",
        "2024-01-01T00:00:00+00:00",
        "2024-01-02T00:00:00+00:00",
    )
    con.execute(
        "INSERT INTO loraguard_adapters (name, version, source, path, files, base, task, status, "
        "traffic_weight, check_report, probe_report, forced, force_reason, created_by, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        row,
    )
    con.commit()
    con.close()


def _version(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT version FROM loraguard_schema").fetchone()[0]
    finally:
        con.close()


def test_v1_file_upgrades_to_the_current_version_and_keeps_its_rows(tmp_path: Path, adapter: Path, base: Path) -> None:
    db = tmp_path / "old.db"
    _make_v1(db, adapter, base)
    with Registry(f"sqlite:///{db}") as reg:
        assert reg.upgraded_from == 1
        old = reg.get("tox@1")
        assert (old.status, old.traffic_weight, old.tags, old.forced, old.force_reason, old.created_by) == (
            Status.PRODUCTION,
            1.0,
            (),
            True,
            "legacy reason",
            "dave",
        )
        assert old.files == {"adapter_config.json": "ab" * 32} and old.check_report == {"verdict": "pass"}
        assert reg.revision() == 7  # the counter survives the upgrade
        new = admit(reg, "tox", adapter, base=str(base), check_fn=passing, tags=["v2"])  # tags + events now work
        assert new.ref == "tox@2" and new.tags == ("v2",)
        assert [e.kind for e in reg.events()] == ["added"]
    assert _version(db) == SCHEMA_VERSION
    with Registry(f"sqlite:///{db}") as again:
        assert again.upgraded_from == SCHEMA_VERSION and [e.ref for e in again.list()] == ["tox@1", "tox@2"]
    fresh = tmp_path / "fresh.db"
    Registry(f"sqlite:///{fresh}").close()
    assert _layout(db) == _layout(fresh)  # an upgraded file has exactly the columns of a new one


def _layout(path: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted((r[1], r[2].upper(), r[3]) for r in con.execute(f"PRAGMA table_info({t})")) for t in tables}
    finally:
        con.close()


def test_a_failing_migration_step_leaves_the_old_version_intact(
    tmp_path: Path, adapter: Path, base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loraguard.registry import db as db_module
    from loraguard.registry import schema

    def broken(conn: object) -> None:
        raise RuntimeError("the last step failed half way")

    db = tmp_path / "old.db"
    _make_v1(db, adapter, base)
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, broken))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(db_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError, match="half way"):
        Registry(f"sqlite:///{db}")
    con = sqlite3.connect(db)
    columns = [r[1] for r in con.execute("PRAGMA table_info(loraguard_adapters)")]
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    assert _version(db) == 1 and "tags" not in columns and "loraguard_events" not in tables  # every step rolled back


def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path, adapter: Path, base: Path) -> None:
    db = tmp_path / "future.db"
    _make_v1(db, adapter, base)
    con = sqlite3.connect(db)
    con.execute("UPDATE loraguard_schema SET version = 99")
    con.commit()
    con.close()
    before = db.read_bytes()
    with pytest.raises(RegistrySchemaError, match=rf"version 99.*up to {SCHEMA_VERSION}.*newer loraguard"):
        Registry(f"sqlite:///{db}")
    assert db.read_bytes() == before


def test_files_that_are_not_registries_are_refused_untouched(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("not a database at all, but long enough to look like one " * 20, encoding="utf-8")
    before = text.read_bytes()
    with pytest.raises(RegistrySchemaError, match="not a loraguard registry"):
        Registry(f"sqlite:///{text}")
    assert text.read_bytes() == before and not Path(f"{text}-wal").exists()
    foreign = tmp_path / "app.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    with pytest.raises(RegistrySchemaError, match=r"tables \(users\) but no loraguard_schema"):
        Registry(f"sqlite:///{foreign}")
    con = sqlite3.connect(foreign)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not switched to WAL
    con.close()
    damaged = tmp_path / "damaged.db"
    with Registry(f"sqlite:///{damaged}"):
        pass
    con = sqlite3.connect(damaged)
    con.execute("DELETE FROM loraguard_schema")
    con.commit()
    con.close()
    with pytest.raises(RegistrySchemaError, match="damaged"):
        Registry(f"sqlite:///{damaged}")


def test_fresh_registry_is_created_at_the_current_version_in_wal_mode(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    with Registry(str(db)) as reg:  # a bare path means a SQLite file
        assert reg.upgraded_from == 0 and reg.revision() == 0 and reg.list() == ()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT version FROM loraguard_schema").fetchall() == [(SCHEMA_VERSION,)]
    con.close()
