"""Helpers for the server tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any


def items_of(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Classify items carrying exactly the rows' fields."""
    from loraguard.server.schemas import to_item

    return [to_item(r) for r in rows]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def adapters_json(client: Any) -> dict[str, Any]:
    response = client.get("/v1/adapters")
    assert response.status_code == 200, response.text
    return json.loads(response.text)


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of sample `name` with exactly these labels (label order does not matter), or None."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None
