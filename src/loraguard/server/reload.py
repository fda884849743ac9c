"""The registry watcher: apply registry changes to the running server without a restart.

Every `interval` seconds the reloader reads `registry.revision()` (cheap). When it changed:

- `registry.serving(base)` gives the production and candidate entries of the served base;
- entries no longer served (retired, removed) are unloaded;
- new entries are prepared (private copy, SHA-256 against the registered files, safetensors only,
  static check) and attached on the model thread. ANY failure keeps the previous set serving:
  the entry is skipped, a `serve-rejected` server alert is raised (dashboard, /metrics) and the
  registry gets a `serve-rejected` event;
- a new routing table is built from the loaded entries and swapped in atomically.

New entries are loaded BEFORE anything is unloaded. When the registry replaced a live adapter (a
`promote` retires the name's previous production version) and the replacement is refused, the
predecessor keeps its route and its weight until the replacement loads, with a `kept-previous`
alert: a bad promotion never leaves the traffic without its adapter. Retiring an adapter with no
refused successor unloads it as before.

A refused entry is not retried while its files look the same (size and mtime of every registered
file): this keeps a bad adapter from being re-hashed on every revision, including the revision
our own `serve-rejected` event may bump. When its files change, it is tried again.

A registry that cannot be read (locked by a writer, database down) raises a `registry-unavailable`
alert; the server keeps serving what it has and tries again at the next poll.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from loraguard.errors import AdapterRefused
from loraguard.server.batcher import ModelThread
from loraguard.server.metrics import ServerMetrics
from loraguard.server.pool import AdapterPool
from loraguard.server.routing import Route, RoutingTable
from loraguard.server.state import ServerState

__all__ = ["RegistryLike", "Reloader"]

log = logging.getLogger("loraguard.server")


class RegistryLike(Protocol):
    """What the server needs of `loraguard.registry.Registry`."""

    def revision(self) -> int: ...
    def serving(self, base: str) -> Sequence[Any]: ...
    def record_event(self, kind: str, ref: str | None, detail: Mapping[str, Any]) -> Any: ...


def _signature(entry: Any) -> tuple[Any, ...]:
    """Size and mtime of every registered file (None when missing): a change means "try again"."""
    out: list[Any] = [entry.path]
    for rel in sorted(entry.files):
        try:
            st = os.stat(Path(entry.path) / rel)
            out.append((rel, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((rel, None))
    return tuple(out)


def _status(entry: Any) -> str:
    return str(getattr(entry.status, "value", entry.status))


class Reloader:
    """Keeps the pool and the routing table in step with the registry (see the module docstring)."""

    def __init__(
        self,
        registry: RegistryLike,
        base: str,
        pool: AdapterPool,
        model_thread: ModelThread,
        state: ServerState,
        metrics: ServerMetrics,
        on_table: Callable[[RoutingTable], None],
        *,
        interval: float = 1.5,
    ) -> None:
        self.registry, self.base, self.pool, self.model_thread = registry, base, pool, model_thread
        self.state, self.metrics, self.on_table, self.interval = state, metrics, on_table, interval
        self.revision: int | None = None
        self.rejected: dict[str, tuple[Any, ...]] = {}
        self._entries: dict[str, Any] = {}
        self._routes: dict[str, Route] = {}
        """The routes of the last table built (to keep a predecessor serving)."""
        self.polls = self.syncs = 0

    async def run(self) -> None:
        """Poll forever (cancel the task to stop); never raises."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the watcher must outlive any bug or outage
                log.exception("registry poll failed")
                self._registry_down(exc)

    async def poll(self, *, force: bool = False) -> bool:
        """One poll; True when the registry was read and applied."""
        self.polls += 1
        try:
            revision = await asyncio.to_thread(self.registry.revision)
            if not force and revision == self.revision and not self._rejected_changed():
                return False
            entries = await asyncio.to_thread(self.registry.serving, self.base)
        except Exception as exc:  # RegistryLockedError, a database error: keep serving, retry later
            self._registry_down(exc)
            return False
        self.state.clear_alert("registry-unavailable")
        await self._apply(list(entries), revision)
        self.revision = revision
        self.syncs += 1
        return True

    def _registry_down(self, exc: BaseException) -> None:
        message = (
            f"cannot read the registry ({type(exc).__name__}: {str(exc)[:300]}); serving the last "
            "known adapters and retrying at the next poll"
        )
        alert = self.state.raise_alert("registry-unavailable", None, "registry-unavailable", message)
        self.metrics.reload_failures.labels("registry-unavailable").inc()
        if alert.count == 1:
            log.warning(message)

    def _rejected_changed(self) -> bool:
        return any(ref in self._entries and _signature(self._entries[ref]) != sig for ref, sig in self.rejected.items())

    async def _apply(self, entries: list[Any], revision: int) -> None:
        refused: list[tuple[str, str, str]] = []
        wanted = {e.ref: e for e in entries}
        self._entries = wanted
        for ref in [r for r in self.rejected if r not in wanted]:
            del self.rejected[ref]
            self.state.clear_alert("serve-rejected", ref)
        for ref, entry in wanted.items():
            if ref in self.pool.adapters:
                continue
            signature = _signature(entry)
            if self.rejected.get(ref) == signature:
                continue
            try:
                folder = await asyncio.to_thread(self.pool.prepare, ref, entry.path, entry.files)
                await self.model_thread.run(self.pool.attach, ref, folder)
            except AdapterRefused as exc:
                refused.append(self._reject(ref, signature, exc.reason, str(exc)))
                continue
            except Exception as exc:  # anything unexpected is a refusal too, never a crash
                refused.append(self._reject(ref, signature, "load-failed", f"{ref}: {type(exc).__name__}: {exc}"))
                continue
            self.rejected.pop(ref, None)
            self.state.clear_alert("serve-rejected", ref)
            log.info("loaded %s (%s, weight %g)", ref, _status(entry), entry.traffic_weight)
        held = await self._unload_gone(wanted)
        routes = [
            Route(ref, e.name, int(e.version), _status(e), float(e.traffic_weight))
            for ref, e in wanted.items()
            if ref in self.pool.adapters
        ] + held
        table = RoutingTable.build(routes, revision)
        self._routes = {r.ref: r for r in table.routes}
        self.state.track([r.ref for r in table.routes])
        self.on_table(table)
        for ref, reason, message in refused:  # after the swap: a locked registry must not delay serving
            try:
                await asyncio.to_thread(
                    self.registry.record_event, "serve-rejected", ref, {"reason": reason, "message": message}
                )
            except Exception as exc:  # the alert stands even if the registry is locked right now
                log.warning("could not record the serve-rejected event for %s: %s", ref, exc)

    async def _unload_gone(self, wanted: Mapping[str, Any]) -> list[Route]:
        """Unload adapters the registry no longer serves, except a live one whose same-name successor
        was refused: that one keeps its last route (returned) until the successor loads."""
        refused_names = {wanted[ref].name: ref for ref in self.rejected if ref in wanted}
        held: list[Route] = []
        for ref in [r for r in self.pool.adapters if r not in wanted]:
            route = self._routes.get(ref)
            successor = refused_names.get(route.name) if route is not None else None
            if route is not None and successor is not None and route.weight > 0:
                held.append(route)
                self.state.raise_alert(
                    "kept-previous",
                    ref,
                    "successor-refused",
                    f"{ref} keeps serving its traffic (weight {route.weight:g}): the registry replaced it with "
                    f"{successor}, which was refused (see its serve-rejected alert)",
                )
                continue
            await self.model_thread.run(self.pool.detach, ref)
            log.info("unloaded %s", ref)
        kept = {r.ref for r in held}
        for stale in self.state.alert_refs("kept-previous"):
            if stale not in kept:
                self.state.clear_alert("kept-previous", stale)
        return held

    def _reject(self, ref: str, signature: tuple[Any, ...], reason: str, message: str) -> tuple[str, str, str]:
        self.rejected[ref] = signature
        self.state.raise_alert("serve-rejected", ref, reason, message)
        self.metrics.reload_failures.labels(reason).inc()
        log.warning("refused to serve %s", message)
        return ref, reason, message
