"""Live per-adapter statistics (one `Monitor` each) and the server's own alerts.

Every scored prediction, live or shadow, feeds its adapter's `loraguard.monitor.Monitor` (segmented
by rule), so a degenerate candidate running in shadow fires the monitor's `degenerate` alert
before it ever gets traffic. Server alerts are what the server refused or could not do (an adapter
it would not load, a registry it could not read); they are keyed by (kind, ref), so a failure
repeated on every poll updates one alert rather than piling up, and they clear when the cause is gone.

`export()` / `restore()` turn the monitors and counters into JSON and back: the service saves them
in the registry periodically and at shutdown, and restores them at start, so a restart keeps each
adapter's live distribution and its alerts.

`snapshot()` returns frozen values for the dashboard, /metrics and /readyz; the lock only guards
the dictionaries (monitor updates run on the event loop, snapshots may be taken from any thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from loraguard.errors import InputError
from loraguard.monitor import Alert, Monitor, MonitorSummary
from loraguard.server.batcher import BatchOutcome

__all__ = ["AdapterSnapshot", "ServerAlert", "ServerState", "StateSnapshot"]


@dataclass(frozen=True)
class ServerAlert:
    """Something the server refused or failed to do (shown on the dashboard and in /metrics)."""

    kind: str
    """`serve-rejected` (an adapter was not loaded), `kept-previous` (a retired adapter keeps serving
    because its successor was refused) or `registry-unavailable` (polling failed)."""
    ref: str | None
    reason: str
    message: str
    at: float = field(default_factory=time.time)
    count: int = 1
    """Times it happened in a row (the alert is updated, not duplicated)."""


@dataclass(frozen=True)
class AdapterSnapshot:
    """One adapter's counters, monitor summary and monitor alerts at one moment."""

    ref: str
    requests: int
    """Live answers returned."""
    shadow_predictions: int
    errors: int
    summary: MonitorSummary
    alerts: tuple[Alert, ...]


@dataclass(frozen=True)
class StateSnapshot:
    adapters: Mapping[str, AdapterSnapshot]
    server_alerts: tuple[ServerAlert, ...]

    def observed_shares(self) -> dict[str, float]:
        """Share of the live answers each adapter gave so far."""
        total = sum(a.requests for a in self.adapters.values())
        return {ref: (a.requests / total if total else 0.0) for ref, a in self.adapters.items()}


class _Stats:
    __slots__ = ("errors", "monitor", "requests", "shadow")

    def __init__(self) -> None:
        self.monitor = Monitor()
        self.requests = self.shadow = self.errors = 0


class ServerState:
    """Monitors and counters per adapter, plus the server alerts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[str, _Stats] = {}
        self._alerts: dict[tuple[str, str | None], ServerAlert] = {}

    def track(self, refs: Sequence[str]) -> None:
        """Keep statistics for exactly `refs` (new adapters start empty, unloaded ones are dropped)."""
        with self._lock:
            for ref in refs:
                self._stats.setdefault(ref, _Stats())
            for ref in set(self._stats) - set(refs):
                del self._stats[ref]

    def record(self, outcome: BatchOutcome) -> None:
        """Feed one scored group into its adapter's monitor."""
        values = [p if p is not None else float("nan") for p in outcome.probabilities]
        parsed = [p is not None for p in outcome.probabilities]
        with self._lock:
            stats = self._stats.get(outcome.ref)
            if stats is None:
                return
            stats.monitor.update(values, parsed=parsed, segments=list(outcome.rules))
            if outcome.shadow:
                stats.shadow += len(values)
            else:
                stats.requests += len(values)

    def record_error(self, ref: str) -> None:
        with self._lock:
            if ref in self._stats:
                self._stats[ref].errors += 1

    def export(self) -> dict[str, dict[str, Any]]:
        """Every tracked adapter's monitor and counters as JSON-able dicts (ref → state)."""
        with self._lock:
            return {
                ref: {
                    "n": s.monitor.n,
                    "monitor": s.monitor.to_state(),
                    "requests": s.requests,
                    "shadow": s.shadow,
                    "errors": s.errors,
                }
                for ref, s in self._stats.items()
            }

    def restore(self, saved: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Fold saved states into the tracked adapters (others are ignored); returns the refs restored.
        A state that does not parse is skipped (the adapter starts empty), never an error."""
        restored: list[str] = []
        with self._lock:
            for ref, blob in saved.items():
                stats = self._stats.get(ref)
                if stats is None or not isinstance(blob, Mapping) or not isinstance(blob.get("monitor"), Mapping):
                    continue
                try:
                    monitor = Monitor.from_state(blob["monitor"])
                    monitor.merge(stats.monitor)
                    counts = [int(blob.get(k, 0)) for k in ("requests", "shadow", "errors")]
                except (InputError, TypeError, ValueError):
                    continue
                stats.monitor = monitor
                stats.requests, stats.shadow, stats.errors = (
                    stats.requests + counts[0],
                    stats.shadow + counts[1],
                    stats.errors + counts[2],
                )
                restored.append(ref)
        return restored

    def raise_alert(self, kind: str, ref: str | None, reason: str, message: str) -> ServerAlert:
        """Add or refresh the (kind, ref) alert; returns it."""
        with self._lock:
            old = self._alerts.get((kind, ref))
            alert = ServerAlert(kind, ref, reason, message, count=old.count + 1 if old else 1)
            self._alerts[(kind, ref)] = alert
            return alert

    def clear_alert(self, kind: str, ref: str | None = None) -> None:
        with self._lock:
            self._alerts.pop((kind, ref), None)

    def alert_refs(self, kind: str) -> list[str | None]:
        """The refs that have an alert of `kind`."""
        with self._lock:
            return [ref for k, ref in self._alerts if k == kind]

    def has_alert(self, kind: str, ref: str | None = None) -> bool:
        with self._lock:
            return (kind, ref) in self._alerts

    def snapshot(self) -> StateSnapshot:
        """Frozen counters, summaries and alerts (monitor alerts under the default policy)."""
        with self._lock:
            items = [(ref, s.requests, s.shadow, s.errors, s.monitor.summary()) for ref, s in self._stats.items()]
            alerts = tuple(sorted(self._alerts.values(), key=lambda a: (a.kind, a.ref or "")))
        from loraguard.monitor import evaluate

        adapters = {
            ref: AdapterSnapshot(ref, req, sh, err, summary, evaluate(summary))
            for ref, req, sh, err, summary in sorted(items, key=lambda t: t[0])
        }
        return StateSnapshot(MappingProxyType(adapters), alerts)
