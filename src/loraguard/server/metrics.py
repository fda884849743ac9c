"""Prometheus metrics of one server (its own `CollectorRegistry`, so two apps in a process never clash).

loraguard_serve_requests_total{adapter,status}        counter  answered items (ok, error, ...)
loraguard_serve_latency_seconds{adapter}              histogram  request receipt → answer, per item
loraguard_serve_batch_size{kind}                      histogram  jobs per micro-batch (live/shadow)
loraguard_serve_shadow_predictions_total{adapter}     counter
loraguard_serve_shadow_dropped_total{adapter}         counter  shadow jobs dropped (queue full)
loraguard_serve_shed_total                            counter  requests refused with 503 (queue full)
loraguard_serve_queue_items                           gauge    items admitted and not answered yet
loraguard_serve_reload_failures_total{reason}         counter  adapters refused, registry unreadable
loraguard_serve_adapter_weight{adapter,mode}          gauge    configured traffic weight
loraguard_serve_server_alert{kind,ref,reason}         gauge    1 while a server alert stands
loraguard_prediction..., loraguard_alert{adapter,rule,severity}   the monitors (`MonitorCollector`)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from loraguard.errors import MissingExtraError
from loraguard.server.routing import RoutingTable
from loraguard.server.state import StateSnapshot

__all__ = ["CONTENT_TYPE", "ServerMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServerMetrics:
    """The server's metric objects on a private registry; `render(snapshot, table)` is one scrape."""

    def __init__(self) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingExtraError("The server's /metrics", "server") from exc
        from loraguard.monitor.prometheus import MonitorCollector

        p = "loraguard_serve"
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            f"{p}_requests", "Classified items by adapter and outcome", ["adapter", "status"], registry=r
        )
        self.latency = Histogram(
            f"{p}_latency_seconds",
            "Time from request receipt to answer, per item",
            ["adapter"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            f"{p}_batch_size", "Jobs per micro-batch", ["kind"], buckets=BATCH_BUCKETS, registry=r
        )
        self.shadow = Counter(f"{p}_shadow_predictions", "Shadow predictions made", ["adapter"], registry=r)
        self.shadow_dropped = Counter(
            f"{p}_shadow_dropped", "Shadow jobs dropped because the shadow queue was full", ["adapter"], registry=r
        )
        self.shed = Counter(f"{p}_shed", "Requests refused with 503 because the item queue was full", registry=r)
        self.queue = Gauge(f"{p}_queue_items", "Items admitted and not answered yet", registry=r)
        self.reload_failures = Counter(
            f"{p}_reload_failures", "Adapters refused at load, or registry polls that failed", ["reason"], registry=r
        )
        self.weight = Gauge(
            f"{p}_adapter_weight", "Configured traffic weight of each loaded adapter", ["adapter", "mode"], registry=r
        )
        self.server_alert = Gauge(
            f"{p}_server_alert", "1 while a server alert stands", ["kind", "ref", "reason"], registry=r
        )
        self._monitors = _Latest(MonitorCollector())
        r.register(self._monitors)

    def render(self, snapshot: StateSnapshot, table: RoutingTable) -> bytes:
        """Refresh the gauges from `snapshot` and `table`, then the Prometheus text of everything."""
        from prometheus_client import generate_latest

        self.weight.clear()
        for route in table.routes:
            self.weight.labels(route.ref, route.mode).set(route.weight)
        self.server_alert.clear()
        for alert in snapshot.server_alerts:
            self.server_alert.labels(alert.kind, alert.ref or "", alert.reason).set(1)
        from loraguard.monitor.prometheus import MonitorCollector

        monitors = MonitorCollector()  # a fresh one per scrape: unloaded adapters disappear
        for ref, adapter in snapshot.adapters.items():
            monitors.set(ref, adapter.summary, adapter.alerts)
        self._monitors.current = monitors
        return generate_latest(self.registry)


class _Latest:
    """A registered collector that delegates to the latest `MonitorCollector` (swapped on each scrape)."""

    def __init__(self, current: Any) -> None:
        self.current = current

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        yield from self.current.collect()
