"""The HTTP API on the tiny model (FastAPI TestClient): scores equal `loraguard score`'s, routing,
shadowing, 4xx/401/503 shapes, metrics and the degenerate shadow alert."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from server_helpers import adapters_json, items_of, metric, wait_for

from loraguard.registry.admission import admit

pytestmark = pytest.mark.slow


def _promote(registry: Any, name: str, path: Path, base: Path, weight: float | None = None) -> Any:
    entry = admit(registry, name, path, base=str(base))
    if weight is None:
        return registry.promote(entry.ref)
    return registry.set_traffic(entry.ref, weight)


def test_served_probabilities_equal_loraguard_score(
    fx: dict[str, Path], registry: Any, make_client: Any, rows: list[dict[str, str]], tmp_path: Path
) -> None:
    from loraguard.scoring import rows_from_records, score_file, score_rows
    from loraguard.scoring.host import load_host

    _promote(registry, "healthy", fx["healthy"], fx["base"])
    client = make_client()
    want = (
        score_file(rows_from_records(rows), fx["base"], [fx["healthy"]], out=tmp_path / "p.csv", device="cpu")
        .runs[0]
        .result.probabilities
    )
    batch = client.post("/v1/classify", json={"items": items_of(rows)})
    assert batch.status_code == 200, batch.text
    got = np.array([i["probability"] for i in batch.json()["items"]])
    assert np.abs(got - want).max() < 1e-5
    assert got.std() > 0.01  # spread predictions: the comparison is not trivially satisfied
    assert {(i["adapter"], i["version"]) for i in batch.json()["items"]} == {("healthy", 1)}
    loaded = load_host(fx["base"], [fx["healthy"]], device="cpu")
    for row, item in list(zip(rows, items_of(rows), strict=True))[:3]:
        one = client.post("/v1/classify", json=item).json()
        alone = score_rows(loaded.model, loaded.tokenizer, [row]).probabilities[0]
        assert abs(one["probability"] - alone) < 1e-5 and one["latency_ms"] > 0


def test_bad_requests_get_clean_json_errors(
    fx: dict[str, Path], registry: Any, make_client: Any, rows: list[dict[str, str]]
) -> None:
    from loraguard.server.schemas import Limits

    _promote(registry, "healthy", fx["healthy"], fx["base"])
    client = make_client(limits=Limits(max_body_bytes=4000, max_field_chars=1000, max_items=4))
    good = items_of(rows)[0]
    cases = [
        (b"{oops", 400, "malformed_json"),
        (b'{"body": "x"}', 422, "invalid_request"),
        (b'{"body": 5, "rule": "r"}', 422, "invalid_request"),
        (b'{"body": "x", "rule": "r", "positive_examples": [1]}', 422, "invalid_request"),
        (b'{"items": "nope"}', 422, "invalid_request"),
        (b"x" * 5000, 413, "payload_too_large"),
    ]
    for body, status, code in cases:
        r = client.post("/v1/classify", content=body, headers={"content-type": "application/json"})
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body[:40], r.text)
        assert "Traceback" not in r.text
    r = client.post("/v1/classify", json={"items": [good] * 5})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_items"
    r = client.post("/v1/classify", json={**good, "body": "y" * 1001})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == "body"
    assert client.get("/nope").json()["error"]["code"] == "not_found"
    assert client.get("/v1/classify").status_code == 405
    assert client.post("/v1/classify", json=good).status_code == 200  # and the server still answers


def test_api_key(fx: dict[str, Path], registry: Any, make_client: Any, rows: list[dict[str, str]]) -> None:
    _promote(registry, "healthy", fx["healthy"], fx["base"])
    client = make_client(api_key="s3cret")
    item = items_of(rows)[0]
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "s3cre"}, {"Authorization": "s3cret"}):
        r = client.post("/v1/classify", json=item, headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", headers
    for path in ("/metrics", "/", "/v1/adapters"):
        assert client.get(path).status_code == 401
    assert client.post("/v1/classify", json=item, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.post("/v1/classify", json=item, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.get("/metrics", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_no_live_adapter_is_503_with_a_reason(
    fx: dict[str, Path], registry: Any, make_client: Any, rows: list[dict[str, str]]
) -> None:
    admit(registry, "healthy", fx["healthy"], base=str(fx["base"]))  # a candidate at weight 0: shadow only
    client = make_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "no live adapter" in ready.json()["reason"]
    r = client.post("/v1/classify", json=items_of(rows)[0])
    assert r.status_code == 503 and r.json()["error"]["code"] == "no_live_adapter"
    assert "NOT READY" in client.get("/").text
    assert client.get("/healthz").status_code == 200


def test_weighted_sticky_split_and_weight_change(
    fx: dict[str, Path], registry: Any, make_client: Any, rows: list[dict[str, str]]
) -> None:
    _promote(registry, "healthy", fx["healthy"], fx["base"])
    other = _promote(registry, "other", fx["other"], fx["base"], weight=1.0)
    client = make_client()
    item = items_of(rows)[0]
    keyed = [{**item, "key": f"user-{i}"} for i in range(32)]
    first = client.post("/v1/classify", json={"items": keyed}).json()["items"]
    again = client.post("/v1/classify", json={"items": keyed}).json()["items"]
    assert [a["adapter"] for a in first] == [a["adapter"] for a in again]  # sticky
    assert {a["adapter"] for a in first} == {"healthy", "other"}  # split
    # the two adapters really answer differently (the routing is visible in the scores)
    by = {a["adapter"]: a["probability"] for a in first}
    assert abs(by["healthy"] - by["other"]) > 1e-4
    registry.set_traffic(other.ref, 0.0)  # now a shadow: every key goes to healthy, without a restart
    wait_for(lambda: adapters_json(client)["revision"] == registry.revision(), what="reload")
    after = client.post("/v1/classify", json={"items": keyed}).json()["items"]
    assert {a["adapter"] for a in after} == {"healthy"}
    modes = {a["ref"]: a["mode"] for a in adapters_json(client)["adapters"]}
    assert modes == {"healthy@1": "live", "other@1": "shadow"}


def test_degenerate_shadow_fires_its_alert_without_touching_answers(
    fx: dict[str, Path], registry: Any, make_client: Any, rows: list[dict[str, str]], tmp_path: Path
) -> None:
    import csv

    _promote(registry, "healthy", fx["healthy"], fx["base"])
    client = make_client()
    batch = {"items": items_of(rows)}
    before = client.post("/v1/classify", json=batch).json()["items"]
    data = tmp_path / "rows.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    entry = admit(
        registry,
        "degen",
        fx["degenerate"],
        base=str(fx["base"]),
        probe_data=data,
        force=True,
        reason="testing the shadow monitor",
    )
    assert entry.forced and entry.shadow
    wait_for(lambda: any(a["ref"] == "degen@1" for a in adapters_json(client)["adapters"]), what="degen loaded")
    after = client.post("/v1/classify", json=batch).json()["items"]
    assert after == [{**b, "latency_ms": a["latency_ms"]} for a, b in zip(after, before, strict=True)]
    stats = wait_for(
        lambda: next(
            (
                a
                for a in adapters_json(client)["adapters"]
                if a["ref"] == "degen@1" and a["shadow_predictions"] >= len(rows)
            ),
            None,
        ),
        what="shadow predictions",
    )
    assert stats["requests"] == 0 and "degenerate" in {a["rule"] for a in stats["alerts"]}
    metrics = client.get("/metrics").text
    assert metric(metrics, "loraguard_alert", adapter="degen@1", rule="degenerate", severity="error") == 1.0
    assert metric(metrics, "loraguard_alert", adapter="healthy@1", rule="degenerate", severity="error") is None
    assert metric(metrics, "loraguard_serve_shadow_predictions_total", adapter="degen@1") == len(rows)
    assert metric(metrics, "loraguard_serve_requests_total", adapter="healthy@1", status="ok") == 2 * len(rows)
    assert metric(metrics, "loraguard_prediction_count", adapter="degen@1") == len(rows)
    assert (metric(metrics, "loraguard_serve_batch_size_count", kind="live") or 0) >= 2
    page = client.get("/").text
    assert "degen@1 (shadow)" in page and "ERROR degenerate" in page and "<script" not in page
    assert client.get("/").headers["content-security-policy"].startswith("default-src 'none'")


def test_a_full_shadow_queue_drops_and_counts_without_failing_requests(
    fx: dict[str, Path], registry: Any, make_client: Any, rows: list[dict[str, str]]
) -> None:
    _promote(registry, "healthy", fx["healthy"], fx["base"])
    admit(registry, "other", fx["other"], base=str(fx["base"]))  # shadow
    client = make_client(shadow_queue=0)
    r = client.post("/v1/classify", json={"items": items_of(rows)})
    assert r.status_code == 200 and {i["adapter"] for i in r.json()["items"]} == {"healthy"}
    metrics = client.get("/metrics").text
    assert metric(metrics, "loraguard_serve_shadow_dropped_total", adapter="other@1") == len(rows)
    assert metric(metrics, "loraguard_serve_shadow_predictions_total", adapter="other@1") is None
