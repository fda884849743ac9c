"""`ClassifierService`: the server without HTTP: pool, model thread, batcher, routing, monitors, reloader.

`app.create_app` wraps it in FastAPI; tests can drive it directly. Lifecycle: `await start()` loads
the base on the model thread, reads the registry once (so the server is ready as soon as it
answers) and starts the batcher and the registry watcher; `await stop()` undoes all of it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loraguard.errors import AdapterGone, InputError, Overloaded, RequestError
from loraguard.server.batcher import BatchOutcome, MicroBatcher, ModelThread
from loraguard.server.metrics import ServerMetrics
from loraguard.server.pool import AdapterPool, CheckFn
from loraguard.server.reload import RegistryLike, Reloader
from loraguard.server.routing import RoutingTable
from loraguard.server.schemas import ClassifyItem, Limits, to_row
from loraguard.server.state import ServerState

__all__ = ["ClassifierService", "Prediction", "ServeConfig"]

log = logging.getLogger("loraguard.server")


@dataclass(frozen=True)
class ServeConfig:
    """Everything `loraguard serve` can set (defaults are the CLI's)."""

    base: str
    registry_url: str | None = None
    max_batch: int = 16
    """Items per micro-batch (1: one request at a time)."""
    max_wait_ms: float = 5.0
    """How long the first item of a micro-batch waits for others."""
    reload_interval: float = 1.5
    """Seconds between registry polls."""
    api_key: str | None = None
    template: str = "chat"
    batch_size: int = 16
    """Rows per forward pass inside `score_rows` (a micro-batch of one adapter may take several)."""
    prefix_cache: bool = True
    shadow_queue: int = 1024
    """Shadow jobs waiting at most; more are dropped and counted."""
    dtype: str = "auto"
    device: str = "cpu"
    limits: Limits = field(default_factory=Limits)
    refresh_seconds: int = 5
    """Dashboard auto-refresh period."""
    threads: int | None = None
    """torch intra-op threads (None: torch's default)."""
    instance: str = "default"
    """This server's name in the registry's monitor snapshots (the CLI uses HOST:PORT)."""
    snapshot_interval: float = 30.0
    """Seconds between monitor snapshots saved in the registry (also saved at shutdown)."""
    max_queue: int = 256
    """Items admitted and not yet answered, at most; a request that would exceed it gets 503 + Retry-After."""
    header_timeout: float = 10.0
    """Seconds a client has to send a request's headers (after connecting or after the previous response)."""
    body_timeout: float = 30.0
    """Seconds a client has to send a request's body once its headers arrived (else 408)."""
    keep_alive_timeout: float = 5.0
    """Seconds an idle keep-alive connection stays open (uvicorn's `timeout_keep_alive`)."""

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_wait_ms < 0 or self.reload_interval <= 0 or self.batch_size < 1:
            raise InputError(
                "max_batch >= 1, max_wait_ms >= 0, reload_interval > 0 and batch_size >= 1 "
                f"are required (got {self.max_batch}, {self.max_wait_ms}, {self.reload_interval}, "
                f"{self.batch_size})"
            )
        if self.shadow_queue < 0:
            raise InputError(f"shadow_queue {self.shadow_queue}: must be >= 0")
        if self.snapshot_interval <= 0:
            raise InputError(f"snapshot_interval {self.snapshot_interval}: must be > 0 seconds")
        if self.max_queue < self.limits.max_items:
            raise InputError(
                f"max_queue {self.max_queue} is below max_items {self.limits.max_items}: a full batch request "
                "could never be admitted"
            )
        if min(self.header_timeout, self.body_timeout, self.keep_alive_timeout) <= 0:
            raise InputError(
                f"timeouts must be > 0 seconds (header {self.header_timeout}, body {self.body_timeout}, "
                f"keep-alive {self.keep_alive_timeout})"
            )


@dataclass(frozen=True)
class Prediction:
    """One answered item."""

    probability: float | None
    adapter: str
    version: int
    latency_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "probability": self.probability,
            "adapter": self.adapter,
            "version": self.version,
            "latency_ms": round(self.latency_ms, 3),
        }


class ClassifierService:
    """Routes items to adapters, scores them in micro-batches and keeps the monitors (see module doc)."""

    def __init__(
        self,
        config: ServeConfig,
        registry: RegistryLike,
        *,
        check_fn: CheckFn | None = None,
        base_key: str | None = None,
        seed: int | None = None,
    ) -> None:
        self.config, self.registry = config, registry
        self.pool = AdapterPool(
            config.base,
            template=config.template,
            batch_size=config.batch_size,
            prefix_cache=config.prefix_cache,
            dtype=config.dtype,
            device=config.device,
            check_fn=check_fn,
        )
        self.model_thread = ModelThread()
        self.state = ServerState()
        self.metrics = ServerMetrics()
        self.table = RoutingTable()
        self.rng = random.Random(seed)
        self.batcher: MicroBatcher | None = None
        self.reloader = Reloader(
            registry,
            base_key or config.base,
            self.pool,
            self.model_thread,
            self.state,
            self.metrics,
            self._swap_table,
            interval=config.reload_interval,
        )
        self._watch: asyncio.Task[None] | None = None
        self._snapshots: asyncio.Task[None] | None = None
        self.restored: list[str] = []
        self.started_at = time.time()
        self.pending = 0
        """Items admitted (`classify`) and not answered yet: what `max_queue` bounds."""
        self.shed = 0
        """Requests refused with 503 because the queue was full."""
        self._item_seconds = 0.05
        """Moving average of model seconds per live item (for Retry-After)."""
        self.metrics.queue.set_function(lambda: self.pending)

    def _swap_table(self, table: RoutingTable) -> None:
        self.table = table  # one reference assignment: requests see the old table or the new one

    async def start(self) -> None:
        if self.config.threads:
            import torch

            torch.set_num_threads(self.config.threads)
        await self.model_thread.run(self.pool.load_base)
        self.batcher = MicroBatcher(
            self.model_thread,
            self.pool.score,
            max_batch=self.config.max_batch,
            max_wait_ms=self.config.max_wait_ms,
            shadow_queue=self.config.shadow_queue,
            on_batch=self._on_batch,
            on_batch_size=lambda kind, n: self.metrics.batch_size.labels(kind).observe(n),
            on_shadow_drop=lambda ref: self.metrics.shadow_dropped.labels(ref).inc(),
        )
        self.batcher.start()
        await self.reloader.poll(force=True)
        await self._restore()
        loop = asyncio.get_running_loop()
        self._watch = loop.create_task(self.reloader.run(), name="loraguard-reloader")
        self._snapshots = loop.create_task(self._snapshot_loop(), name="loraguard-snapshots")

    async def stop(self) -> None:
        for task in (self._watch, self._snapshots):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        if self.batcher is not None:
            await self.batcher.stop()
        await self.save_snapshot()
        self.model_thread.shutdown()
        self.pool.close()

    async def _restore(self) -> None:
        """Bring back the monitors this instance saved for its base (a restart keeps its statistics)."""
        load = getattr(self.registry, "load_monitors", None)
        if load is None:
            return
        try:
            saved = await asyncio.to_thread(load, self.reloader.base, self.config.instance)
        except Exception as exc:  # the registry is down: start with empty monitors, say so
            log.warning("could not restore the monitors from the registry: %s", exc)
            return
        self.restored = self.state.restore(saved)
        if self.restored:
            log.info("restored monitors of %s", ", ".join(self.restored))

    async def save_snapshot(self) -> bool:
        """Save every adapter's monitor and counters in the registry; False (and an alert) on failure."""
        save = getattr(self.registry, "save_monitors", None)
        if save is None:
            return False
        try:
            await asyncio.to_thread(save, self.reloader.base, self.config.instance, self.state.export())
        except Exception as exc:  # locked or down: keep the monitors in memory, try again later
            self.state.raise_alert(
                "snapshot-failed",
                None,
                "registry-unavailable",
                f"could not save the monitors in the registry ({type(exc).__name__}: "
                f"{str(exc)[:200]}); retrying every {self.config.snapshot_interval:g} s",
            )
            return False
        self.state.clear_alert("snapshot-failed")
        return True

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.snapshot_interval)
            await self.save_snapshot()

    def _on_batch(self, outcome: BatchOutcome) -> None:
        self.state.record(outcome)
        if not outcome.shadow and outcome.probabilities:
            per_item = outcome.seconds / len(outcome.probabilities)
            self._item_seconds += 0.2 * (per_item - self._item_seconds)
        if outcome.shadow:
            self.metrics.shadow.labels(outcome.ref).inc(len(outcome.probabilities))

    def readiness(self) -> tuple[bool, str]:
        """(ready, why): the base is loaded and at least one adapter takes live traffic."""
        if not self.pool.ready:
            return False, "the base model is not loaded yet"
        if not self.table.live:
            loaded = len(self.table.routes)
            return False, (
                f"no live adapter for base {self.config.base}: {loaded} loaded, none with traffic "
                "weight > 0. Promote one or give a candidate traffic (loraguard registry ...)"
            )
        return True, f"{len(self.table.live)} live adapter(s)"

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained (the moving model time per item), 1 to 60."""
        return max(1, min(60, math.ceil(self.pending * self._item_seconds)))

    async def classify(self, items: Sequence[ClassifyItem], received: float) -> list[Prediction]:
        """Answer `items` (routed one by one); raises `RequestError` for 4xx/503 outcomes.

        At most `max_queue` items are admitted and unanswered at once: a request that would go beyond
        is refused whole at once (`Overloaded`, 503 + Retry-After) instead of waiting behind them."""
        if self.batcher is None:
            raise RequestError(503, "not_ready", "the server is starting")
        if self.pending + len(items) > self.config.max_queue:
            self.shed += 1
            self.metrics.shed.inc()
            raise Overloaded(
                f"the server is overloaded: {self.pending} items are waiting (at most {self.config.max_queue}); "
                "retry after the Retry-After seconds",
                self.retry_after(),
            )
        self.pending += len(items)
        try:
            results = await asyncio.gather(
                *(self._one(item, i, received) for i, item in enumerate(items)), return_exceptions=True
            )
        finally:
            self.pending -= len(items)
        for r in results:  # the first failure decides the status of the whole request
            if isinstance(r, BaseException):
                raise r
        return [r for r in results if isinstance(r, Prediction)]

    async def _one(self, item: ClassifyItem, index: int, received: float) -> Prediction:
        assert self.batcher is not None
        row = to_row(item, str(index))
        for attempt in range(2):
            table = self.table
            route = table.choose(item.key, self.rng)
            if route is None:
                raise RequestError(503, "no_live_adapter", self.readiness()[1])
            if attempt == 0:
                for shadow in table.shadows:
                    self.batcher.submit_shadow(shadow.ref, row)
            try:
                probability = await self.batcher.submit(route.ref, row)
            except AdapterGone:
                continue  # unloaded between routing and scoring: route again on the new table
            except InputError as exc:
                self.metrics.requests.labels(route.ref, "rejected").inc()
                raise RequestError(422, "unscorable_item", f"item {index}: {exc}") from None
            except Exception as exc:
                self.metrics.requests.labels(route.ref, "error").inc()
                self.state.record_error(route.ref)
                log.exception("scoring failed on %s", route.ref)
                raise RequestError(
                    500, "scoring_failed", f"item {index}: scoring failed on {route.ref}: {type(exc).__name__}"
                ) from None
            latency = time.perf_counter() - received
            self.metrics.requests.labels(route.ref, "ok" if probability is not None else "nonfinite").inc()
            self.metrics.latency.labels(route.ref).observe(latency)
            return Prediction(probability, route.name, route.version, latency * 1000)
        raise RequestError(503, "adapter_unavailable", "the adapter was unloaded while the request waited; retry")
