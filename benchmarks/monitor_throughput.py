"""Throughput and memory of `loraguard.monitor.Monitor` ingesting predictions in batches.

Run: python benchmarks/monitor_throughput.py [--quick]

For each batch size and N it feeds Beta(2, 5) probabilities (one batch generated up front and fed
repeatedly, so generating data is not timed) and reports:

- predictions per second, timed without tracemalloc, best of `--repeat` runs, and the ratio to the
  5 million/s target;
- the tracemalloc peak of a second, traced run: everything allocated during ingestion, the
  per-batch temporaries included (they scale with the batch size, not with N);
- the monitor's retained state after ingestion (`Monitor.memory_bytes()`), which must not grow with N.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np

from loraguard.monitor import Monitor

TARGET = 5_000_000


def ingest(n: int, batch: np.ndarray) -> Monitor:
    mon = Monitor()
    remaining = n
    while remaining > 0:
        take = min(remaining, batch.size)
        mon.update(batch[:take])
        remaining -= take
    mon.summary()
    return mon


def timed(n: int, batch: np.ndarray, repeat: int) -> tuple[float, int]:
    """(best seconds, retained state bytes)."""
    best, state = float("inf"), 0
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        mon = ingest(n, batch)
        best = min(best, time.perf_counter() - start)
        assert mon.n == n
        state = mon.memory_bytes()
    return best, state


def traced_peak(n: int, batch: np.ndarray) -> int:
    gc.collect()
    tracemalloc.start()
    ingest(n, batch)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1e5 and 1e6 only")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per row (best is shown)")
    args = parser.parse_args()
    sizes = [100_000, 1_000_000] if args.quick else [1_000_000, 10_000_000]
    rng = np.random.default_rng(0)
    ingest(10_000, rng.beta(2.0, 5.0, 10_000))  # warm-up
    print(f"target: {TARGET:,} predictions/s; Beta(2, 5) values; timings are the best of {args.repeat} runs")
    header = f"{'N':>12} {'batch':>10} {'seconds':>8} {'preds/s':>12} {'vs target':>9} {'tracemalloc peak':>17}"
    print(header + f" {'state':>9}")
    print("-" * (len(header) + 10))
    for size in (10_000, 100_000, 1_000_000):
        batch = rng.beta(2.0, 5.0, size)
        for n in sizes:
            seconds, state = timed(n, batch, args.repeat)
            peak = traced_peak(n, batch)
            rate = n / seconds
            print(
                f"{n:>12,} {size:>10,} {seconds:>8.3f} {rate:>12,.0f} {rate / TARGET:>8.1f}x "
                f"{peak / 2**20:>13.2f} MiB {state / 1024:>5.1f} KiB"
            )


if __name__ == "__main__":
    main()
