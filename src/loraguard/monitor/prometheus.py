"""Prometheus export of monitor summaries (`prometheus_client` is imported lazily).

`export_prometheus(summary, registry, adapter="name")` registers, once per registry, a collector that
serves the latest summary of every adapter it was given:

    loraguard_predictions{adapter}               gauge   values in the statistics
    loraguard_predictions_seen{adapter}          gauge   rows seen, unparsed included
    loraguard_parse_success_ratio{adapter}       gauge
    loraguard_prediction_mean / _std / _min / _max{adapter}
    loraguard_prediction_quantile{adapter,quantile}
    loraguard_top_value_share{adapter}           gauge   share of the most frequent value
    loraguard_prediction{adapter}                histogram over the monitor's bins (le = bin upper edges)
    loraguard_alert{adapter,rule,severity}       gauge   1 while the rule fires

Gauges rather than counters: values are set from a summary, which may be recomputed or merged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import numpy as np

from loraguard.errors import MissingExtraError
from loraguard.monitor.alerts import Alert
from loraguard.monitor.summary import MonitorSummary

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["MonitorCollector", "export_prometheus"]

_COLLECTORS: WeakKeyDictionary[Any, MonitorCollector] = WeakKeyDictionary()
_LOCK = threading.Lock()


class MonitorCollector:
    """A `prometheus_client` custom collector holding the latest summary per adapter."""

    def __init__(self, prefix: str = "loraguard") -> None:
        self.prefix = prefix
        self._latest: dict[str, tuple[MonitorSummary, tuple[Alert, ...]]] = {}
        self._lock = threading.Lock()

    def set(self, adapter: str, summary: MonitorSummary, alerts: Sequence[Alert] = ()) -> None:
        """Publish `summary` and `alerts` as the latest state of `adapter`."""
        with self._lock:
            self._latest[adapter] = (summary, tuple(alerts))

    def describe(self) -> list[Any]:
        """No fixed metric list: the families depend on the adapters seen."""
        return []  # dynamic metrics: skip the registry's duplicate-name check at registration

    def collect(self) -> Iterator[Any]:
        """Metric families for every adapter's latest summary (called on scrape)."""
        try:
            from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
        except ImportError as exc:  # pragma: no cover - checked in export_prometheus
            raise MissingExtraError("Prometheus export", "stats") from exc
        p = self.prefix
        with self._lock:
            latest = dict(self._latest)
        gauges = {
            "predictions": ("Predictions counted in the monitor's statistics", lambda s: s.n),
            "predictions_seen": ("Rows seen by the monitor, unparsed included", lambda s: s.n_seen),
            "parse_success_ratio": ("Share of model outputs that parsed", lambda s: s.parse_success_share),
            "prediction_mean": ("Mean predicted probability", lambda s: s.mean),
            "prediction_std": ("Standard deviation of predicted probabilities", lambda s: s.std),
            "prediction_min": ("Lowest predicted probability", lambda s: s.min),
            "prediction_max": ("Highest predicted probability", lambda s: s.max),
            "top_value_share": ("Share of the most frequent predicted value", lambda s: s.top_share),
        }
        for name, (doc, get) in gauges.items():
            family = GaugeMetricFamily(f"{p}_{name}", doc, labels=["adapter"])
            for adapter, (summary, _) in latest.items():
                value = get(summary)
                if value is not None:
                    family.add_metric([adapter], float(value))
            yield family
        quantile = GaugeMetricFamily(
            f"{p}_prediction_quantile", "Predicted-probability quantiles", labels=["adapter", "quantile"]
        )
        hist = HistogramMetricFamily(f"{p}_prediction", "Predicted probabilities", labels=["adapter"])
        alert = GaugeMetricFamily(
            f"{p}_alert", "1 while a monitor alert rule fires", labels=["adapter", "rule", "severity"]
        )
        for adapter, (summary, alerts) in latest.items():
            for key, q in summary.quantiles.items():
                quantile.add_metric([adapter, f"0.{key[1:]}"], q)
            hist.add_metric([adapter], _buckets(summary), sum_value=(summary.mean or 0.0) * summary.n)
            for a in alerts:
                alert.add_metric([adapter, a.rule, a.severity.value], 1.0)
        yield quantile
        yield hist
        yield alert


def export_prometheus(
    summary: MonitorSummary,
    registry: CollectorRegistry,
    *,
    adapter: str = "default",
    alerts: Sequence[Alert] = (),
    prefix: str = "loraguard",
) -> MonitorCollector:
    """Publish `summary` (and its `alerts`) on `registry` under the `adapter` label; call again to update."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("Prometheus export", "stats") from exc
    with _LOCK:
        collector = _COLLECTORS.get(registry)
        if collector is None or collector.prefix != prefix:
            collector = MonitorCollector(prefix)
            registry.register(collector)
            _COLLECTORS[registry] = collector
    collector.set(adapter, summary, alerts)
    return collector


def _buckets(summary: MonitorSummary) -> list[tuple[str, float]]:
    edges = np.linspace(0.0, 1.0, summary.bins + 1)[1:]
    cumulative = np.cumsum(summary.histogram)
    buckets = [(f"{edge:.6g}", float(c)) for edge, c in zip(edges[:-1], cumulative[:-1], strict=True)]
    return [*buckets, ("+Inf", float(summary.n))]
