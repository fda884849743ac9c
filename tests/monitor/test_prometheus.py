"""Prometheus export: gauges, the histogram and alert gauges on a given registry."""

from __future__ import annotations

import numpy as np
import pytest

prometheus_client = pytest.importorskip("prometheus_client")

from loraguard.monitor import Monitor, export_prometheus  # noqa: E402


def test_exports_gauges_histogram_and_alerts() -> None:
    registry = prometheus_client.CollectorRegistry()
    rng = np.random.default_rng(0)
    values = rng.beta(2, 5, 4000)
    parsed = rng.random(4000) > 0.02
    mon = Monitor().update(values, parsed=parsed)
    export_prometheus(mon.summary(), registry, adapter="good")
    get = registry.get_sample_value
    kept = values[parsed]
    assert get("loraguard_predictions", {"adapter": "good"}) == kept.size
    assert get("loraguard_predictions_seen", {"adapter": "good"}) == 4000
    assert get("loraguard_parse_success_ratio", {"adapter": "good"}) == pytest.approx(parsed.mean())
    assert get("loraguard_prediction_mean", {"adapter": "good"}) == pytest.approx(kept.mean())
    assert get("loraguard_prediction_bucket", {"adapter": "good", "le": "0.5"}) == np.sum(kept < 0.5)
    assert get("loraguard_prediction_bucket", {"adapter": "good", "le": "+Inf"}) == kept.size
    assert get("loraguard_prediction_count", {"adapter": "good"}) == kept.size
    assert get("loraguard_prediction_sum", {"adapter": "good"}) == pytest.approx(kept.sum())
    assert get("loraguard_prediction_quantile", {"adapter": "good", "quantile": "0.50"}) == pytest.approx(
        np.median(kept), abs=2e-3
    )


def test_updates_in_place_and_keeps_adapters_apart() -> None:
    registry = prometheus_client.CollectorRegistry()
    broken = Monitor().update(np.zeros(100))
    export_prometheus(broken.summary(), registry, adapter="broken", alerts=broken.alerts())
    healthy = Monitor().update(np.linspace(0, 1, 100))
    export_prometheus(healthy.summary(), registry, adapter="ok")  # same registry: no duplicate error
    get = registry.get_sample_value
    assert get("loraguard_alert", {"adapter": "broken", "rule": "degenerate", "severity": "error"}) == 1.0
    assert get("loraguard_top_value_share", {"adapter": "broken"}) == 1.0
    assert get("loraguard_alert", {"adapter": "ok", "rule": "degenerate", "severity": "error"}) is None
    broken.update(np.linspace(0, 1, 900))
    export_prometheus(broken.summary(), registry, adapter="broken", alerts=broken.alerts())
    assert get("loraguard_predictions", {"adapter": "broken"}) == 1000
    assert get("loraguard_alert", {"adapter": "broken", "rule": "degenerate", "severity": "error"}) is None
    text = prometheus_client.generate_latest(registry).decode()
    assert 'loraguard_prediction_bucket{adapter="ok",le="+Inf"} 100.0' in text
