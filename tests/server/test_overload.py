"""A bounded loopback load test: a real uvicorn on 127.0.0.1 (in a thread of this process, so the model's
scoring can be slowed down and poisoned) serving the tiny model, under hostile traffic.

- isolation: concurrent requests micro-batched with one the model chokes on and one with a lone
  surrogate; only those two fail (422 naming the item), the others get the scores they get alone;
- malformed JSON 100,000 deep: 400 with the JSON error body;
- timeouts: a client that never finishes its headers, one that trickles its body, one that idles after a
  response: each connection is closed within its limit (408 where a request had begun);
- shedding: more concurrent work than `max_queue` gets 503 + Retry-After at once, the admitted requests
  are answered, nothing else happens (no 500), and the server answers normally afterwards.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from server_helpers import items_of, wait_for

from loraguard.registry.admission import admit

pytestmark = pytest.mark.slow

LIMITS = {"max_items": 4, "max_queue": 12, "header_timeout": 1.0, "body_timeout": 1.0, "keep_alive_timeout": 1.0}


class Gate:
    """Wraps the pool's `score`: can slow every forward pass down and raises on rows whose body is `POISON`
    (as a tokenizer would: a plain TypeError, not a loraguard error). Records every batch's bodies."""

    POISON = "POISON"

    def __init__(self, score: Any) -> None:
        self.score, self.delay = score, 0.0
        self.batches: list[list[str]] = []

    def __call__(self, ref: str, rows: Sequence[Mapping[str, str]]) -> Any:
        self.batches.append([r["body"] for r in rows])
        time.sleep(self.delay)
        if any(r["body"] == self.POISON for r in rows):
            raise TypeError("TextEncodeInput must be Union[TextInputSequence, Tuple[InputSequence, InputSequence]]")
        return self.score(ref, rows)


@pytest.fixture(scope="module")
def served(fx: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import uvicorn

    from loraguard.registry import Registry
    from loraguard.server.app import create_app
    from loraguard.server.connection import uvicorn_options
    from loraguard.server.schemas import Limits
    from loraguard.server.service import ServeConfig

    root = tmp_path_factory.mktemp("overload")
    registry = Registry(f"sqlite:///{root / 'registry.db'}")
    registry.promote(admit(registry, "healthy", fx["healthy"], base=str(fx["base"])).ref)
    limits = dict(LIMITS)
    config = ServeConfig(
        base=str(fx["base"]),
        registry_url=registry.url,
        max_batch=16,
        max_wait_ms=40.0,
        reload_interval=0.5,
        limits=Limits(max_items=limits.pop("max_items")),
        **limits,
    )
    app = create_app(config, registry=registry, seed=0)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, **uvicorn_options(config)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    service = app.state.service
    try:
        import httpx

        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(url + "/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=90, what="the server to be ready")
        gate = Gate(service.pool.score)
        service.batcher.score = gate
        yield {"url": url, "port": port, "gate": gate, "service": service}
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        registry.close()


def _post(url: str, payload: Any = None, content: bytes | None = None) -> Any:
    import httpx

    if content is None:
        content = json.dumps(payload).encode()
    return httpx.post(url + "/v1/classify", content=content, headers={"content-type": "application/json"}, timeout=60)


def test_one_bad_item_fails_alone_among_concurrent_requests(served: dict[str, Any], rows: list[dict[str, str]]) -> None:
    url, gate = served["url"], served["gate"]
    items = items_of(rows)[:8]
    alone = [_post(url, item).json()["probability"] for item in items]  # one at a time: the reference scores
    gate.batches.clear()
    gate.delay = 0.05  # so the concurrent requests pile up into shared micro-batches
    poison = {**items[0], "body": Gate.POISON}
    surrogate = b'{"body": "fine \\ud800", "rule": "No spam"}'
    payloads: list[Any] = [*items[:4], poison, *items[4:]]
    try:
        with ThreadPoolExecutor(len(payloads) + 1) as pool:
            futures = [pool.submit(_post, url, p) for p in payloads]
            bad_unicode = pool.submit(_post, url, None, surrogate)
            answers = [f.result() for f in futures]
            unicode_answer = bad_unicode.result()
    finally:
        gate.delay = 0.0
    assert any(Gate.POISON in b and len(b) > 1 for b in gate.batches), gate.batches  # really batched together
    poisoned = answers.pop(4)
    assert poisoned.status_code == 422, poisoned.text
    error = poisoned.json()["error"]
    assert error["code"] == "unscorable_item" and error["message"].startswith("item 0:")
    assert "TypeError" in error["message"]
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
    got = [a.json()["probability"] for a in answers]
    assert max(abs(g - w) for g, w in zip(got, alone, strict=True)) < 1e-4
    assert unicode_answer.status_code == 422
    assert unicode_answer.json()["error"]["details"][0]["loc"] == "body"
    assert "U+D800" in unicode_answer.json()["error"]["details"][0]["msg"]


def test_malformed_json_of_any_depth_is_a_400_json_body(served: dict[str, Any]) -> None:
    for raw in (b"[" * 100_000, b"[" * 1_000 + b"]" * 1_000, b'{"items": ' * 50_000):
        r = _post(served["url"], content=raw)
        assert r.status_code == 400, r.text[:200]
        assert r.json()["error"]["code"] == "malformed_json"


def _recv_all(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Read until the server closes the connection (or `limit` s pass); returns (bytes, seconds to close)."""
    t0 = time.monotonic()
    sock.settimeout(limit)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        return data, float("inf")
    except ConnectionResetError:
        pass
    return data, time.monotonic() - t0


def test_slow_and_idle_clients_are_timed_out(served: dict[str, Any]) -> None:
    port = served["port"]
    # 1. connects and sends nothing: closed after the header timeout, silently
    # 2. sends half a request head and stalls: 408 and closed
    # 3. sends a head and a third of its body: 408 and closed after the body timeout
    # 4. gets a response and idles: closed after the keep-alive timeout
    body = json.dumps({"body": "x", "rule": "r"}).encode()
    head = (
        "POST /v1/classify HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    sends = [b"", b"POST /v1/classify HTTP/1.1\r\nhost: x\r\ncontent-le", head + body[:5], head + body]
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in sends]
    try:
        for s, data in zip(socks, sends, strict=True):
            if data:
                s.sendall(data)
        with ThreadPoolExecutor(len(socks)) as pool:
            results = list(pool.map(lambda s: _recv_all(s, 10.0), socks))
    finally:
        for s in socks:
            s.close()
    (idle, t_idle), (head_part, t_head), (body_part, t_body), (answered, t_keep) = results
    assert idle == b"" and t_idle < 5.0
    assert head_part.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in head_part and t_head < 5.0
    assert body_part.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in body_part and t_body < 5.0
    assert answered.startswith(b"HTTP/1.1 200") and b'"probability"' in answered and t_keep < 5.0


def test_beyond_the_queue_new_work_is_shed_with_retry_after(served: dict[str, Any], rows: list[dict[str, str]]) -> None:
    url, gate, service = served["url"], served["gate"], served["service"]
    batch = {"items": items_of(rows)[:4]}  # 4 items: max_queue 12 admits three such requests at a time
    gate.delay = 0.15
    shed_before = service.shed
    try:
        with ThreadPoolExecutor(16) as pool:
            t0 = time.monotonic()
            answers = list(pool.map(lambda _: (_post(url, batch), time.monotonic() - t0), range(16)))
    finally:
        gate.delay = 0.0
    statuses = [a.status_code for a, _ in answers]
    assert set(statuses) <= {200, 503}, [a.text for a, _ in answers if a.status_code not in (200, 503)]
    assert statuses.count(200) >= 3 and statuses.count(503) >= 4, statuses
    for a, seconds in answers:
        if a.status_code == 503:
            assert a.json()["error"]["code"] == "overloaded"
            assert 1 <= int(a.headers["retry-after"]) <= 60
            assert seconds < 5.0  # refused at once, not after waiting
        else:
            assert len(a.json()["items"]) == 4
    assert service.shed - shed_before == statuses.count(503)
    assert service.pending == 0  # every admitted item was answered and released
    assert _post(url, batch).status_code == 200  # and the server serves normally afterwards
