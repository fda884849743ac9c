"""Registry changes applied without a restart, and every way an adapter can be refused while the
previous set keeps serving: corrupted files, pickles, check errors, PEFT errors, a locked registry.

The reloader is driven by hand (`poll`) with a long reload interval, so nothing depends on timing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from server_helpers import adapters_json, items_of, metric, wait_for

from loraguard.errors import RegistryLockedError
from loraguard.registry.admission import admit
from loraguard.scoring.host import SENTINEL

pytestmark = pytest.mark.slow
SLOW_POLL = {"reload_interval": 3600.0}


def _poll(client: Any) -> bool:
    service = client.app.state.service
    return bool(client.portal.call(service.reloader.poll))


def _serving(client: Any, rows: list[dict[str, str]], key: str | None = None) -> dict[str, Any]:
    r = client.post("/v1/classify", json={**items_of(rows)[0], "key": key} if key else items_of(rows)[0])
    assert r.status_code == 200, r.text
    return dict(r.json())


def _alerts(client: Any) -> dict[str | None, dict[str, Any]]:
    return {a["ref"]: a for a in adapters_json(client)["server_alerts"]}


def test_add_traffic_retire_without_restart(
    fx: dict[str, Path], registry: Any, make_client: Any, rows: list[dict[str, str]]
) -> None:
    healthy = registry.promote(admit(registry, "healthy", fx["healthy"], base=str(fx["base"])).ref)
    client = make_client(**SLOW_POLL)
    assert _serving(client, rows)["adapter"] == "healthy"
    assert not _poll(client)  # nothing changed: no reload
    other = admit(registry, "other", fx["other"], base=str(fx["base"]))
    assert _poll(client)
    assert {a["ref"]: a["mode"] for a in adapters_json(client)["adapters"]} == {
        "healthy@1": "live",
        "other@1": "shadow",
    }
    registry.set_traffic(other.ref, 1.0)
    registry.retire(healthy.ref)
    _poll(client)
    service = client.app.state.service
    assert set(service.pool.adapters) == {"other@1"}  # retired → unloaded from the model
    assert set(service.pool.model.peft_config) == {"other_v1", SENTINEL}
    assert {_serving(client, rows, key=f"k{i}")["adapter"] for i in range(8)} == {"other"}


def test_corrupted_adapter_is_refused_and_the_previous_set_keeps_serving(
    fx: dict[str, Path], registry: Any, make_client: Any, rows: list[dict[str, str]], tmp_path: Path
) -> None:
    registry.promote(admit(registry, "healthy", fx["healthy"], base=str(fx["base"])).ref)
    client = make_client(**SLOW_POLL)
    before = _serving(client, rows)
    folder = shutil.copytree(fx["other"], tmp_path / "other")
    entry = admit(registry, "other", folder, base=str(fx["base"]))
    registry.set_traffic(entry.ref, 5.0)
    weights = folder / "adapter_model.safetensors"
    original = weights.read_bytes()
    corrupted = bytearray(original)
    corrupted[-10:] = bytes(10)  # tensor data changed after registration: still a valid safetensors file
    weights.write_bytes(bytes(corrupted))
    [result] = registry.verify(entry.ref)
    assert not result.ok and result.changed == ("adapter_model.safetensors",)
    _poll(client)
    now = _serving(client, rows)
    assert (now["adapter"], now["probability"]) == (before["adapter"], before["probability"])
    assert {_serving(client, rows, key=f"k{i}")["adapter"] for i in range(10)} == {"healthy"}
    alert = _alerts(client)["other@1"]
    assert (alert["kind"], alert["reason"]) == ("serve-rejected", "hash-mismatch")
    assert "adapter_model.safetensors" in alert["message"]
    metrics = client.get("/metrics").text
    assert (
        metric(metrics, "loraguard_serve_server_alert", kind="serve-rejected", ref="other@1", reason="hash-mismatch")
        == 1.0
    )
    assert metric(metrics, "loraguard_serve_reload_failures_total", reason="hash-mismatch") == 1.0
    assert "hash-mismatch" in client.get("/").text
    assert registry.events("other@1")[0].kind == "serve-rejected"
    _poll(client)  # our own event bumped the revision: the unchanged files are not retried
    assert metric(client.get("/metrics").text, "loraguard_serve_reload_failures_total", reason="hash-mismatch") == 1
    weights.write_bytes(original)  # fixed on disk: tried again, loaded, alert cleared
    _poll(client)
    assert "other@1" not in _alerts(client) and "other@1" in client.app.state.service.pool.adapters


def test_pickles_and_check_errors_are_refused(
    fx: dict[str, Path], registry: Any, make_client: Any, rows: list[dict[str, str]]
) -> None:
    registry.promote(admit(registry, "healthy", fx["healthy"], base=str(fx["base"])).ref)
    pickled = admit(registry, "pickled", fx["pickled"], base=str(fx["base"]))  # a tensors-only .bin passes check
    assert "adapter_model.bin" in pickled.files
    admit(registry, "noop", fx["noop"], base=str(fx["base"]), force=True, reason="test: zero adapter")
    client = make_client(**SLOW_POLL)
    alerts = _alerts(client)
    assert alerts["pickled@1"]["reason"] == "unsafe-format"
    assert alerts["noop@1"]["reason"] == "check-failed" and "LG401" in alerts["noop@1"]["message"]
    assert set(client.app.state.service.pool.adapters) == {"healthy@1"}
    assert _serving(client, rows)["adapter"] == "healthy"


def test_peft_load_error_is_refused(
    fx: dict[str, Path], registry: Any, rows: list[dict[str, str]], tmp_path: Path
) -> None:
    import json

    from fastapi.testclient import TestClient

    from loraguard.server.app import create_app
    from loraguard.server.service import ServeConfig

    registry.promote(admit(registry, "healthy", fx["healthy"], base=str(fx["base"])).ref)
    bad = shutil.copytree(fx["other"], tmp_path / "bad-rank")
    config = json.loads((bad / "adapter_config.json").read_text())
    (bad / "adapter_config.json").write_text(json.dumps({**config, "r": 4}))
    admit(registry, "badrank", bad, base=str(fx["base"]), force=True, reason="test: PEFT load error")
    app = create_app(
        ServeConfig(base=str(fx["base"]), **SLOW_POLL), registry=registry, check_fn=lambda _folder, _base: []
    )  # no static check: PEFT sees the bad shapes
    with TestClient(app) as client:
        alert = _alerts(client)["badrank@1"]
        assert alert["reason"] == "load-failed" and "PEFT could not load" in alert["message"]
        assert set(app.state.service.pool.model.peft_config) == {"healthy_v1", SENTINEL}  # half-load undone
        assert _serving(client, rows)["adapter"] == "healthy"


class FlakyRegistry:
    """A registry whose reads fail while `locked` (as a database held by another writer would)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.locked = inner, False

    def _check(self) -> None:
        if self.locked:
            raise RegistryLockedError("registry is locked by another writer")

    def revision(self) -> int:
        self._check()
        return int(self.inner.revision())

    def serving(self, base: str) -> Any:
        self._check()
        return self.inner.serving(base)

    def record_event(self, *args: Any) -> Any:
        self._check()
        return self.inner.record_event(*args)


def test_unreadable_registry_keeps_serving_and_recovers(
    fx: dict[str, Path], registry: Any, make_client: Any, rows: list[dict[str, str]]
) -> None:
    registry.promote(admit(registry, "healthy", fx["healthy"], base=str(fx["base"])).ref)
    flaky = FlakyRegistry(registry)
    client = make_client(flaky, **SLOW_POLL)
    flaky.locked = True
    other = admit(registry, "other", fx["other"], base=str(fx["base"]))
    assert not _poll(client) and not _poll(client)
    assert _alerts(client)[None]["reason"] == "registry-unavailable" and _alerts(client)[None]["count"] == 2
    assert _serving(client, rows)["adapter"] == "healthy"
    assert client.get("/readyz").status_code == 200
    assert (
        metric(client.get("/metrics").text, "loraguard_serve_reload_failures_total", reason="registry-unavailable") == 2
    )
    flaky.locked = False
    registry.set_traffic(other.ref, 1.0)
    assert _poll(client)
    assert None not in _alerts(client)
    assert {a["ref"] for a in adapters_json(client)["adapters"]} == {"healthy@1", "other@1"}


def test_write_locked_registry_does_not_block_serving(
    fx: dict[str, Path], tmp_path: Path, make_client: Any, rows: list[dict[str, str]]
) -> None:
    """A real SQLite writer holds the lock while the server refuses an adapter: the serve-rejected event
    cannot be written, the server still applies the change, answers, and shows the alert."""
    from loraguard.registry import Registry

    url = f"sqlite:///{tmp_path / 'locked.db'}"
    with Registry(url) as admin, Registry(url, lock_timeout=0.2) as served:
        admin.promote(admit(admin, "healthy", fx["healthy"], base=str(fx["base"])).ref)
        client = make_client(served, **SLOW_POLL)
        admit(admin, "noop", fx["noop"], base=str(fx["base"]), force=True, reason="test")
        writer = sqlite3.connect(tmp_path / "locked.db", timeout=0.1, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # another writer holds the registry's write lock
        try:
            assert _poll(client)  # reads still work (WAL); the event write times out and is logged
            assert _alerts(client)["noop@1"]["reason"] == "check-failed"
            assert _serving(client, rows)["adapter"] == "healthy"
            service = client.app.state.service
            assert not client.portal.call(service.save_snapshot)  # the monitor snapshot waits too
            assert _alerts(client)[None]["kind"] == "snapshot-failed"
        finally:
            writer.execute("ROLLBACK")
            writer.close()
        assert "serve-rejected" not in [e.kind for e in admin.events("noop@1")]
        assert client.portal.call(service.save_snapshot) and None not in _alerts(client)
        assert admin.load_monitors(str(fx["base"]), "default")["healthy@1"]["requests"] == 1


def test_restart_with_the_same_registry_serves_the_same_adapters_and_routes(
    fx: dict[str, Path], registry: Any, make_client: Any, rows: list[dict[str, str]]
) -> None:
    """Nothing is lost across a restart: adapters, routes, sticky keys, probabilities, and each adapter's
    live monitor and counters (saved in the registry at shutdown), so a shadow's `degenerate` alert is
    there again before any new traffic."""
    registry.promote(admit(registry, "healthy", fx["healthy"], base=str(fx["base"])).ref)
    registry.set_traffic(admit(registry, "other", fx["other"], base=str(fx["base"])).ref, 2.0)
    admit(registry, "degen", fx["degenerate"], base=str(fx["base"]))
    items = [{**items_of(rows)[i % len(rows)], "key": f"user-{i}"} for i in range(40)]

    def counts(client: Any) -> dict[str, tuple[int, int, bool]]:
        return {
            a["ref"]: (a["requests"], a["shadow_predictions"], "degenerate" in {x["rule"] for x in a["alerts"]})
            for a in adapters_json(client)["adapters"]
        }

    def run() -> tuple[Any, Any, Any, Any]:
        client = make_client(**SLOW_POLL)
        at_start = counts(client)
        answers = client.post("/v1/classify", json={"items": items}).json()["items"]
        wait_for(lambda: counts(client)["degen@1"][1] >= at_start["degen@1"][1] + 40, what="the shadow backlog")
        table = [(a["ref"], a["mode"], a["weight"]) for a in adapters_json(client)["adapters"]]
        at_end = counts(client)
        client.__exit__(None, None, None)
        return [(a["adapter"], a["probability"]) for a in answers], table, at_start, at_end

    first, table1, start1, end1 = run()
    second, table2, start2, end2 = run()
    assert table1 == table2 == [("degen@1", "shadow", 0.0), ("healthy@1", "live", 1.0), ("other@1", "live", 2.0)]
    assert [a for a, _ in first] == [a for a, _ in second] and {a for a, _ in first} == {"healthy", "other"}
    assert max(abs(p - q) for (_, p), (_, q) in zip(first, second, strict=True)) < 1e-6
    assert start1 == {"degen@1": (0, 0, False), "healthy@1": (0, 0, False), "other@1": (0, 0, False)}
    assert start2 == end1  # restored, degenerate alert included, before any new request
    assert end1["degen@1"] == (0, 40, True) and end1["healthy@1"][0] + end1["other@1"][0] == 40
    assert end2 == {ref: (r * 2, s * 2, alert) for ref, (r, s, alert) in end1.items()}
    saved = registry.load_monitors(str(fx["base"]), "default")
    assert saved["degen@1"]["n"] == 80 and saved["degen@1"]["shadow"] == 80


def test_a_refused_promotion_keeps_the_predecessor_serving(
    fx: dict[str, Path], registry: Any, make_client: Any, rows: list[dict[str, str]], tmp_path: Path
) -> None:
    """`promote healthy@2` retires healthy@1 in the registry; when healthy@2 cannot be served (its files
    changed after registration), healthy@1 keeps the traffic instead of the server going 503."""
    registry.promote(admit(registry, "healthy", fx["healthy"], base=str(fx["base"])).ref)
    client = make_client(**SLOW_POLL)
    before = _serving(client, rows)
    folder = shutil.copytree(fx["other"], tmp_path / "healthy-v2")
    successor = admit(registry, "healthy", folder, base=str(fx["base"]))
    weights = folder / "adapter_model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:-4] + bytes(4))  # changed on disk after registration
    registry.promote(successor.ref)
    assert registry.get("healthy@1").status == "retired"
    _poll(client)
    now = _serving(client, rows)
    assert (now["adapter"], now["version"], now["probability"]) == ("healthy", 1, before["probability"])
    alerts = _alerts(client)
    assert alerts["healthy@2"]["reason"] == "hash-mismatch"
    assert alerts["healthy@1"]["kind"] == "kept-previous" and "healthy@2" in alerts["healthy@1"]["message"]
    assert client.get("/readyz").status_code == 200
    weights.write_bytes(original)  # the successor's files are restored: it loads and takes over
    _poll(client)
    assert {_serving(client, rows, key=f"k{i}")["version"] for i in range(6)} == {2}
    assert "healthy@1" not in _alerts(client)
    assert set(client.app.state.service.pool.adapters) == {"healthy@2"}
