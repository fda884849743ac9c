"""Load test of `loraguard serve`: micro-batching on vs one request at a time, on the demo models.

Builds the tiny probe base and its healthy adapter offline (`loraguard.demo.degenerate`), registers
the adapter in a temporary SQLite registry and promotes it, then, for each mode, starts a real
`loraguard serve` (uvicorn, a subprocess on an ephemeral loopback port) and sends `--requests`
single-item classify requests over `--concurrency` concurrent keep-alive connections (after a
warm-up). The default client writes HTTP/1.1 by hand: client and server share the machine's 2
cores, and httpx (`--client httpx`) spends about a millisecond of CPU per request, which capped the
batched server at ~400 req/s in our runs: the load generator, not the server, was measured. Each
request carries a random sticky key and one of the 24 built-in rows.

Printed per mode: requests, errors, p50/p99 latency, throughput and the micro-batch sizes the
server actually formed (from its /metrics), then the throughput ratio. Zero errors are required
and the target is a ratio of at least 3x at concurrency 16; the exit code is 1 when either fails.

    python benchmarks/serve_load.py [--requests 2000] [--concurrency 16] [--max-batch 16]
                                    [--client raw|httpx] [--model demo|wide]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--max-batch", type=int, default=16, help="the batched mode's --max-batch")
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--warmup", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="torch threads in the server (the client needs a core)")
    p.add_argument("--target", type=float, default=3.0, help="required throughput ratio")
    p.add_argument("--extra", nargs="*", default=[], help="extra `loraguard serve` options for both modes")
    p.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="raw: hand-written keep-alive HTTP/1.1 (cheap); httpx: httpx.AsyncClient (costs ~1 ms of "
        "CPU per request on the same 2 cores)",
    )
    p.add_argument(
        "--model",
        choices=("demo", "wide"),
        default="demo",
        help="demo: the demo's tiny probe base (hidden 64, 2 layers); wide: hidden 256, 4 layers, "
        "MLP 1280 (about 5M parameters), where compute outweighs HTTP",
    )
    return p.parse_args(argv)


@dataclass(frozen=True)
class Result:
    mode: str
    requests: int
    errors: int
    seconds: float
    latencies: tuple[float, ...]
    batches: int
    batched_items: int

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def build(workdir: Path, model: str = "demo") -> tuple[Path, str]:
    from loraguard.demo.degenerate import BASE_INIT_RANGE, build_healthy_adapter, build_probe_base
    from loraguard.demo.tiny import build_tiny_base
    from loraguard.registry import Registry
    from loraguard.registry.admission import admit

    if model == "wide":
        base = build_tiny_base(
            workdir / "base",
            seed=4,
            hidden_size=256,
            num_layers=4,
            intermediate_size=1280,
            num_heads=4,
            num_kv_heads=2,
            initializer_range=BASE_INIT_RANGE,
        )
    else:
        base = build_probe_base(workdir / "base")
    healthy = build_healthy_adapter(base, workdir / "adapters" / "healthy")
    url = f"sqlite:///{workdir / 'registry.db'}"
    with Registry(url) as reg:
        reg.promote(admit(reg, "healthy", healthy, base=str(base)).ref)
    return base, url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    base: Path, url: str, port: int, max_batch: int, args: argparse.Namespace, flags: Sequence[str] = ()
) -> subprocess.Popen[str]:
    """`loraguard serve` in a subprocess, quiet, with `flags` and then `args.extra` added."""
    cmd = [
        sys.executable,
        "-m",
        "loraguard",
        "serve",
        "--registry",
        url,
        "--base",
        str(base),
        "--port",
        str(port),
        "--max-batch",
        str(max_batch),
        "--max-wait-ms",
        str(args.max_wait_ms),
        "--threads",
        str(args.threads),
        "--log-level",
        "warning",
        *flags,
        *args.extra,
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "LORAGUARD_API_KEY": ""}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


async def wait_ready(client: Any, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except Exception:  # not listening yet
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the server did not become ready")


def batch_stats(text: str) -> tuple[int, int]:
    """(micro-batches, items in them) of live traffic, from the server's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    count = total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("kind") == "live" and s.name == "loraguard_serve_batch_size_count":
                count = s.value
            if s.labels.get("kind") == "live" and s.name == "loraguard_serve_batch_size_sum":
                total = s.value
    return int(count), int(total)


async def load(
    mode: str, base: Path, url: str, max_batch: int, args: argparse.Namespace, items: list[dict[str, Any]]
) -> Result:
    import httpx

    port = free_port()
    proc = start_server(base, url, port, max_batch, args)
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60.0, limits=limits) as client:
            await wait_ready(client, proc)
            rng = random.Random(0)
            latencies: list[float] = []
            errors = 0

            async def httpx_worker(n: int, record: bool) -> None:
                nonlocal errors
                for _ in range(n):
                    item = {**rng.choice(items), "key": f"user-{rng.randrange(10_000)}"}
                    t0 = time.perf_counter()
                    try:
                        r = await client.post("/v1/classify", json=item)
                        ok = r.status_code == 200 and isinstance(r.json().get("probability"), float)
                    except httpx.HTTPError:
                        ok = False
                    if record:
                        latencies.append(time.perf_counter() - t0)
                        errors += not ok

            async def raw_worker(n: int, record: bool) -> None:
                """One keep-alive HTTP/1.1 connection written by hand: a load generator that costs the shared
                2 cores far less than httpx, so the server, not the client, is what gets measured."""
                nonlocal errors
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    for _ in range(n):
                        body = json.dumps({**rng.choice(items), "key": f"user-{rng.randrange(10_000)}"}).encode()
                        head = (
                            f"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                        )
                        t0 = time.perf_counter()
                        writer.write(head.encode() + body)
                        status, length = 0, 0
                        status_line = await reader.readline()
                        status = int(status_line.split()[1])
                        while (line := await reader.readline()) not in (b"\r\n", b""):
                            name, _, value = line.decode("latin-1").partition(":")
                            if name.strip().lower() == "content-length":
                                length = int(value)
                        payload = json.loads(await reader.readexactly(length))
                        ok = status == 200 and isinstance(payload.get("probability"), float)
                        if record:
                            latencies.append(time.perf_counter() - t0)
                            errors += not ok
                finally:
                    writer.close()

            worker = raw_worker if args.client == "raw" else httpx_worker
            await asyncio.gather(*(worker(args.warmup // args.concurrency + 1, False) for _ in range(args.concurrency)))
            before = batch_stats((await client.get("/metrics")).text)
            per, extra = divmod(args.requests, args.concurrency)
            started = time.perf_counter()
            await asyncio.gather(*(worker(per + (i < extra), True) for i in range(args.concurrency)))
            seconds = time.perf_counter() - started
            after = batch_stats((await client.get("/metrics")).text)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return Result(mode, len(latencies), errors, seconds, tuple(latencies), after[0] - before[0], after[1] - before[1])


def print_table(results: Sequence[Result], args: argparse.Namespace) -> float:
    model = "tiny demo base" if args.model == "demo" else "wide base (hidden 256, 4 layers, MLP 1280)"
    print(
        f"\nloraguard serve, {model} + healthy adapter, {args.requests} single-item requests, "
        f"concurrency {args.concurrency}, torch threads {args.threads}, cpu count {os.cpu_count()}"
    )
    print(
        f"{'mode':<26} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} "
        f"{'batches':>8} {'mean batch':>10}"
    )
    for r in results:
        mean = r.batched_items / r.batches if r.batches else float("nan")
        print(
            f"{r.mode:<26} {r.requests:>8} {r.errors:>6} {r.quantile(0.5):>8.1f} {r.quantile(0.99):>8.1f} "
            f"{r.throughput:>8.1f} {r.batches:>8} {mean:>10.2f}"
        )
    ratio = results[0].throughput / results[1].throughput
    print(f"throughput ratio (micro-batching / one at a time): {ratio:.2f}x (target >= {args.target:g}x)")
    p50 = [statistics.median(r.latencies) for r in results]
    print(f"median latency ratio (one at a time / micro-batching): {p50[1] / p50[0]:.2f}x")
    return ratio


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from loraguard.demo.tiny import quiet
    from loraguard.scoring.builtin_rows import builtin_rows
    from loraguard.server.schemas import to_item

    items = [to_item(r) for r in builtin_rows()]
    with tempfile.TemporaryDirectory(prefix="loraguard-serve-bench-") as tmp:
        with quiet():
            base, url = build(Path(tmp), args.model)
        batched = asyncio.run(load(f"micro-batching (max {args.max_batch})", base, url, args.max_batch, args, items))
        single = asyncio.run(load("one at a time (max 1)", base, url, 1, args, items))
    ratio = print_table([batched, single], args)
    failed = batched.errors or single.errors or ratio < args.target
    if batched.errors or single.errors:
        print("FAIL: errors during the run")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
