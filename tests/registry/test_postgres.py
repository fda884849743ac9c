"""A real PostgreSQL round trip: a throw-away server (initdb + pg_ctl as the `postgres` user) on a free port.

Skips with the reason when the server binaries, the `postgres` OS user (we may run as root, which
PostgreSQL refuses) or the psycopg driver are missing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_helpers import passing

from loraguard.errors import RegistryLockedError, RegistrySchemaError
from loraguard.registry.admission import admit
from loraguard.registry.schema import SCHEMA_VERSION

pytestmark = pytest.mark.slow

_BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    return next((str(Path(d) / name) for d in _BIN_DIRS if (Path(d) / name).is_file()), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg", reason="the psycopg driver (loraguard[postgres]) is not installed")
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not (initdb and pg_ctl and _binary("postgres")):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` OS user to run the server as")
        if not shutil.which("runuser"):
            pytest.skip("running as root and runuser is missing")
        prefix = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="loraguard-pg-"))
    if prefix:
        os.chown(root, user.pw_uid, user.pw_gid)
    data, port = root / "data", _free_port()
    try:
        subprocess.run(
            [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        subprocess.run(
            [
                *prefix,
                pg_ctl,
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "30",
                "-o",
                f"-k {root} -p {port} -h 127.0.0.1 -F",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except subprocess.SubprocessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a throw-away PostgreSQL: {exc}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_postgres_round_trip(pg_url: str, adapter: Path, base: Path) -> None:
    from loraguard.registry import Registry, Status

    with Registry(pg_url) as reg:
        assert reg.upgraded_from == 0 and reg.list() == ()
        first = admit(reg, "tox", adapter, base=str(base), check_fn=passing, tags=["pg"])
        admit(reg, "tox", adapter, base=str(base), check_fn=passing)
        assert first.ref == "tox@1" and first.tags == ("pg",) and first.shadow
        assert reg.promote("tox@1").status is Status.PRODUCTION
        assert reg.promote("tox@2").traffic_weight == 1.0
        assert reg.get("tox@1").status is Status.RETIRED
        reg.set_traffic("tox@2", 2.5)
        reg.record_event("alert", "tox@2", {"p95_ms": 1200})
        assert [e.ref for e in reg.serving(str(base))] == ["tox@2"]
        assert [r.ok for r in reg.verify()] == [True]
        (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
        assert reg.verify("tox@2")[0].changed == ("adapter_config.json",)
        revision, events = reg.revision(), reg.events()
        assert [e.kind for e in events[:3]] == ["verify-failed", "verified-ok", "alert"]
    with Registry(pg_url) as again:  # a second client sees the same state
        assert again.upgraded_from == SCHEMA_VERSION and again.revision() == revision and again.events() == events
        assert again.get("tox").traffic_weight == 2.5


def test_postgres_concurrent_writers_and_lock_timeout(pg_url: str, adapter: Path, base: Path) -> None:
    import psycopg

    from loraguard.registry import Registry

    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with Registry(pg_url, lock_timeout=30) as reg:
                for _ in range(8):
                    admit(reg, "conc", adapter, base=str(base), check_fn=passing)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with Registry(pg_url, lock_timeout=0.2) as reg:
        assert [e.version for e in reg.list(name="conc")] == list(range(1, 25))
        with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql")) as holder:
            holder.execute("SELECT revision FROM loraguard_state FOR UPDATE")  # hold the writers' lock
            with pytest.raises(RegistryLockedError, match="--lock-timeout"):
                admit(reg, "conc", adapter, base=str(base), check_fn=passing)
            assert reg.get("conc").version == 24  # reads are not blocked
            holder.rollback()
        assert admit(reg, "conc", adapter, base=str(base), check_fn=passing).version == 25
        with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as admin:
            admin.execute("UPDATE loraguard_schema SET version = 99")
            try:
                with pytest.raises(RegistrySchemaError, match="version 99"):
                    Registry(pg_url)
            finally:
                admin.execute(f"UPDATE loraguard_schema SET version = {SCHEMA_VERSION}")
