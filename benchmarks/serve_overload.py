"""`loraguard serve` under overload: latency of the accepted requests, the shed share, the server's memory.

Builds the demo's tiny probe base and healthy adapter (as `serve_load.py` does), then for each
`--max-queue` given starts a real `loraguard serve` (uvicorn, a subprocess on an ephemeral loopback
port) and offers far more work than it can do: `--concurrency` keep-alive connections (written by
hand, as `serve_load.py`'s raw client) each send their share of `--requests` single-item classify
requests, the next one as soon as the previous is answered, a 503 included (a client that does not
back off: the worst case for the server). A bounded queue answers the excess at once with 503 +
Retry-After; an unbounded one (`--max-queue` as large as the whole run) lets every request wait.

Printed per queue bound: requests, accepted (200), shed (503) and their share, other statuses,
p50/p99 latency of the accepted requests and of the shed ones, throughput of accepted requests, and
the server process's peak resident memory (VmHWM from /proc, Linux). Exit code 1 when a request got a
status other than 200 or 503, or a connection failed.

    python benchmarks/serve_overload.py [--requests 10000] [--concurrency 200] [--max-queue 64 1000000]
                                        [--max-batch 16] [--threads 1] [--model demo|wide]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import build, free_port, start_server


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument(
        "--max-queue",
        type=int,
        nargs="+",
        default=[64, 1_000_000],
        help="the server's --max-queue, one run each (a value >= --requests never sheds)",
    )
    p.add_argument("--max-batch", type=int, default=16)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1, help="torch threads in the server (the client needs a core)")
    p.add_argument("--model", choices=("demo", "wide"), default="demo")
    p.add_argument("--extra", nargs="*", default=[], help="extra `loraguard serve` options")
    return p.parse_args(argv)


@dataclass
class Run:
    max_queue: int
    seconds: float = 0.0
    accepted: list[float] = field(default_factory=list)
    shed: list[float] = field(default_factory=list)
    retry_after: list[int] = field(default_factory=list)
    other: dict[int, int] = field(default_factory=dict)
    failures: int = 0
    peak_rss_kib: int | None = None

    @property
    def requests(self) -> int:
        return len(self.accepted) + len(self.shed) + sum(self.other.values()) + self.failures


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def peak_rss_kib(pid: int) -> int | None:
    """The process's peak resident set size (VmHWM), Linux only."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


async def wait_ready(port: int, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status = (await reader.readline()).split()
            writer.close()
            if len(status) > 1 and status[1] == b"200":
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the server did not become ready")


async def offer(port: int, run: Run, items: list[dict[str, Any]], args: argparse.Namespace) -> None:
    rng = random.Random(0)

    async def connection(n: int) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            run.failures += n
            return
        try:
            for _ in range(n):
                body = json.dumps({**rng.choice(items), "key": f"user-{rng.randrange(10_000)}"}).encode()
                head = (
                    f"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                t0 = time.perf_counter()
                writer.write(head.encode() + body)
                status_line = await reader.readline()
                if not status_line:
                    run.failures += 1
                    return
                status, length, retry = int(status_line.split()[1]), 0, None
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "retry-after":
                        retry = int(value)
                await reader.readexactly(length)
                seconds = time.perf_counter() - t0
                if status == 200:
                    run.accepted.append(seconds)
                elif status == 503:
                    run.shed.append(seconds)
                    if retry is not None:
                        run.retry_after.append(retry)
                else:
                    run.other[status] = run.other.get(status, 0) + 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            run.failures += 1
        finally:
            writer.close()

    per, extra = divmod(args.requests, args.concurrency)
    started = time.perf_counter()
    await asyncio.gather(*(connection(per + (i < extra)) for i in range(args.concurrency)))
    run.seconds = time.perf_counter() - started


def measure(base: Path, url: str, max_queue: int, args: argparse.Namespace, items: list[dict[str, Any]]) -> Run:
    port = free_port()
    flags = ["--max-queue", str(max_queue), "--max-items", str(min(64, max_queue))]
    proc = start_server(base, url, port, args.max_batch, args, flags)
    run = Run(max_queue)
    try:
        asyncio.run(wait_ready(port, proc))
        asyncio.run(offer(port, run, items, args))
        run.peak_rss_kib = peak_rss_kib(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return run


def print_table(runs: Sequence[Run], args: argparse.Namespace) -> None:
    model = "tiny demo base" if args.model == "demo" else "wide base (hidden 256, 4 layers, MLP 1280)"
    print(
        f"\nloraguard serve under overload, {model} + healthy adapter, {args.requests} single-item requests over "
        f"{args.concurrency} connections that never back off, max batch {args.max_batch}, torch threads "
        f"{args.threads}, cpu count {os.cpu_count()}"
    )
    print(
        f"{'max queue':>10} {'requests':>8} {'200':>7} {'503':>7} {'shed':>6} {'other':>6} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'503 p99 ms':>10} {'ok/s':>7} {'Retry-After':>11} {'peak RSS MiB':>12}"
    )
    for r in runs:
        other = sum(r.other.values()) + r.failures
        shed = len(r.shed) / r.requests if r.requests else float("nan")
        retry = f"{min(r.retry_after)}-{max(r.retry_after)} s" if r.retry_after else "-"
        rss = f"{r.peak_rss_kib / 1024:.0f}" if r.peak_rss_kib else "?"
        print(
            f"{r.max_queue:>10} {r.requests:>8} {len(r.accepted):>7} {len(r.shed):>7} {shed:>6.1%} {other:>6} "
            f"{quantile(r.accepted, 0.5):>8.1f} {quantile(r.accepted, 0.99):>8.1f} {quantile(r.shed, 0.99):>10.1f} "
            f"{len(r.accepted) / r.seconds:>7.1f} {retry:>11} {rss:>12}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from loraguard.demo.tiny import quiet
    from loraguard.scoring.builtin_rows import builtin_rows
    from loraguard.server.schemas import to_item

    items = [to_item(r) for r in builtin_rows()]
    with tempfile.TemporaryDirectory(prefix="loraguard-serve-overload-") as tmp:
        with quiet():
            base, url = build(Path(tmp), args.model)
        runs = [measure(base, url, q, args, items) for q in args.max_queue]
    print_table(runs, args)
    bad = [r for r in runs if r.other or r.failures]
    for r in bad:
        print(f"FAIL: max queue {r.max_queue}: statuses {r.other}, {r.failures} failed connections or requests")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
