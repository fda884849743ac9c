"""Two real processes writing at once, a writer holding the lock, and a restart: nothing lost or interleaved."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from registry_helpers import add_many, passing

from loraguard.errors import RegistryLockedError
from loraguard.registry import Registry, Status
from loraguard.registry.admission import admit

N = 12


def test_two_processes_add_and_set_traffic_concurrently(url: str, adapter: Path, base: Path) -> None:
    with Registry(url):
        pass  # created up front, so both workers only open it
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=add_many, args=(url, "a", str(adapter), str(base), N, start, out)) for _ in range(2)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert all(isinstance(r, list) for r in results), results
    assert sorted(results[0] + results[1]) == sorted(f"a@{v}" for v in range(1, 2 * N + 1))
    first = sorted(int(ref.split("@")[1]) for ref in results[0])
    assert first != list(range(first[0], first[0] + N)), "the two writers never interleaved: test proves nothing"
    with Registry(url) as reg:
        entries = reg.list(name="a")
        assert [e.version for e in entries] == list(range(1, 2 * N + 1))  # unique, no gaps
        assert {e.created_by for e in entries} == {"proc-a"}
        assert all(e.traffic_weight >= 1 for e in entries)
        assert reg.revision() == 4 * N  # one bump per transaction: N adds + N set_traffic per process
        assert sum(e.kind == "added" for e in reg.events(limit=1000)) == 2 * N
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()


def test_one_registry_shared_by_threads(url: str, adapter: Path, base: Path) -> None:
    """The server's case: one `Registry` used from a thread pool while another thread polls `revision()`."""
    errors: list[BaseException] = []

    with Registry(url) as reg:

        def work() -> None:
            try:
                for _ in range(10):
                    entry = admit(reg, "t", adapter, base=str(base), check_fn=passing)
                    reg.set_traffic(entry.ref, 1.0)
                    reg.revision(), reg.serving(str(base))
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert [e.version for e in reg.list()] == list(range(1, 41)) and reg.revision() == 80


def test_a_held_lock_times_out_quickly_and_reads_still_work(url: str, adapter: Path, base: Path) -> None:
    with Registry(url) as reg:
        admit(reg, "tox", adapter, base=str(base), check_fn=passing)
    other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    other.execute("UPDATE loraguard_state SET revision = revision")
    try:
        with Registry(url, lock_timeout=0.2) as reg:  # opening an up-to-date registry only reads
            started = time.perf_counter()
            with pytest.raises(RegistryLockedError, match=r"locked by another writer.*--lock-timeout"):
                admit(reg, "tox", adapter, base=str(base), check_fn=passing)
            with pytest.raises(RegistryLockedError):
                reg.promote("tox@1")
            assert time.perf_counter() - started < 3
            assert reg.get("tox").status is Status.CANDIDATE and reg.revision() == 1  # WAL: readers go on
            assert [e.ref for e in reg.serving(str(base))] == ["tox@1"]
    finally:
        other.execute("ROLLBACK")
        other.close()
    with Registry(url, lock_timeout=0.2) as reg:
        assert admit(reg, "tox", adapter, base=str(base), check_fn=passing).ref == "tox@2"
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()


def test_close_and_reopen_keeps_everything(url: str, adapter: Path, base: Path) -> None:
    reg = Registry(url)
    admit(reg, "tox", adapter, base=str(base), check_fn=passing, tags=["t"])
    admit(reg, "tox", adapter, base=str(base), check_fn=passing)
    reg.promote("tox@2")
    reg.set_traffic("tox@1", 0.5)
    reg.record_event("alert", "tox@2", "drift")
    before = (reg.list(), reg.events(), reg.revision())
    reg.close()
    with Registry(url) as again:
        assert (again.list(), again.events(), again.revision()) == before
        assert again.get("tox@1").tags == ("t",)
